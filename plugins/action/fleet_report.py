# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.fleet_report: the fleet compliance report from the verdicts in the fact cache.

Contacts no host: it reads the ``kbfix_compliance`` fact of each inventory host through ``hostvars``. The
logic is ``plugin_utils.tasks.compliance_cache``.
"""

from __future__ import annotations

import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import compliance_cache
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "hosts": {"type": "list", "elements": "str"},
        "output_dir": {"type": "path"},
        "formats": {"type": "list", "elements": "str", "default": ["json", "junit", "html"],
                    "choices": ["json", "junit", "html"]},
        "title": {"type": "str", "default": "KB compliance report"},
        "run_result": {"type": "str"},
        "upload_url": {"type": "str"},
        "upload_username": {"type": "str"},
        "upload_password": {"type": "str", "no_log": True},
        "upload_validate_certs": {"type": "bool", "default": True},
        "upload_timeout": {"type": "int", "default": 30},
    }
    REQUIRED_TOGETHER: t.ClassVar[list[list[str]]] = [["upload_username", "upload_password"]]

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        if self.check_mode:
            args = {**args, "output_dir": None, "upload_url": None}  # check mode writes and sends nothing
        return compliance_cache.run_report(args, task_vars)
