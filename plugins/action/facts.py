# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.facts: OS, boot, pending restart and WinRM facts over WMI, as ``kbfix_*`` ansible_facts."""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils import host_facts
from ansible_collections.kbfix.windows.plugins.plugin_utils.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {}

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        del args, task_vars  # facts are always read fresh: they exist to refresh what a play knows
        return {"changed": False, "ansible_facts": host_facts.gather(self.winrm_client())}
