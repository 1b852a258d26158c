# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module closes its connection when its task ends: on an NT 4.0 host (winsim's NT 4.0 face) each SMB
session a task set up is logged off again, counted by the host, not by the transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow

TASKS = r"""
- hosts: nt4
  gather_facts: false
  tasks:
    - name: facts
      kbfix.windows.facts:
    - name: file
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\Mpr.dll'
        size: 60176
        report_only: true
    - name: registry
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\kbfix-closed
        name: Applied
        type: dword
        data: 1
    - name: hotfix
      kbfix.windows.hotfix:
        id: Q242294
      check_mode: true
    - name: article
      kbfix.windows.kb_article:
        articles: [KB253729]
    - name: reboot if required
      kbfix.windows.reboot:
        mode: if_required
"""


TASK_NAMES = ("facts", "file", "registry", "hotfix", "article", "reboot if required")


def test_every_module_logs_off_its_smb_session(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86")])
    ep = fleet.hosts["nt4"]
    ep.reset_counters()
    run = run_playbook(TASKS, inventory, tmp_path / "run")
    assert run.rc == 0, run.output[-4000:]
    assert [run.one(name, "nt4").status for name in TASK_NAMES] == ["ok", "ok", "changed", "ok", "ok", "ok"]
    by_action = ep.counters()["by_action"]
    assert by_action.get("SMB:SessionSetup", 0) >= len(TASK_NAMES), by_action  # a session (at least) per task
    assert by_action.get("SMB:Logoff", 0) == len(TASK_NAMES), by_action  # each logged off as its task ended
