# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts at play start: what ansible-core 2.19 does with ``ansible_facts_modules: [kbfix.windows.facts]``,
and the supported equivalent (the facts module as the play's first task, reused by kb_article).

ansible-core's gather_facts action (plugins/action/gather_facts.py) runs every FACTS_MODULES entry with
``_execute_module``, which always ships the module to the host over the connection (PowerShell on
``winrm``); it never looks for an action plugin. kbfix.windows.facts is action-only, so that path cannot
work; the first test pins down how it fails, so that the docs are revisited if ansible-core changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow


def _play(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_gather_facts_with_kbfix_facts_module_cannot_run_the_action_only_module(
        start_fleet: Any, tmp_path: Path) -> None:
    _fleet, inventory = start_fleet([("xp", "xp-sp1-x86")])
    play = _play(tmp_path, """
- hosts: all
  gather_facts: true
  vars:
    ansible_facts_modules: [kbfix.windows.facts]
  tasks:
    - name: Never reached
      ansible.builtin.debug:
        var: ansible_facts.kbfix_os
""")
    run = run_playbook(play, inventory, tmp_path / "run")
    gathering = [r for r in run.results if r.task == "Gathering Facts"]
    assert run.rc != 0, run.output[-3000:]
    assert [r.status for r in gathering] == ["failed"], run.output[-3000:]
    assert "kbfix_os" not in gathering[0].result.get("ansible_facts", {})
    assert not [r for r in run.results if r.task == "Never reached"]


def test_facts_as_first_task_are_gathered_once_and_reused_by_kb_article(
        start_fleet: Any, tmp_path: Path) -> None:
    _fleet, inventory = start_fleet([("xp", "xp-sp1-x86")])
    spec = Path(__file__).resolve().parents[3] / "roles" / "kb828753" / "files" / "kb828753.yml"
    tasks = f"""
    - name: Audit
      kbfix.windows.kb_article:
        articles:
          - spec: {spec}
            variables: {{reconnectable_servers: [fs01]}}
        state: audited
"""
    with_facts = run_playbook(_play(tmp_path, """
- hosts: all
  gather_facts: false
  tasks:
    - kbfix.windows.facts:
""" + tasks), inventory, tmp_path / "with")
    without = run_playbook(_play(tmp_path, """
- hosts: all
  gather_facts: false
  tasks:
""" + tasks), inventory, tmp_path / "without")
    assert with_facts.rc == 0 and without.rc == 0, with_facts.output[-3000:] + without.output[-3000:]
    facts = [r for r in with_facts.results if r.action == "kbfix.windows.facts"]
    assert len(facts) == 1 and facts[0].result["ansible_facts"]["kbfix_os"]["version"] == "5.1.2600"
    reused = next(r for r in with_facts.results if r.task == "Audit").result
    asked = next(r for r in without.results if r.task == "Audit").result
    assert reused["verdicts"] == asked["verdicts"]
    # the OS facts cost kb_article its own Win32_OperatingSystem / Win32_ComputerSystem reads without them
    assert reused["requests"] < asked["requests"], (reused["requests"], asked["requests"])
