# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.file_version through real ansible-playbook runs against winsim hosts.

The hosts carry the seed articles' files: XP SP1's redirector binaries on the 5.1.2600.1106 line (KB828753
fixes them at 5.1.2600.1276), Server 2008 SP1's Dfsrs.exe on the GDR line and, on a second 2008 host, the
LDR build KB977381 installs (6.0.6001.22565).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow

LDR_DFSRS: dict[str, Any] = {"files": {r"%SystemRoot%\system32\Dfsrs.exe": {
    "version": "6.0.6001.22565 (vistasp1_ldr.091021-1516)", "size": 3672576, "modified": "2009-10-21T16:00:00+00:00"}}}
# winsim's x64 profiles lack the WOW64 folder values 64-bit Windows has in its native view; add them here.
X64_FOLDERS = {"registry": {r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion": {
    "ProgramFilesDir (x86)": ["string", r"C:\Program Files (x86)"],
    "CommonFilesDir (x86)": ["string", r"C:\Program Files (x86)\Common Files"]}}}
WRITE_PREFIXES = ("Invoke:Set", "Invoke:CreateKey", "Invoke:DeleteValue", "Invoke:DeleteKey", "Command", "Create")

CHECKS = r"""
- name: File checks
  hosts: xp1,gdr,ldr
  gather_facts: false
  vars:
    kb828753_files:
      - '%SystemRoot%\system32\cscdll.dll'
      - '%SystemRoot%\system32\drivers\mrxsmb.sys'
      - '%SystemRoot%\system32\drivers\rdbss.sys'
  tasks:
    - name: facts first
      kbfix.windows.facts:

    - name: reset winsim counters
      ansible.builtin.uri:
        url: "http://127.0.0.1:{{ winsim_control_port }}/control"
        method: POST
        body_format: json
        body: {op: reset_counters, host: "{{ inventory_hostname }}"}
      delegate_to: localhost
      vars:
        ansible_connection: local

    - name: KB828753 files below the fix
      kbfix.windows.file_version:
        paths: "{{ kb828753_files }}"
        minimum_version: 5.1.2600.1276
      when: inventory_hostname == 'xp1'
      ignore_errors: true

    - name: KB828753 files, report only, in check mode
      kbfix.windows.file_version:
        paths: "{{ kb828753_files }}"
        minimum_version: 5.1.2600.1276
        report_only: true
      check_mode: true
      when: inventory_hostname == 'xp1'

    - name: SP1 baseline is met
      kbfix.windows.file_version:
        paths: "{{ kb828753_files }}"
        minimum_version: 5.1.2600.1106
      when: inventory_hostname == 'xp1'

    - name: exact version
      kbfix.windows.file_version:
        paths: C:/WINDOWS/system32/drivers/mrxsmb.sys
        exact_version: 5.1.2600.1106
      when: inventory_hostname == 'xp1'

    - name: size or date
      kbfix.windows.file_version:
        paths: ['%windir%\system32\mpr.dll', '%SystemRoot%\system32\kernel32.dll']
        size: 56832
        date: "2002-08-29 10:41"
        report_only: true
      when: inventory_hostname == 'xp1'

    - name: Dfsrs.exe against the LDR fix of KB977381
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\Dfsrs.exe'
        minimum_version: 6.0.6001.22565
        report_only: true
      when: inventory_hostname != 'xp1'

    - name: Dfsrs.exe with one minimum per branch
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\Dfsrs.exe'
        minimum_version: [6.0.6001.17900, 6.0.6001.22600]
        report_only: true
      when: inventory_hostname != 'xp1'

    - name: Program Files from the registry, a missing file
      kbfix.windows.file_version:
        paths: ['%ProgramFiles%\Kbfix\tool.exe', '%ProgramFiles(x86)%\Kbfix\tool.exe']
        report_only: true
      when: inventory_hostname == 'ldr'
"""


