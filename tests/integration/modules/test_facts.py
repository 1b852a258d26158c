# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.facts through real ansible-playbook runs, compared with the machine state winsim holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.facts import winrm_version_from_os

pytestmark = pytest.mark.slow

SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
CBS_REBOOT_PENDING = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
PENDING_RENAME = {"registry": {SESSION_MANAGER: {
    "PendingFileRenameOperations": ["multistring", [r"\??\C:\WINDOWS\system32\kbfix.tmp", ""]]}}}

GATHER = r"""
- name: Gather
  hosts: xp1,vista,r2,member
  gather_facts: false
  tasks:
    - name: gather
      kbfix.windows.facts:
    - name: the facts are host variables now
      ansible.builtin.assert:
        that:
          - ansible_facts.kbfix_hostname == inventory_hostname | upper
          - kbfix_os.version is match('^[0-9]+[.][0-9]+[.][0-9]+$')
    - name: gather in check mode
      kbfix.windows.facts:
      check_mode: true
"""


def test_facts_match_the_machine(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([
        ("xp1", "xp-sp1-x86", PENDING_RENAME),
        ("vista", "vista-rtm-x64", {"registry": {CBS_REBOOT_PENDING: {}}}),
        ("r2", "2003r2-sp2-x86", {"winrm_version": "1.0"}),
        ("member", "2008r2-rtm-x64", {"domain": "corp.example.com"}),
    ])
    run = run_playbook(GATHER, inventory, tmp_path)
    assert run.rc == 0, run.output
    assert [r for r in run.results if r.status == "changed"] == []
    for name, endpoint in fleet.hosts.items():
        gathered = run.one("gather", name).result["ansible_facts"]
        assert run.one("gather in check mode", name).result["ansible_facts"] == gathered
        machine = endpoint.host()
        os = gathered["kbfix_os"]
        assert os["version"] == machine.os.version
        assert os["service_pack"] == machine.os.sp_major
        assert os["architecture"] == machine.os.architecture
        assert os["product_type"] == machine.os.product_type
        assert os["system_root"] == machine.os.system_root
        assert os["r2"] is (machine.os.other_type_description == "R2")
        assert OsFacts(**os).to_dict() == os  # the shape kb_article and file_version read back
        assert gathered["kbfix_hostname"] == name.upper()
        assert gathered["kbfix_domain"] == machine.domain
        assert gathered["kbfix_domain_member"] is (machine.domain != "WORKGROUP")
        assert gathered["kbfix_last_boot"] == machine.boot_time.isoformat()
        winrm_version = (gathered["kbfix_winrm_version"], gathered["kbfix_winrm_version_source"])
        if endpoint.winrm_version == "1.0":
            # The 2005 draft WinRM 1.0 speaks has no Identify: the OS table gives the version.
            assert winrm_version == (winrm_version_from_os(OsFacts(**os)), "os_table") == ("1.0", "os_table")
        else:
            assert winrm_version == (endpoint.winrm_version, "identify")
    pending = {name: run.one("gather", name).result["ansible_facts"]["kbfix_reboot_pending_sources"]
               for name in fleet.hosts}
    assert pending == {"xp1": ["PendingFileRenameOperations"], "vista": ["CBS RebootPending"], "r2": [],
                       "member": []}
    assert run.one("gather", "xp1").result["ansible_facts"]["kbfix_reboot_pending"] is True
    # Server 2003 R2 with WinRM 1.0, which rejects WQL filters: the same facts, through plain enumeration.
    assert run.one("gather", "r2").result["ansible_facts"]["kbfix_os"]["r2"] is True


ERRORS = r"""
- name: Unreachable and reachable
  hosts: nt4,nt4down,xp1
  gather_facts: false
  tasks:
    - name: gather
      kbfix.windows.facts:

- name: Wrong credentials
  hosts: xp1
  gather_facts: false
  vars:
    ansible_password: "{{ wrong_password }}"
  tasks:
    - name: with wrong credentials
      kbfix.windows.facts:
      ignore_errors: true

- name: Bad arguments
  hosts: args
  gather_facts: false
  tasks:
    - name: unsupported option
      kbfix.windows.facts:
        gather_subset: all
      ignore_errors: true
"""


def test_unreachable_credentials_and_arguments(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86"), ("nt4down", "nt4-tse-sp6-x86"), ("xp1", "xp-sp2-x86"),
                                    ("args", "xp-sp2-x86")])
    fleet.hosts["nt4down"].set_faults(port_closed=True)  # SMB listeners closed: refused, as a host that is off
    run = run_playbook(ERRORS, inventory, tmp_path, extra_vars={"wrong_password": "not-the-password"})
    down = run.one("gather", "nt4down")
    assert down.status == "unreachable" and "connection refused" in down.result["msg"], down.result
    # NT 4.0 over SMB: the same keys as on WinRM hosts, read from the remote registry and srvsvc.
    nt4 = run.one("gather", "nt4")
    assert nt4.status == "ok", nt4.result
    facts = nt4.result["ansible_facts"]
    machine = fleet.hosts["nt4"].host()
    assert facts["kbfix_os"]["version"] == "4.0.1381" and facts["kbfix_os"]["service_pack"] == 6
    assert "Terminal Server" in facts["kbfix_os"]["caption"] and facts["kbfix_os"]["system_root"] == "C:\\WINNT"
    assert facts["kbfix_hostname"] == "NT4" and facts["kbfix_system_type"] == "X86-based PC"
    assert facts["kbfix_last_boot"] == machine.boot_time.replace(microsecond=0).isoformat()
    assert (facts["kbfix_winrm_version"], facts["kbfix_winrm_version_source"]) == (None, "smb")
    assert facts["kbfix_reboot_pending"] is False and facts["kbfix_reboot_pending_sources"] == []
    xp = run.one("gather", "xp1")
    assert xp.status == "ok"
    # The cost of gathering facts: a handful of requests, sent mostly at once.
    assert fleet.hosts["xp1"].counters()["requests"] <= 8, fleet.hosts["xp1"].counters()
    creds = run.one("with wrong credentials", "xp1")
    assert creds.status == "failed" and "rejected the credentials of 'Administrator'" in creds.result["msg"]
    bad = run.one("unsupported option", "args")
    assert bad.status == "failed" and "Unsupported parameters" in bad.result["msg"]
    assert "gather_subset" in bad.result["msg"]
    assert fleet.hosts["args"].counters()["requests"] == 0


def test_https_basic(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("s1", "2008-sp2-x86")], https=True, transport="basic")
    run = run_playbook(GATHER.replace("xp1,vista,r2,member", "all"), inventory, tmp_path)
    assert run.rc == 0, run.output
    facts = run.one("gather", "s1").result["ansible_facts"]
    machine = fleet.hosts["s1"].host()
    assert (facts["kbfix_os"]["version"], facts["kbfix_os"]["service_pack"]) == ("6.0.6002", 2)
    assert (machine.os.version, machine.os.sp_major) == ("6.0.6002", 2)
    assert facts["kbfix_os"]["architecture"] == machine.os.architecture == "x86"
    assert (facts["kbfix_winrm_version"], facts["kbfix_winrm_version_source"]) == ("2.0", "identify")
