# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.registry_value: one registry value, written with read-back (StdRegProv over WinRM, the remote
registry on NT 4.0; no PowerShell on the host)."""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import registry_args, registry_task
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "path": {"type": "str", "required": True, "aliases": ["key"]},
        "name": {"type": "str"},
        "type": {"type": "str", "default": "string", "choices": list(registry_args.REGISTRY_TYPES)},
        "data": {"type": "raw"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "multistring_mode": {"type": "str", "default": "replace", "choices": list(registry_args.MULTISTRING_MODES)},
        "case_insensitive": {"type": "bool", "default": False},
        "create_key": {"type": "bool", "default": True},
        "view": {"type": "str", "default": "native", "choices": ["native", "32", "64"]},
        "reboot_timeout": {"type": "int", "default": 600},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        req = registry_task.request_from(args)  # every argument is checked before the first request
        with self.connected(task_vars) as transport:
            # Reads, compares, writes with read-back: after a restart the fresh read finds a write that landed.
            return self.resuming(transport, lambda: registry_task.ensure(
                transport, req, lambda: self.os_facts(transport, task_vars), check_mode=self.check_mode,
                diff_mode=self.diff_mode), args)
