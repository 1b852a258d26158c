# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.facts: OS, boot, pending restart and transport facts as ``kbfix_*`` ansible_facts."""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "winrm_version": {"type": "str", "default": "identify", "choices": ["identify", "os_table"]},
        "reboot_timeout": {"type": "int", "default": 600},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Facts are always read fresh: they exist to refresh what a play knows.
        ask_version = args["winrm_version"] == "identify"
        with self.connected(task_vars) as transport:
            return self.resuming(transport, lambda: {
                "changed": False, "ansible_facts": transport.host_facts(ask_version=ask_version)}, args)
