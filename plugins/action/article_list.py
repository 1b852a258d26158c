# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.article_list: the known articles (the collection's and those in ``kbfix_article_paths``) and
where each comes from. Reads only controller files: no host is contacted."""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import catalogue
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction

ROLES = Path(__file__).resolve().parents[2] / "roles"


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "paths": {"type": "list", "elements": "str"},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        if args["paths"] is None:
            dirs = self.article_dirs(task_vars)
        else:
            dirs = catalogue.article_dirs(args["paths"], Path(self._loader.get_basedir()))
        known = catalogue.known_articles(ROLES, dirs)
        articles = [known[key].to_dict() for key in sorted(known)]
        summary = ", ".join(f"{a['id']} ({a['origin']})" for a in articles) or "none"
        return {"changed": False, "articles": articles, "msg": f"{len(articles)} article(s): {summary}"}
