# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.kb_article: audit or enforce KB articles on a Windows host (WinRM, or SMB for NT 4.0), without
PowerShell.

The logic is ``plugin_utils.tasks.article_runner`` (enforcement: ``plugin_utils.tasks.enforcer``); this action
turns task arguments into its inputs (paths searched like ``files/`` lookups, the ``kbfix_os`` fact) and its
result into the task result.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, ArticleFault
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import (
    article_runner,
    catalogue,
    compliance_cache,
    installer,
    package_settings,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction, result_from_error
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.arguments import check_timeout

# The collection's own article specs, parsed, validated and indexed by id once in the controller's main process
# (this module is imported there before workers fork): each worker then only hashes the file it is given.
ROLES = Path(__file__).resolve().parents[2] / "roles"
catalogue.preload_specs(ROLES)


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "articles": {"type": "list", "elements": "raw", "required": True},
        "variables": {"type": "dict", "default": {}},
        "state": {"type": "str", "default": "audited", "choices": list(article_runner.STATES)},
        "package_source": {"type": "str"},
        "allow_pending_reboot": {"type": "bool", "default": False},
        "fail_on": {"type": "list", "elements": "str", "default": [], "choices": list(article_runner.VERDICT_STATUSES)},
        "host_facts": {"type": "dict"},
        "install_timeout": {"type": "int", "default": 3600},
        "reboot_timeout": {"type": "int", "default": 600},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Everything that can be wrong with the task is found before the first request.
        if not args["articles"]:
            raise ArgumentError("articles", "list at least one article")
        check_timeout(args["install_timeout"], "install_timeout")
        check_timeout(args["reboot_timeout"], "reboot_timeout", minimum=0)  # 0: do not wait
        items = args["articles"]
        # Articles named by id (or "all") are looked up among the collection's and the user's
        # (kbfix_article_paths); the directories are read only when a task names an article that way.
        known = (catalogue.known_articles(ROLES, self.article_dirs(task_vars))
                 if any(isinstance(i, str) and (catalogue.is_article_id(i) or catalogue.is_all(i)) for i in items)
                 else {})
        requests = [self._article(label, item, task_vars, args["variables"], known)
                    for label, item in catalogue.expand_all(items, known)]
        if not requests:
            raise ArgumentError("articles", "'all' found no article (the collection's roles and "
                                            f"{catalogue.ARTICLE_PATHS_VARIABLE} hold none)")
        try:
            articles = article_runner.prepare(requests, args["variables"])
        except ArticleFault as fault:
            return self._fault(fault, requests=0)
        options = article_runner.Options(
            state=args["state"], package_source=self._package_source(args["package_source"]),
            package_policy=package_settings.host_policy(lambda name: self.host_variable(name, task_vars)),
            allow_pending_reboot=args["allow_pending_reboot"], check_mode=self.check_mode,
            install_timeout=float(args["install_timeout"]), resume_timeout=float(args["reboot_timeout"]),
        )
        os_facts = self.task_os_facts(args["host_facts"], task_vars)
        # The facts task's pending-restart answer, when it ran for this host: one read of each fact per play.
        known_restart = self.known_restart(task_vars) if self.known_os_facts(task_vars) is not None else None
        with self.connected(task_vars) as transport:
            start = transport.request_count
            try:
                result = article_runner.run(transport, articles, os_facts, options, known_restart)
            except ArticleFault as fault:
                return self._fault(fault, requests=transport.request_count - start)
        article_runner.log_verdicts(self.log, transport.host, result.verdicts)
        out = result.to_dict()
        warnings = article_runner.article_warnings(articles)
        if warnings:
            out["warnings"] = warnings
        out["requests"] = transport.request_count - start
        out["msg"] = article_runner.summary(result)
        if self.diff_mode and result.diff:
            out["diff"] = result.diff
        refreshed = article_runner.refreshed_restart_facts(known_restart, result)
        # The verdicts as a cacheable fact: a fact cache keeps them for fleet_report (docs/scale.md).
        facts = {**(refreshed or {}), **compliance_cache.verdict_facts(task_vars, result.verdicts, args["state"],
                                                                       self.check_mode)}
        if facts:
            out["ansible_facts"] = facts
        failing = article_runner.failing(result.verdicts, args["fail_on"])
        if failing:
            out["failed"] = True
            out["msg"] = "; ".join(f"{v.article} is {v.status} (fail_on): {v.reason}" for v in failing)
            if len(failing) == 1:
                out["article"] = failing[0].article
        return out

    # --- arguments ------------------------------------------------------------------------------------

    def _article(self, label: str, item: t.Any, task_vars: dict[str, t.Any], common: dict[str, t.Any],
                 known: dict[str, catalogue.KnownArticle]) -> article_runner.ArticleRequest:
        if isinstance(item, str) and catalogue.is_article_id(item):
            return catalogue.article_request(known, item, label, common,
                                             lambda name: self.host_variable(name, task_vars))
        if isinstance(item, str):
            return article_runner.ArticleRequest(self._spec_path(item, label, task_vars), {}, label, label)
        if not isinstance(item, dict):
            raise ArgumentError(label, f"must be a spec path or a mapping with spec and variables, got {item!r}")
        unknown = sorted(set(item) - {"spec", "variables"})
        if unknown:
            raise ArgumentError(f"{label}.{unknown[0]}", "unknown key (allowed: spec, variables)")
        spec = item.get("spec")
        variables = item.get("variables") or {}
        if not isinstance(variables, dict):
            raise ArgumentError(f"{label}.variables", f"must be a mapping, got {variables!r}")
        if isinstance(spec, str):
            return article_runner.ArticleRequest(self._spec_path(spec, f"{label}.spec", task_vars), variables, label,
                                                 f"{label}.spec")
        if isinstance(spec, dict):
            return article_runner.ArticleRequest(spec, variables, label, f"{label}.spec")
        raise ArgumentError(f"{label}.spec", f"must be a spec path or inline spec data, got {spec!r}")

    def _spec_path(self, path: str, argument: str, task_vars: dict[str, t.Any]) -> Path:
        return Path(self.find_spec_file(path, argument, task_vars))

    def _package_source(self, text: str | None) -> installer.PackageLocation | None:
        if not text:
            return None
        if installer.source_kind(text) != "controller":
            return installer.remote_location(text, "package_source")
        found = self.find_controller_file(text, "package_source")
        if not Path(found).is_dir():
            raise ArgumentError("package_source", f"{found} is not a directory of packages")
        return installer.PackageLocation("controller", found)

    def _fault(self, fault: ArticleFault, requests: int) -> dict[str, t.Any]:
        out = result_from_error(fault.cause)
        out["msg"] = f"{fault.article}: {out['msg']}"
        out["article"] = fault.article
        out["requests"] = requests
        out.update(fault.partial)
        # Changes made before the failure stay made: say so, or a rerun would look like the first attempt.
        out["changed"] = any(c.get("changed") and not c.get("planned") for c in out.get("changes", []))
        return out
