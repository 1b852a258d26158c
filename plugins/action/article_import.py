# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.article_import: import a saved KB article into a thin article role with a checked spec."""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.article_import_task import run_import


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "src": {"type": "path", "required": True},
        "dest": {"type": "path", "required": True},
        "force": {"type": "bool", "default": False},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Runs on the controller only: the host of the task is not contacted.
        base = Path(self._loader.get_basedir())
        src = Path(args["src"])
        if not src.is_absolute():
            src = Path(self.find_controller_file(args["src"], "src"))
        dest = Path(args["dest"]) if Path(args["dest"]).is_absolute() else base / args["dest"]
        return run_import(src, dest, force=args["force"], check_mode=self.check_mode, diff=self.diff_mode)
