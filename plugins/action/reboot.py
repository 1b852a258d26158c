# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.reboot: restart a host (shutdown.exe through the WinRM cmd shell, or the remote registry's
shutdown call on NT 4.0) and wait for a new boot time."""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import restart
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "mode": {"type": "str", "default": "always", "choices": list(restart.MODES)},
        "reboot_timeout": {"type": "int", "default": 600},
        "connect_timeout": {"type": "int", "default": 5},
        "pre_reboot_delay": {"type": "int", "default": 2},
        "msg": {"type": "str", "default": "Reboot initiated by Ansible"},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        task = restart.RebootTask.from_args(args)  # checked before the first request
        with self.connected(task_vars) as transport:
            return restart.run(transport, task, lambda: self.os_facts(transport, task_vars),
                               check_mode=self.check_mode, diff_mode=self.diff_mode)
