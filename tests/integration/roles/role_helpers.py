# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the role and playbook tests: inventory variables, host state, results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from harness import PlaybookRun, TaskResult

from winsim.testing import Endpoint

TOP = Path(__file__).resolve().parents[3]
PLAYBOOKS = TOP / "playbooks"
SERVERS = ["fs01", "fs01.corp.example.com", "192.0.2.10"]
SITE_VARS: dict[str, Any] = {"kb828753_reconnectable_servers": SERVERS, "kb938475_asynchronous_credits": 256}
LANMAN_WORKSTATION = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
WRITES = ("Invoke:Set", "Invoke:CreateKey", "Invoke:Delete", "Command")


def group_vars(inventory: Path, data: dict[str, Any]) -> None:
    """``group_vars/all.yml`` next to the inventory, where Ansible reads it."""
    target = inventory.parent / "group_vars" / "all.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data), encoding="utf-8")


def writes(ep: Endpoint) -> dict[str, int]:
    """Requests that change a host: StdRegProv writes and processes started in the cmd shell."""
    return {k: v for k, v in ep.counters()["by_action"].items() if k.startswith(WRITES)}


def boot_id(ep: Endpoint) -> int:
    return int(ep.host().boot_id)


def task_results(run: PlaybookRun, task: str, host: str | None = None) -> list[TaskResult]:
    """Results of a task by its name, with or without the ``role : `` prefix Ansible adds in roles."""
    return [r for r in run.results if (r.task == task or r.task.endswith(" : " + task))
            and (host is None or r.host == host)]


def statuses(result: TaskResult) -> dict[str, str]:
    return {v["article"]: v["status"] for v in result.result["verdicts"]}