def test_checks_http_ntlm(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86"), ("gdr", "2008-sp1-x64"),
                                    ("ldr", "2008-sp1-x64", {**LDR_DFSRS, **X64_FOLDERS})])
    run = run_playbook(CHECKS, inventory, tmp_path)
    assert run.rc == 0, run.output  # the one task meant to fail is ignored
    assert [r for r in run.results if r.status == "changed"] == []  # the module never changes anything

    below = run.one("KB828753 files below the fix", "xp1")
    assert below.status == "failed"
    assert below.result["msg"].startswith("3 of 3 files not compliant: C:\\WINDOWS\\system32\\cscdll.dll "
                                          "(5.1.2600.1106 < 5.1.2600.1276)")
    first = below.result["files"][0]
    assert first["file_version"] == "5.1.2600.1106 (xpsp1.020828-1920)"
    assert (first["version"], first["branch"], first["size"]) == ("5.1.2600.1106", "baseline", 90624)
    assert first["date"] == "2002-08-29T10:40:00+00:00"

    report = run.one("KB828753 files, report only, in check mode", "xp1")
    assert report.status == "ok" and report.result["compliant"] is False
    assert report.result["noncompliant"] == [r"%SystemRoot%\system32\cscdll.dll",
                                             r"%SystemRoot%\system32\drivers\mrxsmb.sys",
                                             r"%SystemRoot%\system32\drivers\rdbss.sys"]
    assert run.one("SP1 baseline is met", "xp1").result["compliant"] is True
    exact = run.one("exact version", "xp1").result["files"][0]
    assert exact["compliant"] and exact["expanded_path"] == r"C:\WINDOWS\system32\drivers\mrxsmb.sys"

    size_date = run.one("size or date", "xp1").result["files"]
    assert size_date[0]["compliant"] and size_date[0]["reason"] == "size 56832 as expected"
    assert not size_date[1]["compliant"]  # kernel32.dll: another size, an older date

    gdr = run.one("Dfsrs.exe against the LDR fix of KB977381", "gdr").result["files"][0]
    assert (gdr["branch"], gdr["compliant"]) == ("gdr", False)
    assert "below 6.0.6001.20000" in gdr["reason"]
    ldr = run.one("Dfsrs.exe against the LDR fix of KB977381", "ldr").result["files"][0]
    assert (ldr["version"], ldr["branch"], ldr["compliant"]) == ("6.0.6001.22565", "ldr", True)
    assert run.one("Dfsrs.exe with one minimum per branch", "gdr").result["compliant"] is True
    per_branch = run.one("Dfsrs.exe with one minimum per branch", "ldr").result["files"][0]
    assert not per_branch["compliant"] and per_branch["reason"] == "6.0.6001.22565 < 6.0.6001.22600"

    missing = run.one("Program Files from the registry, a missing file", "ldr").result["files"]
    assert [f["expanded_path"] for f in missing] == [r"C:\Program Files\Kbfix\tool.exe",
                                                     r"C:\Program Files (x86)\Kbfix\tool.exe"]
    assert [f["exists"] for f in missing] == [False, False]

    # After the facts task the counters were reset: every file_version task on xp1 (six of them, %SystemRoot%
    # known from kbfix_os) cost exactly one CIM_DataFile query, and nothing was written anywhere.
    xp_counters = fleet.hosts["xp1"].counters()["by_action"]
    assert xp_counters == {"Enumerate": 5}, xp_counters
    for name in ("xp1", "gdr", "ldr"):
        assert not [k for k in fleet.hosts[name].counters()["by_action"] if k.startswith(WRITE_PREFIXES)]


ERRORS = r"""
- name: Unreachable and reachable
  hosts: nt4,xp1
  gather_facts: false
  tasks:
    - name: check mpr.dll
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\mpr.dll'
        size: 60176
        date: "2000-02-08 19:27"
        report_only: true

- name: Wrong credentials
  hosts: xp1
  gather_facts: false
  vars:
    ansible_password: "{{ wrong_password }}"
  tasks:
    - name: with wrong credentials
      kbfix.windows.file_version:
        paths: C:\boot.ini
      ignore_errors: true

- name: Bad arguments
  hosts: args
  gather_facts: false
  tasks:
    - name: relative path
      kbfix.windows.file_version:
        paths: [C:\ok.dll, mrxsmb.sys]
      ignore_errors: true
    - name: not a version
      kbfix.windows.file_version:
        paths: C:\ok.dll
        minimum_version: 5.1.2600
      ignore_errors: true
    - name: two kinds of criteria
      kbfix.windows.file_version:
        paths: C:\ok.dll
        exact_version: 5.1.2600.1
        size: 5
      ignore_errors: true
    - name: unknown variable
      kbfix.windows.file_version:
        paths: '%TEMP%\x.dll'
      ignore_errors: true
"""


def test_unreachable_credentials_and_argument_errors(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86"), ("xp1", "xp-sp1-x86"), ("args", "xp-sp1-x86")])
    # NT 4.0 hosts are reached over SMB now; with its SMB listeners closed this one is off (refused).
    fleet.hosts["nt4"].set_faults(port_closed=True)
    run = run_playbook(ERRORS, inventory, tmp_path, extra_vars={"wrong_password": "not-the-password"})
    assert run.one("check mpr.dll", "nt4").status == "unreachable"
    mpr = run.one("check mpr.dll", "xp1")
    assert mpr.status == "ok" and mpr.result["files"][0]["expanded_path"] == r"C:\WINDOWS\system32\mpr.dll"
    creds = run.one("with wrong credentials", "xp1")
    assert creds.status == "failed" and "rejected the credentials of 'Administrator'" in creds.result["msg"]
    for task, argument, fragment in (
        ("relative path", "paths[1]", "is not an absolute path"),
        ("not a version", "minimum_version[0]", "not a four-part version"),
        ("unknown variable", "paths[0]", "%TEMP% is not supported"),
    ):
        result = run.one(task, "args")
        assert result.status == "failed" and result.result["argument"] == argument
        assert fragment in result.result["msg"]
    assert "mutually exclusive: exact_version|size" in run.one("two kinds of criteria", "args").result["msg"]
    assert fleet.hosts["args"].counters()["requests"] == 0


HTTPS = r"""
- name: Over HTTPS with Basic authentication
  hosts: all
  gather_facts: false
  tasks:
    - name: Dfsrs.exe
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\Dfsrs.exe'
        minimum_version: [6.0.6001.22565, 6.0.6002.22269]
"""


def test_https_basic_at_full_verbosity(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("s1", "2008-sp1-x64", LDR_DFSRS)], https=True, transport="basic")
    run = run_playbook(HTTPS, inventory, tmp_path, verbosity=5)
    assert run.rc == 0, run.output
    assert run.one("Dfsrs.exe", "s1").result["compliant"] is True
    endpoint = fleet.hosts["s1"]
    assert "CIM_DataFile" in run.output  # the -vvvvv payloads are there ...
    assert endpoint.password not in run.output  # ... the password is not, nor the Basic header that encodes it
    assert base64.b64encode(f"{endpoint.username}:{endpoint.password}".encode()).decode() not in run.output
