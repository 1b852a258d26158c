# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: compliance_report
type: aggregate
short_description: Write a fleet compliance report (JSON, JUnit XML, HTML) from kb_article results
version_added: 1.0.0
description:
  - Collects the verdicts of every C(kbfix.windows.kb_article) task (also when written as the short name
    C(kb_article)), the hosts that were unreachable in any task, and the failures of C(kb_article) tasks.
  - A host that failed an earlier task (without C(ignore_errors)) and therefore never reached any
    C(kb_article) task is reported as failed, so that it does not silently disappear from the report.
  - For each host and article the last result wins. The earliest state seen in the run is kept as
    C(before), that is the module's C(verdicts_before) or the first C(verdicts) seen for that host and
    article, whichever came first.
  - Writes C(kbfix-report.json), C(kbfix-report.xml) and C(kbfix-report.html) into O(output_dir) when the
    playbook ends. The formats are described in C(docs/report-format.md).
  - It is an aggregate callback, so the normal stdout callback keeps working (molecule's idempotence check
    reads it). Enable it with C(ANSIBLE_CALLBACKS_ENABLED=kbfix.windows.compliance_report) or
    C(callbacks_enabled = kbfix.windows.compliance_report) in the C([defaults]) section of C(ansible.cfg).
  - Only verdicts, task names and error messages go into the report; never host variables or connection
    settings. Results hidden with C(no_log) are left out (with a warning).
  - "While the playbook runs it prints, per host, each C(kbfix.windows) step as it starts and, after each
    C(kb_article) task, one line per article with its verdict (and the verdict before, when the task changed
    it): C(kbfix [xp1] KB828753 noncompliant -> compliant: ...). When the playbook ends it prints a summary
    naming each host that is not compliant with its failing checks, or the problem that kept a verdict from
    being given. O(progress) turns both off."
requirements:
  - enable the callback (see description)
