# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.reboot through real ansible-playbook runs against winsim hosts, which really go down for
``reboot_seconds`` and come back with a new LastBootUpTime (applying pending file renames as they boot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow

SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
PENDING_RENAME = {"registry": {SESSION_MANAGER: {
    "PendingFileRenameOperations": ["multistring", [r"\??\C:\WINDOWS\system32\kbfix.tmp", ""]]}}}

PLAYBOOK = r"""
- name: Restart
  hosts: pending,clean,slow,nt4
  gather_facts: false
  tasks:
    - name: restart if required
      kbfix.windows.reboot:
        mode: if_required
        pre_reboot_delay: 0
      when: inventory_hostname in ['pending', 'clean', 'nt4']

    - name: again if required
      kbfix.windows.reboot:
        mode: if_required
      when: inventory_hostname in ['pending', 'clean']

    - name: restart always
      kbfix.windows.reboot:
        pre_reboot_delay: 0
        reboot_timeout: "{{ 3 if inventory_hostname == 'slow' else 120 }}"
        msg: Restarting for KB977381 (kbfix test)
      when: inventory_hostname in ['clean', 'slow']

- name: Wrong credentials and bad arguments
  hosts: clean,args
  gather_facts: false
  tasks:
    - name: with wrong credentials
      kbfix.windows.reboot:
      vars:
        ansible_password: "{{ wrong_password }}"
      when: inventory_hostname == 'clean'
      ignore_errors: true
    - name: delay out of range
      kbfix.windows.reboot:
        pre_reboot_delay: 601
      when: inventory_hostname == 'args'
      ignore_errors: true
    - name: message cmd.exe would expand
      kbfix.windows.reboot:
        msg: 100% patched
      when: inventory_hostname == 'args'
      ignore_errors: true
"""


def boot_ids(fleet: Any) -> dict[str, int]:
    return {name: ep.host().boot_id for name, ep in fleet.hosts.items() if ep.listener}


def test_check_mode_then_restart_http_ntlm(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([
        ("pending", "xp-sp2-x86", PENDING_RENAME), ("clean", "vista-sp1-x64"),
        ("slow", "2008-sp1-x86", {"reboot_seconds": 60}), ("nt4", "nt4-tse-sp6-x86"), ("args", "xp-sp2-x86"),
    ])
    extra = {"wrong_password": "not-the-password"}
    booted = boot_ids(fleet)

    # Check mode with diff: predictions only, no host restarts, no command runs.
    check = run_playbook(PLAYBOOK, inventory, tmp_path / "check", check=True, diff=True, extra_vars=extra,
                         limit="pending,clean,slow")
    would = check.one("restart if required", "pending")
    assert would.status == "changed" and would.result["rebooted"] is False
    assert would.result["reboot_pending_sources"] == ["PendingFileRenameOperations"]
    assert would.result["diff"]["before"]["reboot_pending_sources"] == ["PendingFileRenameOperations"]
    assert check.one("restart if required", "clean").status == "ok"
    assert check.one("restart always", "clean").status == "changed"
    assert boot_ids(fleet) == booted
    for name in ("pending", "clean", "slow"):
        assert "Command" not in fleet.hosts[name].counters()["by_action"], f"check mode ran a command on {name}"

    # For real, with diff.
    run = run_playbook(PLAYBOOK, inventory, tmp_path / "run", diff=True, extra_vars=extra)
    restarted = run.one("restart if required", "pending").result
    assert restarted["changed"] and restarted["rebooted"]
    assert restarted["last_boot"] > restarted["previous_boot"]
    assert restarted["ansible_facts"] == {"kbfix_last_boot": restarted["last_boot"], "kbfix_reboot_pending": False,
                                          "kbfix_reboot_pending_sources": []}
    assert restarted["diff"]["after"] == {"last_boot": restarted["last_boot"], "reboot_pending_sources": []}
    pending_host = fleet.hosts["pending"].host()
    assert pending_host.boot_id == booted["pending"] + 1
    assert pending_host.boot_time.isoformat() == restarted["last_boot"]
    assert pending_host.reboot_pending_indicators() == []  # the boot applied the queued rename
    assert run.one("restart if required", "clean").status == "ok"
    assert run.one("again if required", "pending").status == "ok"  # idempotent once nothing is pending
    always = run.one("restart always", "clean")
    assert always.status == "changed" and always.result["rebooted"]
    assert fleet.hosts["clean"].host().boot_id == booted["clean"] + 1

    slow = run.one("restart always", "slow")
    assert slow.status == "unreachable"
    assert slow.result["msg"].startswith("Timed out waiting for slow (127.0.0.1) to come back after reboot: no "
                                         "new boot time after 3 seconds (last error: "), slow.result["msg"]
    # NT 4.0 over SMB: nothing pending (the remote registry says so), so no restart.
    nt4 = run.one("restart if required", "nt4")
    assert nt4.status == "ok" and not nt4.result["rebooted"], nt4.result

    creds = run.one("with wrong credentials", "clean")
    assert creds.status == "failed" and "rejected the credentials of 'Administrator'" in creds.result["msg"]
    assert run.one("delay out of range", "args").result["argument"] == "pre_reboot_delay"
    assert "cannot contain '%'" in run.one("message cmd.exe would expand", "args").result["msg"]
    assert fleet.hosts["args"].counters()["requests"] == 0
    assert "not-the-password" not in run.output + check.output


HTTPS = r"""
- name: Over HTTPS with Basic authentication
  hosts: all
  gather_facts: false
  tasks:
    - name: restart
      kbfix.windows.reboot:
        pre_reboot_delay: 1
"""


def test_https_basic(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("s1", "2008r2-rtm-x64")], https=True, transport="basic")
    booted = fleet.hosts["s1"].host().boot_id
    run = run_playbook(HTTPS, inventory, tmp_path)
    assert run.rc == 0, run.output
    assert run.one("restart", "s1").result["rebooted"] is True
    assert fleet.hosts["s1"].host().boot_id == booted + 1
