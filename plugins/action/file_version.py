# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.file_version: versions, sizes and dates of files (one CIM_DataFile query over WinRM, the admin
shares on NT 4.0), judged
branch-aware (GDR/LDR on NT 6.x, build lines everywhere) with the engine's ``versions`` module."""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import file_check
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "paths": {"type": "list", "elements": "str", "required": True, "aliases": ["path"]},
        "minimum_version": {"type": "list", "elements": "str"},
        "branch_floor": {"type": "str"},
        "exact_version": {"type": "str"},
        "size": {"type": "int"},
        "date": {"type": "str"},
        "report_only": {"type": "bool", "default": False},
        "reboot_timeout": {"type": "int", "default": 600},
    }
    MUTUALLY_EXCLUSIVE: t.ClassVar[list[list[str]]] = [
        ["minimum_version", "exact_version"], ["minimum_version", "size"], ["minimum_version", "date"],
        ["exact_version", "size"], ["exact_version", "date"],
    ]

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        paths = file_check.check_paths(args["paths"])  # every argument is checked before the first request
        criteria = file_check.criteria_from(args)
        with self.connected(task_vars) as transport:
            return self.resuming(transport, lambda: file_check.audit(
                transport, args["paths"], paths, criteria, lambda: self.os_facts(transport, task_vars),
                report_only=args["report_only"]), args)
