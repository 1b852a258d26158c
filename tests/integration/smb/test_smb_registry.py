"""The remote registry (\\pipe\\winreg) against a real Samba host: reads of every type, writes with read-back,
deletes, keys, and what a bad value or a missing key does (nothing written, nothing created)."""

from __future__ import annotations

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    ArgumentError,
    NotFoundError,
    WriteVerificationError,
)

TEST_KEY = r"HKLM\SOFTWARE\kbfix-test"
HOTFIX = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix"


def test_reads_every_type(fixed_host, connect):
    transport = connect(fixed_host)
    found = transport.read_values(TEST_KEY, ["Text", "Path", "List", "Number", "Blob", "Absent"])
    assert found == {
        "Text": RegistryValue("string", "Hello, NT"),
        "Path": RegistryValue("expandstring", "%SystemRoot%\\system32"),  # winreg returns it unexpanded
        "List": RegistryValue("multistring", ["one", "two"]),
        "Number": RegistryValue("dword", 60),
        "Blob": RegistryValue("binary", b"\x00\x01\xfe\xff"),
        "Absent": None,
    }
    assert transport.read_value(r"HKLM\SOFTWARE\no-such-key", "x") is None


def test_one_query_per_value_once_the_key_is_open(fixed_host, connect):
    transport = connect(fixed_host)
    transport.read_value(TEST_KEY, "Text")
    before = transport.requests_by_name()
    transport.read_value(TEST_KEY, "Number", "dword")
    after = transport.requests_by_name()
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert delta == {"BaseRegQueryValue": 2}  # one RPC call: an SMB write and read of the pipe


def test_keys(fixed_host, unfixed_host, connect):
    fixed, unfixed = connect(fixed_host), connect(unfixed_host)
    assert fixed.key_exists(HOTFIX + r"\Q253729") and not unfixed.key_exists(HOTFIX + r"\Q253729")
    assert fixed.enum_keys(HOTFIX) == ["Q253729"] and unfixed.enum_keys(HOTFIX) == []
    assert fixed.enum_keys(r"HKLM\SOFTWARE\no-such-key") is None
    assert fixed.key_exists("HKLM")


@pytest.mark.parametrize("value", [
    RegistryValue("string", "120 seconds"),
    RegistryValue("expandstring", r"%SystemRoot%\Temp"),
    RegistryValue("multistring", ["fs01", "fs01.example.com"]),
    RegistryValue("multistring", []),
    RegistryValue("dword", 4294967295),
    RegistryValue("qword", 2 ** 40 + 7),
    RegistryValue("binary", bytes(range(256))),
    RegistryValue("none", None),
], ids=["string", "expandstring", "multistring", "empty-multistring", "dword", "qword", "binary", "none"])
def test_write_reads_back_and_is_idempotent(fixed_host, connect, value, request):
    transport = connect(fixed_host)
    name = f"written-{request.node.callspec.id}"
    change = transport.set_value(TEST_KEY, name, value, create=True)
    assert (change.changed, change.before, change.after) == (True, None, value)
    # What another session (and the host's own database) sees, not a cached answer.
    assert connect(fixed_host).read_value(TEST_KEY, name) == value
    again = transport.set_value(TEST_KEY, name, value, create=True)
    assert (again.changed, again.before) == (False, value)
    removed = transport.delete_value(TEST_KEY, name)
    assert (removed.changed, removed.before, removed.after) == (True, value, None)
    assert transport.delete_value(TEST_KEY, name).changed is False


def test_write_changes_type_and_data(fixed_host, connect):
    transport = connect(fixed_host)
    transport.set_value(TEST_KEY, "Retyped", RegistryValue("string", "60"), create=True)
    change = transport.set_value(TEST_KEY, "Retyped", RegistryValue("dword", 60), create=True)
    assert change.before == RegistryValue("string", "60") and change.after == RegistryValue("dword", 60)


def test_create_makes_missing_keys_and_refuses_without_create(fixed_host, connect):
    transport = connect(fixed_host)
    key = TEST_KEY + r"\new\deeper"
    with pytest.raises(NotFoundError, match="does not exist"):
        transport.set_value(key, "V", RegistryValue("dword", 1), create=False)
    assert not transport.key_exists(TEST_KEY + r"\new")
    assert transport.set_value(key, "V", RegistryValue("dword", 1), create=True).changed
    assert connect(fixed_host).read_value(key, "V") == RegistryValue("dword", 1)


def test_write_the_host_drops_fails_verification_and_removes_created_keys(fixed_host, connect):
    # Samba 4.17 accepts BaseRegSetValue for a value name of 256 characters or more but does not keep it
    # (Windows allows 16,383): a real host answering "done" for a write it did not do.
    transport = connect(fixed_host)
    key = TEST_KEY + r"\dropped\deeper"
    with pytest.raises(WriteVerificationError, match=r"read back \(absent\)"):
        transport.set_value(key, "n" * 256, RegistryValue("dword", 1), create=True)
    assert not connect(fixed_host).key_exists(TEST_KEY + r"\dropped")


@pytest.mark.parametrize(("value", "message"), [
    (RegistryValue("dword", 2 ** 32), "integer from 0"),
    (RegistryValue("dword", True), "integer from 0"),
    (RegistryValue("string", 5), "needs a string"),
    (RegistryValue("string", "a\0b"), "NUL"),
    (RegistryValue("multistring", ["a", ""]), "empty string"),
    (RegistryValue("binary", "00ff"), "needs bytes"),
])
def test_bad_data_fails_before_any_request_and_creates_nothing(fixed_host, connect, value, message):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError, match=message) as caught:
        transport.set_value(TEST_KEY + r"\never", "V", value, create=True)
    assert caught.value.field == "data"
    assert transport.request_count == 0
    assert not connect(fixed_host).key_exists(TEST_KEY + r"\never")


def test_bad_key_is_an_argument_error(fixed_host, connect):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError, match="hive"):
        transport.read_value(r"HKXX\SOFTWARE", "x")
    assert transport.request_count == 0


@pytest.mark.parametrize("name", ["a\0b", "n" * 16384])
def test_bad_value_name_is_an_argument_error(fixed_host, connect, name):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError) as caught:
        transport.set_value(TEST_KEY, name, RegistryValue("dword", 1), create=True)
    assert caught.value.field == "name" and transport.request_count == 0


def test_what_samba_says_of_a_keys_last_write_time(fixed_host, connect):
    # Samba's registry keeps no per-key time: BaseRegQueryInfoKey answers a last-write time of 0 (1601-01-01)
    # whatever was written. The transport reports it as it comes, and a time before any boot only says "in
    # effect", never "waiting" (docs/transport.md): against Samba a restart-bound value is never held back.
    transport = connect(fixed_host)
    transport.set_value(TEST_KEY, "Stamp", RegistryValue("dword", 1))
    written = transport.registry.key_write_time(TEST_KEY)
    assert written is not None and written.year == 1601, written
    assert transport.registry.key_write_time(r"HKLM\SOFTWARE\no-such-key") is None
