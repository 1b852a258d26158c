# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WQL queries against winsim: OS facts, files, hotfixes, paging, and WinRM 1.0 without filters."""

from __future__ import annotations

import pytest
from transport_harness import Targets, wsman_requests

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import HostUnreachableError, TransportError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import replies, wmi, wsman

XP_FILES = [r"C:\WINDOWS\system32\Cscdll.dll", r"C:\WINDOWS\system32\drivers\Mrxsmb.sys",
            r"C:\WINDOWS\system32\drivers\Rdbss.sys"]


def test_os_facts_xp_without_osarchitecture(targets: Targets) -> None:
    t = targets("xp1")
    details = wmi.os_details(t.client)
    assert details.os_architecture is None
    facts = details.facts
    assert (facts.version, facts.service_pack, facts.architecture, facts.product_type) == ("5.1.2600", 1, "x86", 1)
    assert facts.system_root.upper() == r"C:\WINDOWS"
    assert not facts.r2
    [os_instance] = t.endpoint.host().wmi_enumerate("root/cimv2", "Win32_OperatingSystem")
    assert details.last_boot == os_instance.properties["LastBootUpTime"]
    assert details.hostname.casefold() == str(os_instance.properties["CSName"]).casefold()


def test_os_facts_2008_r2(targets: Targets) -> None:
    facts = wmi.os_facts(targets("w8r2").client)
    assert (facts.version, facts.architecture, facts.product_type) == ("6.1.7600", "x64", 3)
    assert facts.service_pack == 0


def test_os_facts_2003_r2(targets: Targets) -> None:
    facts = wmi.os_facts(targets("r2").client)
    assert (facts.version, facts.service_pack, facts.architecture, facts.r2) == ("5.2.3790", 2, "x86", True)


def test_many_files_in_one_query(targets: Targets) -> None:
    t = targets("xp1")
    missing = r"C:\WINDOWS\system32\no'such file.dll"
    t.endpoint.reset_counters()
    facts = wmi.file_facts(t.client, [*XP_FILES, missing])
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 1}
    for path in XP_FILES:
        f = facts[path.casefold()]
        assert f.exists and f.path == path
        assert f.version and f.version.startswith("5.1.2600.")
        assert f.size and f.size > 0
        assert f.modified is not None and f.modified.tzinfo is not None
    assert not facts[missing.casefold()].exists


def test_qfe_by_ids(targets: Targets) -> None:
    t = targets("w2008")
    machine = t.endpoint.host()
    installed = [i.properties["HotFixID"] for i in machine.wmi_enumerate("root/cimv2", "Win32_QuickFixEngineering")]
    assert installed, "the 2008 SP2 profile should list some updates"
    wanted = [installed[0], "KB999999999"]
    t.endpoint.reset_counters()
    found = wmi.qfe_hotfixes(t.client, wanted)
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 1}
    assert set(found) == {installed[0].upper()}


def test_enumeration_paging_with_pull(targets: Targets) -> None:
    t = targets("w8r2")
    t.endpoint.reset_counters()
    services = t.client.enumerate(wsman.wmi_resource("root/cimv2", "*"), "SELECT Name FROM Win32_Service",
                                  max_elements=1)
    expected = t.endpoint.host().wmi_enumerate("root/cimv2", "Win32_Service")
    assert len(expected) >= 3
    names = sorted(replies.as_str(s["Name"]) or "" for s in services)
    assert names == sorted(str(e.properties["Name"]) for e in expected)
    by_action = t.endpoint.counters()["by_action"]
    assert by_action["Enumerate"] == 1
    assert by_action["Pull"] == len(expected) - 1  # the first item came with the Enumerate


def test_abandoned_enumeration_is_released(targets: Targets) -> None:
    t = targets("w8r2")
    t.endpoint.reset_counters()
    first = t.client.enumerate(wsman.wmi_resource("root/cimv2", "*"), "SELECT Name FROM Win32_Service",
                               max_elements=1, limit=2)
    assert len(first) == 2
    assert t.endpoint.counters()["by_action"].get("Release") == 1


def test_pull_timeout_fault_is_retried(targets: Targets) -> None:
    t = targets("w8r2")
    t.endpoint.set_faults(timeout_fault={"action": "Pull", "count": 1})
    services = t.client.enumerate(wsman.wmi_resource("root/cimv2", "*"), "SELECT Name FROM Win32_Service",
                                  max_elements=1)
    assert len(services) >= 3
    assert t.client.requests_by_name["Pull"] == len(services)  # one Pull answered with the fault, retried


def test_winrm_1_0_falls_back_to_plain_enumeration(targets: Targets) -> None:
    logged: list[str] = []
    t = targets("r2hw", log=lambda level, msg: logged.append(msg))
    facts = wmi.os_facts(t.client)
    assert (facts.version, facts.architecture, facts.r2) == ("5.2.3790", "x64", True)
    assert t.client.supports_filter is False
    assert any("WinRM 1.0" in m for m in logged)
    files = wmi.file_facts(t.client, [r"C:\WINDOWS\system32\dfsr.exe", r"C:\WINDOWS\nothing.here"])
    dfsr = files[r"c:\windows\system32\dfsr.exe"]
    assert dfsr.exists and dfsr.version == "5.2.3790.3959 (srv03_sp2_rtm.070216-1710)" and dfsr.size == 3588608
    assert not files[r"c:\windows\nothing.here"].exists
    t.endpoint.reset_counters()
    wmi.file_facts(t.client, [r"C:\WINDOWS\system32\dfsr.exe", r"C:\WINDOWS\system32\w03a3409.dll"])
    assert t.endpoint.counters()["by_action"] == {"Get": 2}  # no second attempt at a filter


def test_quota_fault_is_retried(targets: Targets) -> None:
    t = targets("vista")
    t.endpoint.set_faults(quota_fault={"action": "Enumerate", "count": 2})
    t.endpoint.reset_counters()
    assert wmi.last_boot_time(t.client) is not None
    assert wsman_requests(t.endpoint) == 3


def test_http_500_without_fault_is_retried_for_reads(targets: Targets) -> None:
    """A 500 is an answer: a read of a host that gives it gets twice the retries, then a failure saying so."""
    t = targets("vista", retries=1)
    t.endpoint.set_faults(http_500={"action": "Enumerate", "count": 10})
    with pytest.raises(TransportError, match="HTTP 500") as caught:
        wmi.last_boot_time(t.client)
    assert not isinstance(caught.value, HostUnreachableError)
    assert "gave up on Enumerate after 3 attempts" in str(caught.value)
    assert t.client.requests_by_name["Enumerate"] == 3  # 1 + 1 retry x 2
