# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""collect.gather against winsim: what it reads, what it costs, and what it leaves absent."""

from __future__ import annotations

from transport_harness import Targets

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    FactRequest,
    RegistryValue,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import indicators
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import collect, stdregprov, wmi

LANMAN = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
RECORD = r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753"
KB828753_XP = FactRequest(
    files=(r"C:\WINDOWS\system32\Cscdll.dll", r"C:\WINDOWS\system32\drivers\Mrxsmb.sys",
           r"C:\WINDOWS\system32\drivers\Rdbss.sys"),
    registry_values=((LANMAN, "ReconnectableServers"), (LANMAN, "ReconnectTimeout")),
    registry_keys=(RECORD,),
    hotfix_ids=("KB828753",),
    registry_value_types=((LANMAN, "ReconnectableServers", "multistring"), (LANMAN, "ReconnectTimeout", "dword")),
)


def test_cost_of_kb828753_audit(targets: Targets) -> None:
    t = targets("xp1")
    os_facts = wmi.os_facts(t.client)  # known beforehand (the facts module gathers it once per host)
    t.endpoint.reset_counters()
    facts = collect.gather(t.client, os_facts, KB828753_XP)
    counters = t.endpoint.counters()
    assert counters["requests"] <= 5, counters["by_action"]
    assert counters["by_action"].get("Enumerate") == 2  # files + QFE, one query each
    assert "Invoke:EnumValues" not in counters["by_action"]  # the types are known: one typed Get per value
    assert t.client.pool.peak_wanted > 1  # they were sent together ...
    # ... and shared the connection os_facts authenticated: at most 5 requests, so at most one more connection
    # (a new one only for the third request waiting per ready connection, issue 13).
    assert t.client.pool.opened <= 2
    assert len(facts.files) == 3 and all(f.exists for f in facts.files.values())
    assert facts.value(LANMAN, "ReconnectTimeout") is None  # read: absent on a fresh XP SP1
    assert facts.registry_keys[registry_key_id(RECORD)] is False
    assert "KB828753" not in facts.hotfixes
    assert facts.reboot_pending is False


def test_gather_matches_the_machine(targets: Targets, test_key: str) -> None:
    t = targets("w2008")
    os_facts = wmi.os_facts(t.client)
    stdregprov.set_value(t.client, test_key, "Multi", RegistryValue("multistring", ["a", "b"]), create=True)
    stdregprov.set_value(t.client, test_key, "Number", RegistryValue("dword", 7))
    qfe = t.endpoint.host().wmi_enumerate("root/cimv2", "Win32_QuickFixEngineering")
    installed = [str(i.properties["HotFixID"]) for i in qfe]
    request = FactRequest(
        files=(r"C:\Windows\System32\dfsrs.exe", r"C:\Windows\System32\nonexistent.dll"),
        registry_values=((test_key, "Multi"), (test_key, "number"), (test_key, "Missing"),
                         (test_key + r"\NoKey", "X")),
        registry_keys=(r"HKLM\SYSTEM\CurrentControlSet\Services\DFSR", r"HKLM\SYSTEM\CurrentControlSet\Services\Nope",
                       "HKLM"),
        hotfix_ids=(installed[0], "KB977381"),
    )
    facts = collect.gather(t.client, os_facts, request)
    assert facts.file(r"C:\Windows\System32\nonexistent.dll").exists is False  # type: ignore[union-attr]
    dfsrs = facts.file(r"C:\Windows\System32\dfsrs.exe")
    assert dfsrs is not None and dfsrs.exists and dfsrs.version
    assert facts.value(test_key, "Multi") == RegistryValue("multistring", ["a", "b"])
    assert facts.value(test_key, "Number") == RegistryValue("dword", 7)
    assert facts.value(test_key, "Missing") is None
    assert facts.value(test_key + r"\NoKey", "X") is None
    assert facts.registry_keys[registry_key_id(r"HKLM\SYSTEM\CurrentControlSet\Services\DFSR")] is True
    assert facts.registry_keys[registry_key_id(r"HKLM\SYSTEM\CurrentControlSet\Services\Nope")] is False
    assert facts.registry_keys[registry_key_id("HKLM")] is True
    assert facts.hotfixes == {installed[0].upper()}
    assert facts.hotfix_sources[installed[0].upper()] == ("qfe",)


def test_typed_reads_fall_back_to_the_real_type(targets: Targets, test_key: str) -> None:
    t = targets("w8r2")
    os_facts = wmi.os_facts(t.client)
    stdregprov.set_value(t.client, test_key, "Servers", RegistryValue("string", "fs01"), create=True)
    stdregprov.set_value(t.client, test_key, "Timeout", RegistryValue("dword", 30))
    request = FactRequest(
        registry_values=((test_key, "Servers"), (test_key, "Timeout"), (test_key, "Absent"),
                         (test_key + r"\NoKey", "X")),
        registry_value_types=((test_key, "Servers", "multistring"), (test_key, "Timeout", "dword"),
                              (test_key, "Absent", "dword"), (test_key + r"\NoKey", "X", "string")),
    )
    t.endpoint.reset_counters()
    facts = collect.gather(t.client, os_facts, request)
    by_action = t.endpoint.counters()["by_action"]
    assert facts.value(test_key, "Servers") == RegistryValue("string", "fs01")  # the real type, for the engine
    assert facts.value(test_key, "Timeout") == RegistryValue("dword", 30)
    assert facts.value(test_key, "Absent") is None  # ReturnValue 1
    assert facts.value(test_key + r"\NoKey", "X") is None  # ReturnValue 2
    # Only the value of the wrong type cost more: EnumValues and the Get of its real type.
    assert by_action.get("Invoke:EnumValues") == 1 and by_action.get("Invoke:GetStringValue") == 2
    assert by_action.get("Invoke:GetMultiStringValue") == 2  # Servers (wrong type) + the rename queue


def test_unreadable_facts_stay_absent(targets: Targets) -> None:
    t = targets("xp2")
    os_facts = wmi.os_facts(t.client)
    request = FactRequest(registry_values=((r"HKLM\SAM\SAM", "X"), (LANMAN, "ReconnectTimeout")),
                          registry_keys=(r"HKLM\SAM\SAM\Domains",))
    facts = collect.gather(t.client, os_facts, request)
    assert facts.value(r"HKLM\SAM\SAM", "X") == "missing"  # never read: access denied
    assert facts.value(LANMAN, "ReconnectTimeout") is None  # read: absent
    assert registry_key_id(r"HKLM\SAM\SAM\Domains") not in facts.registry_keys


def test_pending_restart_sources(targets: Targets) -> None:
    expected = {"vpend": indicators.SOURCE_CBS, "xppend": indicators.SOURCE_PFRO}
    for name, source in expected.items():
        t = targets(name)
        facts = collect.gather(t.client, wmi.os_facts(t.client), FactRequest(hotfix_ids=("KB938475", "KB828753")))
        assert facts.reboot_pending, name
        assert source in facts.reboot_pending_sources, (name, facts.reboot_pending_sources)
    quiet = targets("vista")
    facts = collect.gather(quiet.client, wmi.os_facts(quiet.client), FactRequest())
    assert (facts.reboot_pending, facts.reboot_pending_sources) == (False, ())
