# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.package_lock: verify a directory of hotfix packages on the controller and record their
SHA-256 in a lock file that the hotfix and kb_article tasks then hold the files to (``kbfix_package_lock``).

The logic is ``plugin_utils.tasks.package_settings``; no host is contacted.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import package_settings
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.arguments import check_text


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "path": {"type": "str", "required": True},
        "dest": {"type": "str", "required": True},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        for name in ("path", "dest"):
            check_text(args[name], name)
            if not args[name].strip():
                raise ArgumentError(name, "must be a path on the controller")
        rules = package_settings.host_policy(
            lambda name: None if name == package_settings.LOCK else self.host_variable(name, task_vars))
        return package_settings.lock_directory(str(Path(args["path"]).expanduser()),
                                               str(Path(args["dest"]).expanduser()), rules, write=not self.check_mode)
