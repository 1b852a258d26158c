# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""facts, registry_value, file_version and hotfix on hosts that restart under them, through ansible-playbook:
each task waits for its host (reboot_timeout), starts again from a fresh read, finishes, and says in its
result that it waited. winsim restarts each host after the first request of the task has been answered (over
SMB, after the logon), and keeps it down longer than the transport's own retries last (one retry over SMB,
whose reads retry a host that had answered for long), so only the task's wait can carry it through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow

KEY = r"HKLM\SOFTWARE\kbfix-resume"
DOWN_SECONDS = 12  # the WinRM client gives up after 4 retries (about 7.5 s of backoff); SMB alike

PLAYBOOK = r"""
- hosts: all
  gather_facts: false
  tasks:
    - name: facts
      kbfix.windows.facts:
        reboot_timeout: 90
      when: inventory_hostname in ['facts', 'nt4']
      register: gathered
    - name: registry
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\kbfix-resume
        name: Applied
        type: dword
        data: 7
        reboot_timeout: 90
      when: inventory_hostname == 'registry'
    - name: file
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\drivers\mrxsmb.sys'  # the OS facts first, then the file: two requests
        minimum_version: ["5.1.2600.0"]
        reboot_timeout: 90
      when: inventory_hostname == 'file'
    - name: hotfix
      kbfix.windows.hotfix:
        id: KB828753
        reboot_timeout: 90
      when: inventory_hostname == 'hotfix'
"""

TASK_OF = {"facts": "facts", "nt4": "facts", "registry": "registry", "file": "file", "hotfix": "hotfix"}


def test_modules_wait_for_a_host_restarting_mid_task_and_say_so(start_fleet: Any, tmp_path: Path) -> None:
    down = {"reboot_seconds": DOWN_SECONDS}
    fleet, inventory = start_fleet([
        ("facts", "xp-sp2-x86", down), ("registry", "xp-sp2-x86", down), ("file", "xp-sp2-x86", down),
        ("hotfix", "xp-sp1-x86", {**down, "installed": ["KB828753"]}), ("nt4", "nt4-tse-sp6-x86", down)])
    booted = {name: int(ep.host().boot_id) for name, ep in fleet.hosts.items()}
    for name, ep in fleet.hosts.items():
        # Over SMB the first requests are the logon: the host must have taken a session before it goes down,
        # or it was never up for this task (reported unreachable at once, by design).
        ep.set_faults(reboot_after_requests=8 if name == "nt4" else 1)

    run = run_playbook(PLAYBOOK, inventory, tmp_path / "run", env={"ANSIBLE_FORKS": "5"}, timeout=600,
                       extra_vars={"kbfix_smb_retries": 1})

    for host, task in TASK_OF.items():
        result = run.one(task, host)
        assert result.status in ("ok", "changed"), (host, result.result)
        waited = result.result.get("waited_for_restart")
        assert waited and "went down during the task" in waited[0], (host, result.result)
        assert int(fleet.hosts[host].host().boot_id) > booted[host], host  # the injected restart happened
    assert run.one("facts", "facts").result["ansible_facts"]["kbfix_os"]["version"].startswith("5.1.")
    assert run.one("facts", "nt4").result["ansible_facts"]["kbfix_os"]["version"].startswith("4.0.")
    assert run.one("registry", "registry").result["changed"]
    value = fleet.hosts["registry"].host().registry.get(KEY, "Applied")
    assert value is not None and value.data == 7
    assert run.one("file", "file").result["compliant"] is not None
    hotfix = run.one("hotfix", "hotfix").result
    assert hotfix["installed"] and not hotfix["changed"], hotfix