options:
  output_dir:
    description:
      - Directory the report files are written to; created when missing. A relative path is relative to
        the current directory (or, when set in C(ansible.cfg), to that file's directory).
    type: path
    default: report
    env:
      - name: KBFIX_REPORT_DIR
    ini:
      - section: callback_compliance_report
        key: output_dir
  formats:
    description:
      - Which files to write. C(json) is C(kbfix-report.json), C(junit) is C(kbfix-report.xml),
        C(html) is C(kbfix-report.html).
      - In the environment variable, a comma-separated list (C(KBFIX_REPORT_FORMATS=json,html)).
    type: list
    elements: str
    choices: [json, junit, html]
    default: [json, junit, html]
    env:
      - name: KBFIX_REPORT_FORMATS
    ini:
      - section: callback_compliance_report
        key: formats
  progress:
    description:
      - Print the per-host progress lines and the end-of-play summary described above.
      - They are never printed when the stdout callback writes JSON (C(ansible.posix.json),
        C(ansible.posix.jsonl)), whose output programs read.
    type: bool
    default: true
    env:
      - name: KBFIX_PROGRESS
    ini:
      - section: callback_compliance_report
        key: progress
"""

# ansible-test's validate-modules wants the documentation before any import.
import os
import re
from collections.abc import Mapping
from typing import Any

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import KbfixError
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import (
    OK_STATUSES,
    FleetReport,
    cell_message,
    normalise_article_id,
    verdict_from_dict,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.writers import write_reports
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import redact

KB_ARTICLE_FQCN = "kbfix.windows.kb_article"
KB_ARTICLE_SHORT = "kb_article"
_ARTICLE_ID = re.compile(r"^(KB|Q)\d+$")
KBFIX_PREFIX = "kbfix.windows."
# stdout callbacks whose output is read by programs: a line of ours would make it unparseable
_MACHINE_STDOUT = re.compile(r"(^|\.)jsonl?$")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kbfix.windows.compliance_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report = FleetReport()
        # Hosts that left the play because a non-kb_article task failed; reported only if they never
        # reached a kb_article task (decided at the end, when that is known).
        self._dropped: dict[str, tuple[str, str]] = {}

    # -- which tasks count -------------------------------------------------------------------------------

    @staticmethod
    def is_kb_article(task: Any) -> bool:
        # resolved_action is the FQCN after collection search (collections: keyword, action_groups);
        # the action as written covers `kb_article:` resolving to a playbook-adjacent or legacy plugin.
        resolved = getattr(task, "resolved_action", None)
        return resolved == KB_ARTICLE_FQCN or getattr(task, "action", None) in (KB_ARTICLE_FQCN, KB_ARTICLE_SHORT)

    @staticmethod
    def is_kbfix(task: Any) -> bool:
        action = getattr(task, "resolved_action", None) or getattr(task, "action", None) or ""
        return str(action).startswith(KBFIX_PREFIX) or task_is_short_kb_article(task)

    # -- what a person sees while it runs ----------------------------------------------------------------

    def _progress(self) -> bool:
        if not self.get_option("progress"):
            return False
        stdout = str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK") or "")
        return not _MACHINE_STDOUT.search(stdout)

    def _say(self, host: str, text: str) -> None:
        self._display.display(f"kbfix [{host}] {text}")

    def _say_verdicts(self, host: str, item: Mapping[str, Any]) -> None:
        """One line per article: its verdict, the verdict before when the task changed it, and why."""
        before = {}
        for data in item.get("verdicts_before") or []:
            verdict = verdict_from_dict(data) if isinstance(data, Mapping) else None
            if verdict is not None:
                before[verdict.article] = verdict.status
        for data in item.get("verdicts") or []:
            verdict = verdict_from_dict(data) if isinstance(data, Mapping) else None
            if verdict is None:
                continue
            was = before.get(verdict.article)
            status = f"{was} -> {verdict.status}" if was and was != verdict.status else verdict.status
            self._say(host, f"{verdict.article} {status}" + (f": {verdict.reason}" if verdict.reason else ""))

    def _say_summary(self) -> None:
        """The hosts that are not compliant, each with its failing checks (or what kept it from a verdict)."""
        summary = self.report.summary()
        self._display.banner("KBFIX COMPLIANCE SUMMARY")
        self._display.display(f"{summary.compliant_hosts} of {summary.hosts} host(s) compliant or not "
                              f"applicable, {summary.articles} article(s)")
        for host in self.report.hosts():
            status = self.report.host_status(host)
            if status in OK_STATUSES:
                continue
            self._display.display(f"{host.name}: {status}")
            shown = set()
            for cell in self.report.cells(host):
                if cell.status not in OK_STATUSES and cell.status != "not_run":
                    self._display.display(f"  {cell.article} {cell.status}: {cell_message(cell)}")
                    shown.add(cell.problem)
            # problems not tied to one article (the host never answered, an earlier task failed), unless the
            # article lines above already said it
            for problem in ([host.unreachable] if host.unreachable else []) + host.failures:
                if problem not in shown:
                    task = f" (task '{problem.task}')" if problem.task else ""
                    self._display.display(f"  {problem.kind}{task}: {problem.message}")

    @staticmethod
    def _article_hint(item: Mapping[str, Any], args: Any) -> str | None:
        """The article a failed result was about, when the result or the task arguments say so."""
        invocation = item.get("invocation")
        module_args = invocation.get("module_args") if isinstance(invocation, Mapping) else None
        candidates = [item.get("article"),
                      module_args.get("article") if isinstance(module_args, Mapping) else None,
                      args.get("article") if isinstance(args, Mapping) else None,
                      item.get("item")]  # the loop variable, when the loop runs over article ids
        for candidate in candidates:
            if isinstance(candidate, str) and _ARTICLE_ID.match(normalise_article_id(candidate)):
                return candidate
        return None

    # -- collecting --------------------------------------------------------------------------------------

    def _collect(self, result: Any, failed: bool) -> None:
        host = result.host.get_name()
        task = result.task_name
        data = _scrubbed(result)
        if data.get("censored"):
            self._display.warning(f"kbfix.windows.compliance_report: the result of task '{task}' for {host} is "
                                  "hidden by no_log and is left out of the report")
            return
        if task_check_mode(result):
            self.report.check_mode = True
        loop = data.get("results")
        if isinstance(loop, list) and "verdicts" not in data:
            for item in loop:
                if isinstance(item, Mapping) and not item.get("skipped"):
                    self._collect_one(host, task, item, bool(item.get("failed")), None)
            return
        self._collect_one(host, task, data, failed, result.task_fields.get("args"))

    def _collect_one(self, host: str, task: str, item: Mapping[str, Any], failed: bool, args: Any) -> None:
        verdicts = item.get("verdicts")
        before = item.get("verdicts_before")
        self.report.add_unsigned_packages(host, item)
        recorded: list[str] = []
        if isinstance(verdicts, list):
            recorded = self.report.add_result(host, verdicts, before if isinstance(before, list) else None)
            if self._progress():
                self._say_verdicts(host, item)
        if item.get("unreachable"):
            # a loop item whose host stopped answering (the whole-task case arrives as on_unreachable)
            self.report.add_unreachable(host, _message(item), self._article_hint(item, args), task)
        elif failed:
            for article in recorded or [self._article_hint(item, args)]:
                self.report.add_failure(host, _message(item), article, task)
        elif not recorded:
            self._display.vvv(f"kbfix.windows.compliance_report: task '{task}' returned no verdicts for {host}")

    def v2_playbook_on_start(self, playbook: Any) -> None:
        name = getattr(playbook, "_file_name", "")
        if name:
            # basename only: the report may be published, the controller's directory layout need not be
            self.report.playbooks.append(os.path.basename(name))

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        if self.is_kbfix(task) and self._progress():
            self._say(host.get_name(), f"{task.get_name()} ...")

    def v2_runner_on_ok(self, result: Any) -> None:
        if self.is_kb_article(result.task):
            self._collect(result, failed=False)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if self.is_kb_article(result.task):
            self._collect(result, failed=True)
        elif not ignore_errors:
            host = result.host.get_name()
            self._dropped.setdefault(host, (result.task_name, _message(_scrubbed(result))))

    def v2_runner_on_unreachable(self, result: Any) -> None:
        host = result.host.get_name()
        article = self._article_hint(result.result, result.task_fields.get("args")) \
            if self.is_kb_article(result.task) else None
        self.report.add_unreachable(host, _message(_scrubbed(result)), article, result.task_name)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        for host, (task, message) in self._dropped.items():
            if not self.report.has_host(host):
                self.report.add_failure(host, message, task=task)
        output_dir = self.get_option("output_dir")
        formats = self.get_option("formats")
        try:
            written = write_reports(self.report, output_dir, formats)
        except (OSError, KbfixError) as error:
            self._display.warning(f"kbfix.windows.compliance_report: report not written to {output_dir}: {error}")
            return
        if self._progress():
            self._say_summary()
        # -v only: an aggregate callback must not add lines to a machine-read stdout (json callback)
        self._display.v("kbfix.windows.compliance_report: wrote " + ", ".join(str(p) for p in written))


def task_is_short_kb_article(task: Any) -> bool:
    return getattr(task, "action", None) == KB_ARTICLE_SHORT


def task_check_mode(result: Any) -> bool:
    return result.task_fields.get("check_mode") is True


def _scrubbed(result: Any) -> Mapping[str, Any]:
    """The task's result without the host's passwords: ansible-core's own messages (a connection option it
    refused, before any kbfix code ran) may quote them, and the report may be published."""
    data: Mapping[str, Any] = redact.scrub(result.result, redact.host_secrets(getattr(result, "host", None)))
    return data


def _message(data: Mapping[str, Any]) -> str:
    message = data.get("msg") or data.get("message") or data.get("reason")
    return str(message) if message else "no message"
