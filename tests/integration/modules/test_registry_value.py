# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.registry_value through real ansible-playbook runs against winsim hosts.

One converge playbook runs three times: in check mode with --diff (nothing may be written), for real with
--diff, and again at -vvvvv (nothing may change, no password in the output). The machine state is read back
from winsim, and winsim's request counters prove that check mode and second runs send no write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

from winsim.machine import REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_NONE, REG_QWORD, REG_SZ

pytestmark = pytest.mark.slow

KEY = r"HKLM\SOFTWARE\Kbfix\Test"
WRITE_PREFIXES = ("Invoke:Set", "Invoke:CreateKey", "Invoke:DeleteValue", "Invoke:DeleteKey", "Command", "Create")

XP_OVERRIDES = {"registry": {KEY: {
    "Timeout": ["string", "60"],  # the wrong type: the task wants a dword
    "Servers": ["multistring", ["oldfs", "FS01"]],
    "Blob": ["binary", "0102"],
    "Obsolete": ["dword", 1],
}}}

CONVERGE = r"""
- name: Converge registry values
  hosts: all
  gather_facts: false
  tasks:
    - name: dword given as a hex string, key created
      kbfix.windows.registry_value:
        path: HKLM:\SOFTWARE\Kbfix\Test\Sub
        name: ReconnectTimeout
        type: dword
        data: "0x78"
    - name: same value, other spellings of path and name
      kbfix.windows.registry_value:
        path: HKEY_LOCAL_MACHINE\SOFTWARE\Kbfix\Test\Sub
        name: reconnecttimeout
        type: dword
        data: 120
    - name: wrong type replaced
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Timeout
        type: dword
        data: 60
    - name: merge servers
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Servers
        type: multistring
        data: [fs01, fs02.corp.example.com]
        multistring_mode: merge
        case_insensitive: true
    - name: remove a server
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Servers
        type: multistring
        data: [OLDFS]
        multistring_mode: remove
        case_insensitive: true
    - name: binary as a list of ints
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Blob
        type: binary
        data: [1, 2, 255]
    - name: empty multistring
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Empty
        type: multistring
        data: []
    - name: default value
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        data: hello
    - name: expandstring
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Library
        type: expandstring
        data: '%SystemRoot%\system32\kbfix.dll'
    - name: negative dword
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: AllBits
        type: dword
        data: -1
    - name: none type
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Marker
        type: none
    - name: absent
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Obsolete
        state: absent
    - name: qword on Vista
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Test
        name: Big
        type: qword
        data: "0xFFFFFFFFFFFFFFFF"
        view: "64"
      when: winsim_profile.startswith('vista')
"""

ALL_TASKS = [
    "dword given as a hex string, key created", "same value, other spellings of path and name",
    "wrong type replaced", "merge servers", "remove a server", "binary as a list of ints", "empty multistring",
    "default value", "expandstring", "negative dword", "none type", "absent", "qword on Vista",
]


def writes(counters: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in counters["by_action"].items() if k.startswith(WRITE_PREFIXES)}


def value(host: Any, key: str, name: str) -> tuple[int, Any] | None:
    found = host.registry.get(key, name)
    return None if found is None else (found.type, found.data)


