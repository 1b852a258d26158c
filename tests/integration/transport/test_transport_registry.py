# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""StdRegProv over WS-Man against winsim: every type, keys, deletes, wrong types, access denied, and
writes whose connection breaks before or after the host applies them."""

from __future__ import annotations

import pytest
from transport_harness import Targets, wsman_requests

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    AccessDeniedError,
    HostUnreachableError,
    KbfixError,
    NotFoundError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import base
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import stdregprov
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim.machine import REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_NONE, REG_QWORD, REG_SZ

LANMAN = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
WINSIM_TYPES = {"string": REG_SZ, "expandstring": REG_EXPAND_SZ, "multistring": REG_MULTI_SZ, "dword": REG_DWORD,
                "qword": REG_QWORD, "binary": REG_BINARY, "none": REG_NONE}

VALUES = [
    RegistryValue("string", "fileserver.example.com & <co>"),
    RegistryValue("expandstring", r"%SystemRoot%\system32\drivers"),
    RegistryValue("multistring", ["fs1", "fs1.example.com", "10.0.0.5"]),
    RegistryValue("dword", 4294967295),
    RegistryValue("qword", 2 ** 63 + 5),
    RegistryValue("binary", bytes(range(256))),
    RegistryValue("none", None),
]


def host_value(targets: Targets, name: str, key: str, value_name: str) -> tuple[int, object] | None:
    """The value as the simulated machine stores it (its own state, not via WinRM)."""
    registry = targets.fleet.hosts[name].host().registry
    found = registry.get(key, value_name)
    return None if found is None else (found.type, found.data)


@pytest.mark.parametrize("host", ["xp2", "w8r2"])
@pytest.mark.parametrize("value", VALUES, ids=[v.type for v in VALUES])
def test_round_trip_of_every_type(targets: Targets, test_key: str, host: str, value: RegistryValue) -> None:
    t = targets(host)
    if value.type == "qword" and host == "xp2":
        with pytest.raises(KbfixError, match="no GetQWORDValue method"):
            WinRMTransport(t.client).set_value(test_key, "Value", value, create=True)
        return
    change = WinRMTransport(t.client).set_value(test_key, "Value", value, create=True)
    assert change.changed and change.before is None
    assert base.same_value(value, change.after)
    stored = host_value(targets, host, test_key, "Value")
    assert stored is not None and stored[0] == WINSIM_TYPES[value.type]
    # Read without a type hint: EnumValues tells the type.
    assert base.same_value(value, stdregprov.read_value(t.client, test_key, "Value"))
    # Setting the same value again changes nothing and writes nothing.
    before = t.endpoint.counters()["by_action"]
    again = WinRMTransport(t.client).set_value(test_key, "Value", value)
    after = t.endpoint.counters()["by_action"]
    assert not again.changed
    assert {k: v for k, v in after.items() if k.startswith("Invoke:Set")} == \
        {k: v for k, v in before.items() if k.startswith("Invoke:Set")}


def test_missing_key_without_create_is_not_found(targets: Targets, test_key: str) -> None:
    t = targets("xp2")
    with pytest.raises(NotFoundError):
        WinRMTransport(t.client).set_value(test_key + r"\deeper", "X", RegistryValue("dword", 1))
    assert not stdregprov.key_exists(t.client, test_key)
    stdregprov.create_key(t.client, test_key + r"\a\b")
    assert stdregprov.key_exists(t.client, test_key + r"\a\b")
    assert stdregprov.key_exists(t.client, test_key.upper())  # case-insensitive


def test_delete_value(targets: Targets, test_key: str) -> None:
    t = targets("w8r2")
    WinRMTransport(t.client).set_value(test_key, "Gone", RegistryValue("string", "x"), create=True)
    change = WinRMTransport(t.client).delete_value(test_key, "Gone")
    assert change.changed and change.before == RegistryValue("string", "x")
    assert stdregprov.read_value(t.client, test_key, "Gone") is None
    assert not WinRMTransport(t.client).delete_value(test_key, "Gone").changed


def test_wrong_type_hint_falls_back_to_the_real_type(targets: Targets, test_key: str) -> None:
    t = targets("xp1")
    WinRMTransport(t.client).set_value(test_key, "Timeout", RegistryValue("string", "60"), create=True)
    t.endpoint.reset_counters()
    found = stdregprov.read_value(t.client, test_key, "Timeout", "dword")
    assert found == RegistryValue("string", "60")
    by_action = t.endpoint.counters()["by_action"]
    assert by_action.get("Invoke:GetDWORDValue") == 1  # answered 2147749893
    assert by_action.get("Invoke:EnumValues") == 1
    assert by_action.get("Invoke:GetStringValue") == 1
    # Writing the dword over the string changes the type.
    change = WinRMTransport(t.client).set_value(test_key, "Timeout", RegistryValue("dword", 120))
    assert change.before == RegistryValue("string", "60") and change.after == RegistryValue("dword", 120)


def test_read_values_of_a_key(targets: Targets) -> None:
    t = targets("xp1")
    values = stdregprov.read_values(t.client, LANMAN, ["ReconnectableServers", "ReconnectTimeout"])
    expected = {}
    for name in ("ReconnectableServers", "ReconnectTimeout"):
        stored = host_value(targets, "xp1", LANMAN, name)
        expected[name] = stored
        found = values[name]
        if stored is None:
            assert found is None
        else:
            assert found is not None and WINSIM_TYPES[found.type] == stored[0]
    assert stdregprov.read_values(t.client, LANMAN + r"\NoSuchKey", ["X"]) == {"X": None}


def test_enum_keys_and_missing_parent(targets: Targets) -> None:
    t = targets("vista")
    names = stdregprov.enum_keys(t.client, r"HKLM\SYSTEM\CurrentControlSet\Services")
    assert names is not None and any(n.casefold() == "lanmanserver" for n in names)
    assert stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE\NoSuchVendor\NoSuchProduct") is None


def test_access_denied(targets: Targets) -> None:
    t = targets("xp2")
    with pytest.raises(AccessDeniedError) as info:
        stdregprov.enum_values(t.client, r"HKLM\SAM\SAM")
    assert info.value.code == 5
    with pytest.raises(AccessDeniedError):
        WinRMTransport(t.client).set_value(r"HKLM\SAM\SAM", "X", RegistryValue("dword", 1))


def test_vista_cbs_store_is_read_only(targets: Targets) -> None:
    t = targets("vista")
    key = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing"
    assert stdregprov.enum_keys(t.client, key) is not None
    with pytest.raises(AccessDeniedError):
        WinRMTransport(t.client).set_value(key, "kbfix", RegistryValue("dword", 1))


@pytest.mark.parametrize("fault", ["reset_before", "reset_after"])
def test_write_with_connection_reset_is_applied_exactly_once(targets: Targets, test_key: str,
                                                             fault: str) -> None:
    t = targets("xp2")
    stdregprov.create_key(t.client, test_key)
    t.endpoint.reset_counters()
    t.endpoint.set_faults(**{fault: {"action": "Invoke:SetDWORDValue", "count": 1}})
    change = WinRMTransport(t.client).set_value(test_key, "ReconnectTimeout", RegistryValue("dword", 120))
    assert change.changed and change.after == RegistryValue("dword", 120)
    assert host_value(targets, "xp2", test_key, "ReconnectTimeout") == (REG_DWORD, 120)
    sets = t.endpoint.counters()["by_action"]["Invoke:SetDWORDValue"]
    # reset_before: the host never applied the first one, so it is sent again (2 arrive, 1 applied);
    # reset_after: the host applied it, the read-back shows it, nothing is sent again.
    assert sets == (2 if fault == "reset_before" else 1)


def test_write_that_keeps_failing_is_unreachable_not_repeated(targets: Targets, test_key: str) -> None:
    t = targets("xp2")
    stdregprov.create_key(t.client, test_key)
    t.endpoint.reset_counters()
    t.endpoint.set_faults(reset_before={"action": "Invoke:SetStringValue", "count": 10})
    with pytest.raises(HostUnreachableError):
        WinRMTransport(t.client).set_value(test_key, "S", RegistryValue("string", "v"))
    # The write and one repeat per retry, each only after a read-back found the value absent.
    assert t.endpoint.counters()["by_action"]["Invoke:SetStringValue"] == 1 + t.client.settings.retries
    assert host_value(targets, "xp2", test_key, "S") is None


def test_a_write_lost_twice_is_still_applied_exactly_once(targets: Targets, test_key: str) -> None:
    """A network that drops one request in ten drops a repeat too (the campaign found it): each repeat is
    read back first, and the value ends written once."""
    t = targets("xp2")
    stdregprov.create_key(t.client, test_key)
    t.endpoint.reset_counters()
    t.endpoint.set_faults(reset_before={"action": "Invoke:SetDWORDValue", "count": 2},
                          timeout_fault={"action": "Invoke:SetDWORDValue", "skip": 2, "count": 1})
    change = WinRMTransport(t.client).set_value(test_key, "Twice", RegistryValue("dword", 7))
    assert change.changed and host_value(targets, "xp2", test_key, "Twice") == (REG_DWORD, 7)
    assert t.endpoint.counters()["by_action"]["Invoke:SetDWORDValue"] == 4


def test_reads_are_retried_after_reset(targets: Targets) -> None:
    t = targets("xp1")
    t.endpoint.set_faults(reset_after={"action": "Invoke:EnumKey", "count": 2})
    assert stdregprov.enum_keys(t.client, r"HKLM\SYSTEM\CurrentControlSet\Services") is not None
    assert t.client.requests_by_name["Invoke:EnumKey"] == 3


def test_one_authentication_for_many_serial_requests(http_targets: Targets) -> None:
    t = http_targets("xp1")
    t.endpoint.reset_counters()
    for _ in range(5):
        stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE")
    counters = t.endpoint.counters()
    assert wsman_requests(t.endpoint) == 5
    assert counters["auth_requests"] == 1  # one NTLM handshake: the negotiate token's 401 (issue 13; was 3)
