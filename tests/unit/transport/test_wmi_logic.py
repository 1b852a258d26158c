# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-independent parts of wmi.py: key paths, architecture, value comparison, queries."""

from __future__ import annotations

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts, RegistryValue, registry_key_id
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, KbfixError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import base, indicators
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import replies, stdregprov, wmi


@pytest.mark.parametrize(("key", "hdefkey", "subkey"), [
    (r"HKLM\SOFTWARE\Microsoft", 2147483650, r"SOFTWARE\Microsoft"),
    ("HKEY_LOCAL_MACHINE\\SYSTEM\\", 2147483650, "SYSTEM"),
    (r"hku\.DEFAULT", 2147483651, ".DEFAULT"),
    (r"HKCR\.txt", 2147483648, ".txt"),
    ("HKCU", 2147483649, ""),
])
def test_parse_key(key: str, hdefkey: int, subkey: str) -> None:
    path = wmi.parse_key(key)
    assert (path.hdefkey, path.subkey) == (hdefkey, subkey)


def test_parent_and_leaf() -> None:
    path = wmi.parse_key(r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753")
    assert path.leaf == "KB828753"
    assert str(path.parent) == r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2"


@pytest.mark.parametrize("bad", [r"SOFTWARE\x", r"HKXX\a", "HKLM\\a\\\\b", "HKLM\\a\nb"])
def test_bad_keys(bad: str) -> None:
    with pytest.raises(ArgumentError):
        wmi.parse_key(bad)


@pytest.mark.parametrize(("version", "os_arch", "system_type", "expected"), [
    ("5.1.2600", None, "X86-based PC", "x86"),
    ("5.2.3790", None, "x64-based PC", "x64"),
    ("5.2.3790", None, "Itanium (TM) -based System", "ia64"),
    ("6.0.6001", "32-bit", "X86-based PC", "x86"),
    ("6.1.7600", "64-bit", "x64-based PC", "x64"),
    ("6.1.7600", "64 bits", "x64-based PC", "x64"),  # localised
    ("6.0.6002", "64-bit", "Itanium (TM) -based System", "ia64"),
])
def test_architecture(version: str, os_arch: str | None, system_type: str, expected: str) -> None:
    assert wmi.architecture(version, os_arch, system_type) == expected


def test_architecture_unknown() -> None:
    with pytest.raises(KbfixError):
        wmi.architecture("5.1.2600", None, "Alpha-based PC")


def test_same_value() -> None:
    rv = RegistryValue
    assert base.same_value(rv("dword", 120), rv("dword", 120))
    assert not base.same_value(rv("dword", 120), rv("string", "120"))
    assert not base.same_value(rv("dword", 120), None)
    assert base.same_value(rv("multistring", ["a", "b"]), rv("multistring", ["a", "b"]))
    assert not base.same_value(rv("multistring", ["a", "b"]), rv("multistring", ["b", "a"]))
    assert base.same_value(rv("binary", b"\x01"), rv("binary", b"\x01"))
    # GetExpandedStringValue expands variables on the host
    assert base.same_value(rv("expandstring", r"%SystemRoot%\x"), rv("expandstring", r"C:\WINDOWS\x"))
    assert base.same_value(rv("expandstring", r"%SystemRoot%\x"), rv("expandstring", r"%SystemRoot%\x"))
    assert not base.same_value(rv("expandstring", r"%SystemRoot%\x"), rv("expandstring", r"C:\WINDOWS\y"))
    assert base.same_value(rv("none", None), rv("none", None))


def test_query_wql_and_client_side_filter_agree() -> None:
    q = wmi.Query("Win32_QuickFixEngineering", ("HotFixID",), "HotFixID", ("KB828753", "Q253729"))
    assert q.wql() == "SELECT HotFixID FROM Win32_QuickFixEngineering WHERE HotFixID='KB828753' OR HotFixID='Q253729'"
    assert q.matches(replies.WmiObject("Win32_QuickFixEngineering", {"HotFixID": "kb828753"}))
    assert not q.matches(replies.WmiObject("Win32_QuickFixEngineering", {"HotFixID": "KB1"}))
    assert wmi.Query("Win32_OperatingSystem").wql() == "SELECT * FROM Win32_OperatingSystem"


def test_query_rejects_injection_in_identifiers() -> None:
    with pytest.raises(ArgumentError):
        wmi.Query("Win32_OperatingSystem WHERE 1=1")
    with pytest.raises(ArgumentError):
        wmi.Query("CIM_DataFile", ("Name,Hidden",))


def xp() -> OsFacts:
    return OsFacts(version="5.1.2600", service_pack=1, architecture="x86", product_type=1)


def vista() -> OsFacts:
    return OsFacts(version="6.0.6000", service_pack=0, architecture="x64", product_type=1)


def test_pending_restart_plan_by_era() -> None:
    plan = indicators.pending_restart_plan(xp())  # the full set by default: the facts and reboot modules' question
    assert plan.values == ((indicators.SESSION_MANAGER, "PendingFileRenameOperations", "multistring"),
                           (indicators.UPDATE_EXE_VOLATILE, "Flags", "dword"))
    assert plan.keys == (indicators.WU_REBOOT_REQUIRED,)
    plan = indicators.pending_restart_plan(vista())
    assert set(plan.keys) == {indicators.WU_REBOOT_REQUIRED, indicators.CBS_REBOOT_PENDING}
    assert [name for _, name, _ in plan.values] == ["PendingFileRenameOperations"]  # no update.exe on 6.x
    plan = indicators.pending_restart_plan(vista(), "article")
    assert (plan.keys, len(plan.values)) == ((indicators.CBS_REBOOT_PENDING,), 1)


def test_pending_restart_from_facts() -> None:
    pfro_key = (registry_key_id(indicators.SESSION_MANAGER), "pendingfilerenameoperations")
    pending = RegistryValue("multistring", [r"\??\C:\WINDOWS\system32\drivers\mrxsmb.sys.new", ""])
    assert indicators.pending_restart_from({pfro_key: pending}, {}) == (True, (indicators.SOURCE_PFRO,))
    assert indicators.pending_restart_from({pfro_key: RegistryValue("multistring", [])}, {}) == (False, ())
    cbs = {registry_key_id(indicators.CBS_REBOOT_PENDING): True}
    assert indicators.pending_restart_from({pfro_key: None}, cbs) == (True, (indicators.SOURCE_CBS,))
    assert indicators.pending_restart_from({}, {registry_key_id(indicators.WU_REBOOT_REQUIRED): False}) == (False, ())


@pytest.mark.parametrize(("key", "expected"), [
    (r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753", wmi.QfeRecord("KB828753", "SP2")),
    (r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\kb977381",
     wmi.QfeRecord("KB977381", "SP3")),
    (r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix\Q253729", wmi.QfeRecord("Q253729", None)),
    (r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2", None),  # the parent, not a record
    (r"HKLM\SYSTEM\CurrentControlSet\Services\DFSR", None),
])
def test_qfe_record_keys_up_to_2003(key: str, expected: wmi.QfeRecord | None) -> None:
    assert wmi.qfe_record(xp(), key) == expected


def test_qfe_records_do_not_exist_from_vista_on() -> None:
    assert wmi.qfe_record(vista(), r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753") is None


def test_qfe_has_record_checks_the_service_pack() -> None:
    found = {"KB828753": [replies.WmiObject("Win32_QuickFixEngineering",
                                          {"HotFixID": "KB828753", "ServicePackInEffect": "SP2"})]}
    assert wmi.qfe_has_record(found, wmi.QfeRecord("KB828753", "SP2"))
    assert not wmi.qfe_has_record(found, wmi.QfeRecord("KB828753", "SP3"))
    assert wmi.qfe_has_record(found, wmi.QfeRecord("KB828753", None))
    assert not wmi.qfe_has_record(found, wmi.QfeRecord("KB1", None))


@pytest.mark.parametrize("value", [
    RegistryValue("dword", 2 ** 32), RegistryValue("dword", -1), RegistryValue("dword", True),
    RegistryValue("qword", 2 ** 64), RegistryValue("string", 5), RegistryValue("multistring", "a"),
    RegistryValue("binary", "00ff"),
])
def test_bad_data_fails_before_any_request(value: RegistryValue) -> None:
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm

    # Nothing listens on port 1: a request would raise HostUnreachableError, not ArgumentError.
    client = winrm.WinRMClient(winrm.WinRMSettings(host="127.0.0.1", port=1, retries=0))
    with pytest.raises(ArgumentError):
        stdregprov.set_value(client, r"HKLM\SOFTWARE\kbfix", "X", value)
    assert client.request_count == 0