def test_converge_check_diff_idempotence_http_ntlm(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86", XP_OVERRIDES), ("v1", "vista-sp1-x64")])
    xp, vista = fleet.hosts["xp1"], fleet.hosts["v1"]
    before_xp = xp.host().registry.open(KEY).to_json()

    # 1. Check mode with diff: every change predicted, nothing written.
    check = run_playbook(CONVERGE, inventory, tmp_path / "check", check=True, diff=True)
    assert check.rc == 0, check.output
    wrong_type = check.one("wrong type replaced", "xp1")
    assert wrong_type.status == "changed"
    assert wrong_type.result["before"] == {"type": "string", "data": "60"}
    assert wrong_type.result["after"] == {"type": "dword", "data": 60}
    assert wrong_type.result["diff"]["before"]["type"] == "string"
    assert wrong_type.result["diff"]["after"] == {"path": KEY, "name": "Timeout", "type": "dword", "data": 60}
    assert check.one("dword given as a hex string, key created", "xp1").result["key_created"] is True
    assert check.one("merge servers", "xp1").result["after"]["data"] == ["oldfs", "FS01", "fs02.corp.example.com"]
    for name in ("xp1", "v1"):
        assert writes(fleet.hosts[name].counters()) == {}, f"check mode wrote to {name}"
    assert xp.host().registry.open(KEY).to_json() == before_xp
    assert xp.host().registry.open(KEY + r"\Sub") is None

    # 2. The real run, with diff.
    first = run_playbook(CONVERGE, inventory, tmp_path / "first", diff=True)
    assert first.rc == 0, first.output
    assert first.one("same value, other spellings of path and name", "xp1").status == "ok"
    merged = first.one("merge servers", "xp1").result
    assert merged["before"]["data"] == ["oldfs", "FS01"]
    assert merged["after"]["data"] == ["oldfs", "FS01", "fs02.corp.example.com"]
    assert "--- before" in first.stdout and "+++ after" in first.stdout  # Ansible rendered the diff
    host = xp.host()
    assert value(host, KEY + r"\Sub", "ReconnectTimeout") == (REG_DWORD, 120)
    assert value(host, KEY, "Timeout") == (REG_DWORD, 60)
    assert value(host, KEY, "Servers") == (REG_MULTI_SZ, ["FS01", "fs02.corp.example.com"])
    assert value(host, KEY, "Blob") == (REG_BINARY, b"\x01\x02\xff")
    assert value(host, KEY, "Empty") == (REG_MULTI_SZ, [])
    assert value(host, KEY, "") == (REG_SZ, "hello")
    assert value(host, KEY, "Library") == (REG_EXPAND_SZ, r"%SystemRoot%\system32\kbfix.dll")
    assert value(host, KEY, "AllBits") == (REG_DWORD, 0xFFFFFFFF)
    assert value(host, KEY, "Marker") is not None and value(host, KEY, "Marker")[0] == REG_NONE  # type: ignore[index]
    assert value(host, KEY, "Obsolete") is None
    assert value(vista.host(), KEY, "Big") == (REG_QWORD, 2**64 - 1)
    assert first.one("expandstring", "xp1").result["after"]["data"] == r"C:\WINDOWS\system32\kbfix.dll"

    # 3. Again, at the highest verbosity: nothing changes, nothing is written, no password shows.
    for name in ("xp1", "v1"):
        fleet.hosts[name].reset_counters()
    second = run_playbook(CONVERGE, inventory, tmp_path / "second", verbosity=5)
    assert second.rc == 0, second.output
    changed = [(r.host, r.task) for r in second.results if r.status == "changed"]
    assert changed == [], changed
    assert {r.task for r in second.results} == set(ALL_TASKS)
    for name in ("xp1", "v1"):
        assert writes(fleet.hosts[name].counters()) == {}, f"second run wrote to {name}"
    assert "Invoke:" in second.output  # -vvvv operations and -vvvvv payloads were shown ...
    assert xp.password not in second.output  # ... without the password


ERRORS = r"""
- name: An unreachable host and a reachable one
  hosts: nt4,xp1
  gather_facts: false
  tasks:
    - name: set on both
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Errors
        name: Flag
        type: dword
        data: 1

- name: Wrong credentials
  hosts: xp1
  gather_facts: false
  vars:
    ansible_password: "{{ wrong_password }}"  # the value comes from extra vars: the playbook text never shows it
  tasks:
    - name: with wrong credentials
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Errors
        name: Flag
        type: dword
        data: 2
      ignore_errors: true

- name: Arguments and host-dependent refusals
  hosts: xp1,args
  gather_facts: false
  tasks:
    - name: bad path
      kbfix.windows.registry_value:
        path: SOFTWARE\Kbfix
        name: X
        data: a
      ignore_errors: true
    - name: dword out of range
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix
        name: X
        type: dword
        data: 0x100000000
      ignore_errors: true
    - name: merge on a dword
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix
        name: X
        type: dword
        data: 1
        multistring_mode: merge
      ignore_errors: true
    - name: missing key without create_key
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Nowhere
        name: X
        data: a
        create_key: false
      ignore_errors: true
      when: inventory_hostname == 'xp1'
    - name: 64-bit view on 32-bit Windows
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix
        name: X
        data: a
        view: "64"
      ignore_errors: true
      when: inventory_hostname == 'xp1'
    - name: access denied
      kbfix.windows.registry_value:
        path: HKLM\SECURITY\Policy
        name: X
        data: a
      ignore_errors: true
      when: inventory_hostname == 'xp1'
"""


def test_unreachable_credentials_and_argument_errors(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86"), ("xp1", "xp-sp2-x86"), ("args", "xp-sp2-x86")])
    # NT 4.0 hosts are reached over SMB now; with its SMB listeners closed this one is off (refused).
    fleet.hosts["nt4"].set_faults(port_closed=True)
    run = run_playbook(ERRORS, inventory, tmp_path, extra_vars={"wrong_password": "not-the-password"})
    unreachable = run.one("set on both", "nt4")
    assert unreachable.status == "unreachable", unreachable.result
    assert "connection refused" in unreachable.result["msg"]
    assert run.one("set on both", "xp1").status == "changed"

    creds = run.one("with wrong credentials", "xp1")
    assert creds.status == "failed"
    assert "rejected the credentials of 'Administrator'" in creds.result["msg"]
    assert "not-the-password" not in run.output

    for task, fragment, argument in (
        ("bad path", "does not start with a registry hive", "path"),
        ("dword out of range", "does not fit in a dword", "data"),
        ("merge on a dword", "works on multistring values only", "multistring_mode"),
    ):
        for host in ("xp1", "args"):
            result = run.one(task, host)
            assert result.status == "failed"
            assert fragment in result.result["msg"] and result.result["argument"] == argument
    assert fleet.hosts["args"].counters()["requests"] == 0, "argument errors must not reach the host"

    missing = run.one("missing key without create_key", "xp1")
    assert missing.status == "failed" and "does not exist and create_key is false" in missing.result["msg"]
    assert fleet.hosts["xp1"].host().registry.open(r"HKLM\SOFTWARE\Kbfix\Nowhere") is None
    view = run.one("64-bit view on 32-bit Windows", "xp1")
    assert view.status == "failed" and view.result["argument"] == "view"
    assert "no 64-bit registry view" in view.result["msg"]
    denied = run.one("access denied", "xp1")
    assert denied.status == "failed" and "access denied" in denied.result["msg"]


HTTPS = r"""
- name: Over HTTPS with Basic authentication
  hosts: all
  gather_facts: false
  tasks:
    - name: set
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Tls
        name: Servers
        type: multistring
        data: [fs01]
        multistring_mode: merge
    - name: set again
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\Kbfix\Tls
        name: Servers
        type: multistring
        data: [FS01]
        multistring_mode: merge
        case_insensitive: true
"""


def test_https_basic(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("v1", "2008-sp2-x64")], https=True, transport="basic")
    run = run_playbook(HTTPS, inventory, tmp_path, diff=True)
    assert run.rc == 0, run.output
    assert run.one("set", "v1").status == "changed"
    assert run.one("set again", "v1").status == "ok"
    assert value(fleet.hosts["v1"].host(), r"HKLM\SOFTWARE\Kbfix\Tls", "Servers") == (REG_MULTI_SZ, ["fs01"])
