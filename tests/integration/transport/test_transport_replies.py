# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replies shaped as Windows sends them, end to end against winsim (issue 16): property-selected queries come
back as w:XmlFragment items with unqualified Datetime children, quota faults may carry their code only in an
MSFT_WmiError, and a missing class answers CannotProcessFilter without meaning "no filters here"."""

from __future__ import annotations

import datetime

import pytest
from transport_harness import Targets, wsman_requests

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    ClassNotFoundError,
    FilterNotSupportedError,
    QuotaExceededError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import file_check
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import cmdshell, wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport

MPR = r"C:\WINDOWS\system32\mpr.dll"  # xp-sp1-x86: 56832 bytes, modified 2002-08-29 10:40 UTC
UTC = datetime.UTC


def payload_log(logged: list[tuple[int, str]]) -> winrm.LogFn:
    return lambda level, msg: logged.append((level, msg))


def replies(logged: list[tuple[int, str]]) -> list[str]:
    return [m for level, m in logged if level == winrm.LOG_PAYLOADS and ": reply (" in m]


def test_size_date_row_audited_through_a_fragment(targets: Targets) -> None:
    logged: list[tuple[int, str]] = []
    t = targets("xp1", log=payload_log(logged))
    # KB253729-style row: no version, a size and a date. The size here is not the file's, so only a
    # LastModified read from the fragment can make the file compliant.
    criteria = file_check.Criteria(size=59664, date=file_check.parse_date("2002-08-01"))
    t.endpoint.reset_counters()
    result = file_check.audit(WinRMTransport(t.client), [MPR], [MPR], criteria, lambda: wmi.os_facts(t.client))
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 1}
    [row] = result["files"]
    assert (row["exists"], row["size"], row["date"]) == (True, 56832, "2002-08-29T10:40:00+00:00")
    assert row["compliant"] and result["compliant"]
    assert row["reason"] == "modified 2002-08-29T10:40:00+00:00, at or after 2002-08-01T00:00:00+00:00"
    [reply] = replies(logged)
    assert "<w:XmlFragment" in reply
    assert "<LastModified><Datetime>2002-08-29T10:40:00Z</Datetime></LastModified>" in reply
    later = file_check.Criteria(size=59664, date=file_check.parse_date("2003-01-01"))
    again = file_check.audit(WinRMTransport(t.client), [MPR], [MPR], later, lambda: wmi.os_facts(t.client))
    assert again["files"][0]["reason"] == ("size 56832, modified 2002-08-29T10:40:00+00:00; expected size 59664 "
                                           "or modified at or after 2003-01-01T00:00:00+00:00")


def test_reboot_wait_reads_the_boot_time_from_a_fragment(targets: Targets) -> None:
    logged: list[tuple[int, str]] = []
    t = targets("inst", log=payload_log(logged))
    before = wmi.last_boot_time(t.client)
    [os_instance] = t.endpoint.host().wmi_enumerate("root/cimv2", "Win32_OperatingSystem")
    assert before == os_instance.properties["LastBootUpTime"]
    [reply] = replies(logged)
    assert "<w:XmlFragment" in reply and "<LastBootUpTime><Datetime>" in reply
    booted = cmdshell.reboot(t.client, method="wmi", timeout=60, poll_interval=0.5, before=before)
    assert booted > before
    [os_instance] = t.endpoint.host().wmi_enumerate("root/cimv2", "Win32_OperatingSystem")
    assert booted == os_instance.properties["LastBootUpTime"]


def test_quota_reported_through_a_wmi_error_is_backed_off(targets: Targets) -> None:
    logged: list[tuple[int, str]] = []
    t = targets("vista", log=payload_log(logged))
    t.endpoint.set_faults(quota_wmi_fault={"action": "Enumerate", "count": 2})
    t.endpoint.reset_counters()
    assert wmi.last_boot_time(t.client) is not None
    assert wsman_requests(t.endpoint) == 3
    assert t.client.requests_by_name == {"Enumerate": 3}
    retries = [m for level, m in logged if level == winrm.LOG_OPERATIONS and " retry " in m]
    assert len(retries) == 2
    assert all("WMI error 2150859174 (InternalError) on Enumerate" in m for m in retries)


def test_quota_through_a_wmi_error_gives_up_after_the_retries(targets: Targets) -> None:
    t = targets("vista", retries=1)
    t.endpoint.set_faults(quota_wmi_fault={"action": "Enumerate", "count": 5})
    with pytest.raises(QuotaExceededError) as caught:
        wmi.last_boot_time(t.client)
    assert caught.value.code == 2150859174
    assert t.client.requests_by_name == {"Enumerate": 3}  # 1 + 1 retry x 2: a quota fault is an answer
    assert "gave up on Enumerate after 3 attempts" in str(caught.value)
    assert str(caught.value).endswith("concurrent operations, which has been exceeded. Close existing operations "
                                      "for this user, or raise the quota for this user.")


def test_missing_class_is_named_and_filters_stay_on(targets: Targets) -> None:
    t = targets("w8r2")
    t.endpoint.reset_counters()
    with pytest.raises(ClassNotFoundError) as caught:
        wmi.query(t.client, wmi.Query("Win32_ReliabilityRecords", ("SourceName",)))
    message = str(caught.value)
    assert message.startswith(f"{t.client.host}: root/cimv2 has no class Win32_ReliabilityRecords: WSManFault "
                              "2150858778 (CannotProcessFilter) on Enumerate: ")
    assert message.endswith(": The specified class does not exist in the given namespace.")
    assert "ExecQuery" not in message and "WinMgmt" not in message  # the __ExtendedStatus is not the message
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 1}  # no probe: the fault says what it is
    assert t.client.supports_filter is not False
    wmi.file_facts(t.client, [r"C:\Windows\system32\dfsr.exe"])
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 2}  # still one WQL query, no Get per file
    assert t.client.supports_filter is True


def test_one_bad_filter_does_not_turn_filters_off(targets: Targets) -> None:
    t = targets("w2008")
    t.endpoint.reset_counters()
    bad = wmi.Query("Win32_Service", ("Name",), "NoSuchProperty", ("x",))
    with pytest.raises(FilterNotSupportedError):
        wmi.query(t.client, bad)
    # The failed query, then the probe every WMI host answers: it did, so the query was at fault.
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 2}
    assert t.client.supports_filter is True
    with pytest.raises(FilterNotSupportedError):
        wmi.query(t.client, bad)
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 3}  # decided once: no second probe
    assert wmi.last_boot_time(t.client) is not None
    assert t.endpoint.counters()["by_action"] == {"Enumerate": 4}
