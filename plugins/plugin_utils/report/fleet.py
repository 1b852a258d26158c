# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet compliance report: per-host ``kb_article`` results in, JSON / JUnit XML / HTML out.

``FleetReport`` collects what a playbook run learned (verdicts, failures, unreachable hosts) and answers the
questions every writer asks: which articles, which hosts, what status each host x article cell has. The
writers only format. Formats and field meanings are documented in docs/report-format.md.

Everything that comes in is untrusted: host names come from inventories, check values from hosts. The JSON
writer relies on ``json``, the XML writer on ElementTree plus stripping characters XML 1.0 forbids, the HTML
writer escapes every value (``_Html`` marks the only strings that are not escaped again).

No Ansible imports: the callback plugin is the only Ansible-facing part.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from ..article.model import VERDICT_STATUSES, CheckResult, PlanStep, Verdict, VerdictStatus
from ..errors import ArgumentError

SCHEMA_VERSION = 1
GENERATOR = "kbfix.windows.compliance_report"

ReportStatus = Literal[
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable",
]
CellStatus = Literal[
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable", "not_run",
]
ReportFormat = Literal["json", "junit", "html"]

# Display order (summary, legend): the verdict statuses, then the two ways a result can be missing.
REPORT_STATUSES: tuple[ReportStatus, ...] = (
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable",
)
# Worst first: a host takes the status of its worst cell. Noncompliant ranks above unknown because it is a
# confirmed problem; both rank above reboot_pending (the fix is in, only the restart is missing).
_SEVERITY: dict[str, int] = {
    "unreachable": 0, "failed": 1, "noncompliant": 2, "unknown": 3, "reboot_pending": 4,
    "compliant": 5, "not_applicable": 6, "not_run": 7,
}
OK_STATUSES: frozenset[str] = frozenset({"compliant", "not_applicable"})

FILE_NAMES: dict[ReportFormat, str] = {
    "json": "kbfix-report.json",
    "junit": "kbfix-report.xml",
    "html": "kbfix-report.html",
}
FORMATS: tuple[ReportFormat, ...] = ("json", "junit", "html")


@dataclass(frozen=True)
class StatusInfo:
    label: str
    symbol: str  # shown next to the label so the grid does not rely on colour alone
    description: str


STATUS_INFO: dict[str, StatusInfo] = {
    "compliant": StatusInfo("Compliant", "\u2713", "every check passed"),
    "noncompliant": StatusInfo("Noncompliant", "\u2717", "at least one check failed; the fix is missing"),
    "reboot_pending": StatusInfo("Reboot pending", "\u21bb", "the fix is installed, a restart completes it"),
    "not_applicable": StatusInfo("Not applicable", "\u2013", "the article does not apply to this OS / SP"),
    "unknown": StatusInfo("Unknown", "?", "some facts could not be read"),
    "failed": StatusInfo("Failed", "!", "the task failed; no verdict"),
    "unreachable": StatusInfo("Unreachable", "\u2298", "the host did not answer"),
    "not_run": StatusInfo("Not checked", "\u00b7", "the article was not checked on this host"),
}


@dataclass(frozen=True)
class Problem:
    """A task that gave no verdict: it failed, or the host could not be reached."""

    kind: Literal["failed", "unreachable"]
    message: str
    task: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "task": self.task}


@dataclass
class ArticleRecord:
    """What the run learned about one article on one host. ``after`` is the last verdict; ``before`` the
    earliest state seen in this run (a module's ``verdicts_before`` or the first audit), None when the run
    saw the article only once. ``problem`` is set when the last task for this article gave no verdict."""

    article: str
    title: str = ""
    after: Verdict | None = None
    before: Verdict | None = None
    problem: Problem | None = None

    @property
    def status(self) -> ReportStatus:
        if self.problem is not None:
            return self.problem.kind
        if self.after is not None:
            return self.after.status
        return "unknown"


@dataclass
class HostRecord:
    name: str
    articles: dict[str, ArticleRecord] = field(default_factory=dict)
    unreachable: Problem | None = None
    failures: list[Problem] = field(default_factory=list)  # failures not tied to one article
    # Packages installed without a signature through the kbfix_package_unsigned opt-out (an auditor asks).
    unsigned_packages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cell:
    """One host x article square of the grid, with the status every writer shows for it."""

    host: str
    article: str
    status: CellStatus
    record: ArticleRecord | None  # None: no result for this pair (not run, or host-level problem)
    problem: Problem | None  # the problem that decided the status, if any


@dataclass(frozen=True)
class Summary:
    hosts: int
    articles: int
    compliant_hosts: int  # hosts whose every cell is compliant or not applicable
    hosts_by_status: dict[str, int]
    results_by_status: dict[str, int]  # host x article cells; "not checked" cells are not results
    restart_required_hosts: int

    @property
    def fleet_compliant(self) -> bool:
        return self.hosts > 0 and self.compliant_hosts == self.hosts

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet_compliant": self.fleet_compliant, "hosts": self.hosts, "articles": self.articles,
            "compliant_hosts": self.compliant_hosts, "hosts_by_status": dict(self.hosts_by_status),
            "results_by_status": dict(self.results_by_status),
            "restart_required_hosts": self.restart_required_hosts,
        }


# --------------------------------------------------------------------------------------------------------
# Turning untrusted verdict dicts back into model objects


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def normalise_article_id(value: Any) -> str:
    """``kb828753`` and `` KB828753 `` name the same article; specs and tasks spell it both ways."""
    return _text(value).strip().upper()


def _check_from_dict(data: Mapping[str, Any]) -> CheckResult:
    passed = data.get("passed")
    return CheckResult(
        id=_text(data.get("id")),
        kind=cast(Any, _text(data.get("kind"))),
        passed=passed if isinstance(passed, bool) else None,
        expected=_text(data.get("expected")),
        found=_text(data.get("found")),
        message=_text(data.get("message")),
    )


def _step_from_dict(data: Mapping[str, Any]) -> PlanStep:
    return PlanStep.from_dict(data)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, (list, tuple)):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict | None:
    """The inverse of ``Verdict.to_dict`` for data that went through a task result. Tolerant on purpose:
    a report must still be written when one module returns something odd, so bad fields are coerced and
    an unrecognised status becomes ``unknown`` (saying so). None when there is no article id."""
    article = normalise_article_id(data.get("article"))
    if not article:
        return None
    status = _text(data.get("status"))
    reason = _text(data.get("reason"))
    if status not in VERDICT_STATUSES:
        reason = f"unrecognised status {status!r}" + (f": {reason}" if reason else "")
        status = "unknown"
    missing = data.get("missing")
    return Verdict(
        article=article,
        title=_text(data.get("title")),
        status=cast(VerdictStatus, status),
        reason=reason,
        checks=[_check_from_dict(c) for c in _mappings(data.get("checks"))],
        plan=[_step_from_dict(s) for s in _mappings(data.get("plan"))],
        missing=[_text(m) for m in missing] if isinstance(missing, (list, tuple)) else [],
        restart_required=bool(data.get("restart_required", False)),
    )


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    # host2 before host10, KB253729 before KB828753 and Q253729, whatever the case.
    return tuple((0, int(part)) if part.isdigit() else (1, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


# --------------------------------------------------------------------------------------------------------
# The model


class FleetReport:
    """Results of one playbook run across the fleet. Feed it in the order events happen: for each host and
    article the last result wins, and the earliest state is kept as ``before``."""

    def __init__(self, title: str = "KB compliance report") -> None:
        self.title = title
        self.playbooks: list[str] = []
        self.check_mode = False
        self._hosts: dict[str, HostRecord] = {}
        self._titles: dict[str, str] = {}
        # articles() is asked for once per host by every writer: keep it, drop it when a pair appears
        self._articles: list[tuple[str, str]] | None = None

    # -- input -------------------------------------------------------------------------------------------

    def _host(self, name: str) -> HostRecord:
        record = self._hosts.get(name)
        if record is None:
            record = self._hosts[name] = HostRecord(name)
        return record

    def _record(self, host: str, article: str) -> ArticleRecord:
        records = self._host(host).articles
        record = records.get(article)
        if record is None:
            record = records[article] = ArticleRecord(article, self._titles.get(article, ""))
            self._articles = None
        return record

    def _learn_title(self, verdict: Verdict) -> None:
        if verdict.title and self._titles.get(verdict.article) != verdict.title:
            self._titles[verdict.article] = verdict.title
            self._articles = None

    def add_result(self, host: str, verdict_dicts: Iterable[Mapping[str, Any]],
                   before: Iterable[Mapping[str, Any]] | None = None) -> list[str]:
        """Record the verdicts one ``kb_article`` task returned for ``host`` (``verdicts`` and, in enforced
        state, ``verdicts_before``). Returns the article ids recorded; entries without an article id are
        ignored (the caller may report them as a failure)."""
        earlier: dict[str, Verdict] = {}
        for data in before or ():
            verdict = verdict_from_dict(data) if isinstance(data, Mapping) else None
            if verdict is not None:
                earlier[verdict.article] = verdict
        recorded: list[str] = []
        for data in verdict_dicts:
            verdict = verdict_from_dict(data) if isinstance(data, Mapping) else None
            if verdict is None:
                continue
            self._learn_title(verdict)
            record = self._record(host, verdict.article)
            if record.before is None:
                # The earliest state wins: after audit -> enforce -> enforce, "before" is the audit, not the
                # already-fixed state the second enforce started from.
                record.before = record.after if record.after is not None else earlier.get(verdict.article)
            record.after = verdict
            record.title = verdict.title or record.title
            record.problem = None
            recorded.append(verdict.article)
        return recorded

    def add_unsigned_packages(self, host: str, result: Mapping[str, Any]) -> None:
        """Note the packages a kb_article or hotfix result installed through the unsigned opt-out."""
        entries = [*_mappings(result.get("changes")), *_mappings([result.get("install")])]
        for entry in entries:
            check = entry.get("package_check")
            if isinstance(check, Mapping) and check.get("signature") == "unsigned_allowed":
                name = _text(check.get("file"))
                record = self._host(host)
                if name not in record.unsigned_packages:
                    record.unsigned_packages.append(name)

    def add_failure(self, host: str, message: str, article: str | None = None, task: str = "") -> None:
        """A task failed for ``host``. With ``article`` the failure replaces that article's status (its last
        verdict stays visible as context); without, it is a host-level failure."""
        problem = Problem("failed", message, task)
        article_id = normalise_article_id(article) if article else ""
        if article_id:
            self._record(host, article_id).problem = problem
        else:
            self._host(host).failures.append(problem)

    def add_unreachable(self, host: str, message: str, article: str | None = None, task: str = "") -> None:
        """``host`` did not answer. Ansible drops it from the play, so every article without a verdict for
        it is unreachable too, and the host as a whole is shown as unreachable."""
        problem = Problem("unreachable", message, task)
        host_record = self._host(host)
        host_record.unreachable = problem
        article_id = normalise_article_id(article) if article else ""
        if article_id:
            self._record(host, article_id).problem = problem

    # -- queries -----------------------------------------------------------------------------------------

    def has_host(self, name: str) -> bool:
        return name in self._hosts

    def hosts(self) -> list[HostRecord]:
        return sorted(self._hosts.values(), key=lambda h: _natural_key(h.name))

    def articles(self) -> list[tuple[str, str]]:
        """(article id, title) of every article any host reported, in natural order."""
        if self._articles is None:
            ids = {a for h in self._hosts.values() for a in h.articles}
            self._articles = [(a, self._titles.get(a, "")) for a in sorted(ids, key=_natural_key)]
        return list(self._articles)

    def cell(self, host: HostRecord, article: str) -> Cell:
        record = host.articles.get(article)
        if record is not None:
            return Cell(host.name, article, record.status, record, record.problem)
        # No result for this pair: a host that dropped out of the play did not get to it.
        if host.unreachable is not None:
            return Cell(host.name, article, "unreachable", None, host.unreachable)
        if host.failures:
            return Cell(host.name, article, "failed", None, host.failures[-1])
        return Cell(host.name, article, "not_run", None, None)

    def cells(self, host: HostRecord) -> list[Cell]:
        return [self.cell(host, article) for article, _title in self.articles()]

    def host_status(self, host: HostRecord) -> ReportStatus:
        if host.unreachable is not None:
            return "unreachable"
        statuses = [c.status for c in self.cells(host) if c.status != "not_run"]
        if host.failures:
            statuses.append("failed")
        if not statuses:
            return "unknown"
        return min(statuses, key=lambda s: _SEVERITY[s])

    def summary(self) -> Summary:
        hosts_by_status: dict[str, int] = dict.fromkeys(REPORT_STATUSES, 0)
        results_by_status: dict[str, int] = dict.fromkeys(REPORT_STATUSES, 0)
        restart = 0
        for host in self._hosts.values():
            hosts_by_status[self.host_status(host)] += 1
            for cell in self.cells(host):
                if cell.status != "not_run":
                    results_by_status[cell.status] += 1
            if any(r.after is not None and r.after.restart_required and r.status not in OK_STATUSES
                   for r in host.articles.values()):
                restart += 1
        compliant = sum(n for status, n in hosts_by_status.items() if status in OK_STATUSES)
        return Summary(len(self._hosts), len(self.articles()), compliant, hosts_by_status, results_by_status,
                       restart)


def failing_checks(verdict: Verdict) -> list[CheckResult]:
    return [c for c in verdict.checks if c.passed is False]


def undecided_checks(verdict: Verdict) -> list[CheckResult]:
    return [c for c in verdict.checks if c.passed is None]


def _utc_now(now: datetime.datetime | None) -> datetime.datetime:
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------------
# JSON


def report_to_dict(report: FleetReport, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The JSON document (schema 1, see docs/report-format.md)."""
    hosts: list[dict[str, Any]] = []
    for host in report.hosts():
        articles: dict[str, Any] = {}
        for cell in report.cells(host):
            if cell.status == "not_run":
                continue
            record = cell.record
            articles[cell.article] = {
                "status": cell.status,
                "problem": cell.problem.to_dict() if cell.problem else None,
                "before": record.before.to_dict() if record and record.before else None,
                "after": record.after.to_dict() if record and record.after else None,
            }
        hosts.append({
            "name": host.name,
            "status": report.host_status(host),
            "unreachable": host.unreachable.to_dict() if host.unreachable else None,
            "failures": [f.to_dict() for f in host.failures],
            "unsigned_packages": list(host.unsigned_packages),
            "articles": articles,
        })
    return {
        "schema": SCHEMA_VERSION,
        "generator": GENERATOR,
        "generated": _iso(_utc_now(now)),
        "title": report.title,
        "run": {"playbooks": list(report.playbooks), "check_mode": report.check_mode},
        "statuses": list(REPORT_STATUSES),
        "summary": report.summary().to_dict(),
        "articles": [{"article": a, "title": t} for a, t in report.articles()],
        "hosts": hosts,
    }


def render_json(report: FleetReport, now: datetime.datetime | None = None) -> str:
    return json.dumps(report_to_dict(report, now), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------------
# JUnit XML

# XML 1.0 cannot carry most control characters, not even escaped; a registry value read from a host can.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _check_line(check: CheckResult) -> str:
    line = f"{check.id}: expected {check.expected or '(nothing)'}, found {check.found or '(nothing)'}"
    return f"{line} ({check.message})" if check.message else line


def cell_message(cell: Cell) -> str:
    """One paragraph saying why a cell is not compliant: the failing checks' expected and found values,
    the missing facts, or the problem that kept the task from giving a verdict."""
    if cell.problem is not None:
        task = f" (task '{cell.problem.task}')" if cell.problem.task else ""
        prefix = "host unreachable" if cell.problem.kind == "unreachable" else "task failed"
        return f"{prefix}{task}: {cell.problem.message}"
    verdict = cell.record.after if cell.record else None
    if verdict is None:
        return STATUS_INFO[cell.status].description
    parts = [verdict.reason] if verdict.reason else []
    parts += [_check_line(c) for c in failing_checks(verdict)]
    if cell.status == "unknown":
        parts += [f"could not read: {m}" for m in verdict.missing]
        parts += [_check_line(c) for c in undecided_checks(verdict)]
    return "; ".join(parts) or STATUS_INFO[cell.status].label


def _cell_details(cell: Cell) -> str:
    lines = [cell_message(cell)]
    verdict = cell.record.after if cell.record else None
    if verdict is not None:
        lines += [f"check {'passed' if c.passed else 'FAILED' if c.passed is False else 'undecided'}: "
                  f"{_check_line(c)}" for c in verdict.checks]
        lines += [f"plan: {step.description}" for step in verdict.plan]
        if verdict.restart_required:
            lines.append("applying the plan requires a restart")
    return "\n".join(lines)


def _junit_case(parent: ET.Element, cell: Cell, name: str, classname: str) -> None:
    case = ET.SubElement(parent, "testcase", name=_xml_text(name), classname=_xml_text(classname), time="0")
    if cell.status in ("noncompliant", "reboot_pending"):
        tag = "failure"
    elif cell.status in ("unknown", "failed", "unreachable"):
        tag = "error"
    elif cell.status == "not_applicable":
        tag = "skipped"
    else:
        return
    outcome = ET.SubElement(case, tag, message=_xml_text(cell_message(cell)))
    if tag != "skipped":
        outcome.set("type", cell.status)
        outcome.text = _xml_text(_cell_details(cell))


def _count(suite: ET.Element) -> dict[str, int]:
    cases = suite.findall("testcase")
    return {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }


def render_junit(report: FleetReport, now: datetime.datetime | None = None,
                 group_by: Literal["article", "host"] = "article") -> str:
    """JUnit XML: one test case per host x article; noncompliant and reboot pending are failures, unknown,
    failed and unreachable are errors, not applicable is skipped. Pairs that were never checked are left
    out. Hosts that have no cell at all (no article reached any host) get one case each, in suite
    ``kbfix.windows.hosts``, so that an unreachable fleet does not look like an empty, passing one."""
    stamp = _iso(_utc_now(now)).removesuffix("Z")
    root = ET.Element("testsuites", name=_xml_text(report.title))
    suites: dict[str, ET.Element] = {}

    def suite(name: str, title: str = "") -> ET.Element:
        if name not in suites:
            element = suites[name] = ET.SubElement(root, "testsuite", name=_xml_text(name), timestamp=stamp)
            if title:
                props = ET.SubElement(element, "properties")
                ET.SubElement(props, "property", name="title", value=_xml_text(title))
        return suites[name]

    titles = dict(report.articles())
    if group_by == "article":
        for article, title in report.articles():
            suite(article, title)
    for host in report.hosts():
        cells = [c for c in report.cells(host) if c.status != "not_run"]
        for cell in cells:
            if group_by == "article":
                _junit_case(suite(cell.article), cell, host.name, f"kbfix.{cell.article}")
            else:
                name = f"{cell.article}: {titles[cell.article]}" if titles.get(cell.article) else cell.article
                _junit_case(suite(host.name), cell, name, host.name)
        if not cells and report.host_status(host) != "unknown":
            problem = host.unreachable or (host.failures[-1] if host.failures else None)
            status: CellStatus = report.host_status(host)
            _junit_case(suite("kbfix.windows.hosts"), Cell(host.name, "", status, None, problem), host.name,
                        "kbfix.windows.hosts")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for element in suites.values():
        for key, value in _count(element).items():
            element.set(key, str(value))
            totals[key] += value
        element.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------------------------------------
# HTML


class _Html(str):
    """Markup that has been escaped already. Everything else passed to ``_el`` is escaped, so forgetting
    to escape an untrusted value is not possible by omission."""


def _esc(value: object) -> _Html:
    if isinstance(value, _Html):
        return value
    return _Html(html.escape(str(value), quote=True))


def _join(parts: Iterable[object]) -> _Html:
    return _Html("".join(_esc(p) for p in parts))


def _el(tag: str, *children: object, **attrs: object) -> _Html:
    """``<tag attrs>children</tag>``. Attribute names: trailing ``_`` dropped (``class_``), ``_`` -> ``-``."""
    text = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for name, value in attrs.items() if value is not None and value is not False
    )
    return _Html(f"<{tag}{text}>{_join(children)}</{tag}>")


def _badge(status: str, short: bool = False) -> _Html:
    info = STATUS_INFO[status]
    return _el("span", _el("span", info.symbol, class_="sym", aria_hidden="true"), " ",
               "" if short else info.label, class_=f"badge st-{status}")


_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--bg:#f3f5f8;
--compliant:#1a7f37;--compliant-bg:#dafbe1;--compliant-accent:#1a7f37;
--noncompliant:#b3141f;--noncompliant-bg:#ffe2de;--noncompliant-accent:#cf222e;
--reboot_pending:#7d5200;--reboot_pending-bg:#fff1bf;--reboot_pending-accent:#d4a72c;
--not_applicable:#4f5965;--not_applicable-bg:#eceff3;--not_applicable-accent:#afb8c1;
--unknown:#6a32c9;--unknown-bg:#efe5ff;--unknown-accent:#8250df;
--failed:#86160a;--failed-bg:#ffd3c2;--failed-accent:#a4260d;
--unreachable:#ffffff;--unreachable-bg:#3d4451;--unreachable-accent:#3d4451;
--not_run:#8c959f;--not_run-bg:#ffffff;--not_run-accent:#d8dee4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI","Noto Sans","Liberation Sans",Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#1b2a3a;color:#fff;padding:20px 32px 18px}
header h1{margin:0 0 4px;font-size:22px;font-weight:600;letter-spacing:.2px}
header .meta{color:#c4cfdb;font-size:13px}
header .meta span+span:before{content:"\\00b7";margin:0 8px;color:#7d8c9c}
main{padding:20px 32px 24px;max-width:1500px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 12px;font-weight:600}
.verdict{display:flex;align-items:center;gap:12px;padding:12px 16px;border-radius:8px;margin:0 0 18px;
font-size:15px;font-weight:600;border:1px solid}
.verdict.ok{background:var(--compliant-bg);color:var(--compliant);border-color:#aceebb}
.verdict.bad{background:var(--noncompliant-bg);color:var(--noncompliant);border-color:#ffc1ba}
.verdict .sym{font-size:20px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0}
.card{flex:1 1 0;min-width:118px;border:1px solid var(--line);border-left:5px solid var(--line);border-radius:6px;
padding:8px 12px;margin:0;background:#fff}
.card dt{font-size:12.5px;color:var(--muted);white-space:nowrap}
.card dd{margin:2px 0 0;font-size:26px;font-weight:600;line-height:1.2}
.card.zero dd{color:#b4bcc5}
.hostline{margin:12px 0 4px}
.results{margin:0;display:flex;flex-wrap:wrap;align-items:center;gap:6px 16px;font-size:13px}
.results .zero{color:#8c959f}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:0 0 12px;padding:0;list-style:none;font-size:12.5px}
.legend li{display:flex;align-items:center;gap:6px}
.legend .desc{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap;
border:1px solid rgba(31,35,40,.15);vertical-align:1px}
.sym{font-weight:700}
table{border-collapse:collapse;width:100%}
.gridwrap{overflow-x:auto}
table.grid th,table.grid td{border:1px solid var(--line);padding:7px 10px;text-align:left;vertical-align:middle}
table.grid thead th{background:#eef2f6;font-weight:600;vertical-align:top}
table.grid thead th .title{display:block;font-weight:400;color:var(--muted);font-size:12px;line-height:1.3;
margin-top:2px}
table.grid th.host{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;
font-weight:600;font-size:13px;background:#fff;white-space:nowrap}
td.hoststatus{width:1%;white-space:nowrap}
td.cell{font-weight:600;min-width:128px}
td.cell a{color:inherit;text-decoration:none;display:block}
td.cell a:hover{text-decoration:underline}
td.cell .was{display:block;font-weight:400;font-size:12px;opacity:.85}
td.cell.st-not_run{color:#a3acb6;font-weight:400;font-size:12.5px}
.finding{border:1px solid var(--line);border-left:5px solid var(--line);border-radius:6px;padding:4px 16px 10px;
margin:0 0 12px}
.finding h3{font-size:15px;margin:8px 0 6px;font-weight:600}
.finding h3 .mono{font-size:14px}
.article{margin:10px 0 0;padding-top:8px;border-top:1px dashed var(--line)}
.article h4{font-size:14px;margin:0 0 4px;font-weight:600}
.article h4 .ttl{font-weight:400;color:var(--muted)}
.label{font-size:12px;font-weight:600;color:var(--muted);margin:8px 0 2px}
table.checks{font-size:13px;margin:0 0 6px}
table.checks th,table.checks td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
table.checks th{background:#f6f8fa;font-weight:600}
code,.mono{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;
word-break:break-all}
td.expected code{color:var(--compliant)}
td.found code{color:var(--noncompliant)}
.reason{margin:2px 0 4px}
.problem{background:#fff1ee;border:1px solid #ffcfc4;border-radius:6px;padding:7px 12px;margin:6px 0}
.problem.unreachable{background:#eef0f3;border-color:#c9ced6}
ol.plan,ul.missing{margin:2px 0 6px;padding-left:22px}
.muted{color:var(--muted)}
.none{color:var(--muted);font-style:italic;margin:0}
footer{color:var(--muted);font-size:12px;padding:0 32px 24px}
@media print{body{background:#fff}header{color:#000;background:#fff}header .meta{color:#333}
section,.finding{break-inside:avoid}}
"""
# One rule set per status, so each colour is defined once (the custom properties above).
_CSS += "".join(
    f".st-{s}{{background:var(--{s}-bg);color:var(--{s})}}"
    f".card.st-{s},.finding.st-border-{s}{{border-left-color:var(--{s}-accent)}}"
    f".card.st-{s} dt .sym{{color:var(--{s}-accent)}}"
    for s in STATUS_INFO
)
# Cards are white; only their accent carries the colour (the rule above would tint the whole card).
_CSS += ".card{background:#fff;color:var(--fg)}"


class _HtmlPage:
    """Builds the HTML page; anchors use indexes, never host names, so untrusted text never forms an id."""

    def __init__(self, report: FleetReport, now: datetime.datetime) -> None:
        self.report = report
        self.now = now
        self.summary = report.summary()
        self.articles = report.articles()
        self.hosts = report.hosts()
        self.host_index = {h.name: i for i, h in enumerate(self.hosts)}
        self.article_index = {a: i for i, (a, _t) in enumerate(self.articles)}

    def anchor(self, host: str, article: str | None = None) -> str:
        base = f"h{self.host_index[host]}"
        return base if article is None else f"{base}-a{self.article_index[article]}"

    def render(self) -> str:
        report = self.report
        head = _join([
            _Html('<meta charset="utf-8">'),
            # No script, no fetch: the page is an artefact that may be opened from a CI server.
            _Html('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                  'style-src \'unsafe-inline\'; img-src data:">'),
            _Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            _el("title", report.title),
            _el("style", _Html(_CSS)),
        ])
        meta = [_el("span", f"Generated {_iso(self.now).replace('T', ' ').replace('Z', ' UTC')}"),
                _el("span", f"{self.summary.hosts} hosts"), _el("span", f"{self.summary.articles} articles")]
        if report.playbooks:
            meta.append(_el("span", "Playbooks: " + ", ".join(report.playbooks)))
        if report.check_mode:
            meta.append(_el("span", "check mode: some results are predictions"))
        body = _join([
            _el("header", _el("h1", report.title), _el("div", *meta, class_="meta")),
            _el("main", self.verdict(), self.summary_section(), self.grid_section(), self.findings_section(),
                self.changes_section()),
            _el("footer", f"{GENERATOR} \u00b7 report schema {SCHEMA_VERSION} \u00b7 "
                          "kbfix-report.json holds the same data in machine-readable form"),
        ])
        return "<!DOCTYPE html>\n" + _el("html", _el("head", head), _el("body", body), lang="en") + "\n"

    def verdict(self) -> _Html:
        s = self.summary
        if s.fleet_compliant:
            text = f"Fleet compliant: all {s.hosts} hosts are compliant or the articles do not apply"
            return _el("div", _el("span", "\u2713", class_="sym", aria_hidden="true"), text, class_="verdict ok",
                       role="status", data_fleet="compliant")
        attention = s.hosts - s.compliant_hosts
        text = (f"Fleet not compliant: {attention} of {s.hosts} hosts need attention" if s.hosts
                else "No results: no kb_article task reported for any host")
        return _el("div", _el("span", "\u2717", class_="sym", aria_hidden="true"), text, class_="verdict bad",
                   role="status", data_fleet="noncompliant")

    def summary_section(self) -> _Html:
        cards = []
        for status in REPORT_STATUSES:
            count = self.summary.hosts_by_status[status]
            info = STATUS_INFO[status]
            cards.append(_el("div",
                             _el("dt", _el("span", info.symbol, class_="sym", aria_hidden="true"), " ", info.label),
                             _el("dd", str(count)),
                             class_=f"card st-{status}" + (" zero" if count == 0 else ""),
                             data_status=status, data_hosts=str(count)))
        results = []
        for status in REPORT_STATUSES:
            count = self.summary.results_by_status[status]
            results.append(_el("span", _badge(status, short=True), " ", _el("strong", str(count)), " ",
                               STATUS_INFO[status].label.lower(), class_="result" + (" zero" if not count else ""),
                               data_status=status, data_results=str(count)))
        restart = self.summary.restart_required_hosts
        facts = (f"{self.summary.compliant_hosts} of {self.summary.hosts} hosts compliant \u00b7 "
                 f"{restart} {'host needs' if restart == 1 else 'hosts need'} a restart to apply the plan")
        return _el("section",
                   _el("h2", "Hosts by status"),
                   _el("dl", *cards, class_="cards"),
                   _el("p", facts, class_="hostline", id="host-summary"),
                   _el("p", _el("span", "Results per host \u00d7 article:", class_="muted"), " ", *results,
                       class_="results", id="result-summary"))

    def legend(self) -> _Html:
        return _el("ul", *(
            _el("li", _badge(s), _el("span", info.description, class_="desc"))
            for s, info in STATUS_INFO.items()), class_="legend", aria_label="Legend")

    def grid_section(self) -> _Html:
        if not self.hosts:
            return _el("section", _el("h2", "Compliance by host and article"),
                       _el("p", "No hosts reported.", class_="none"))
        header_cells = [_el("th", "Host", scope="col"), _el("th", "Host status", scope="col")]
        header_cells += [_el("th", article, _el("span", title, class_="title"), scope="col", title=title or None)
                         for article, title in self.articles]
        rows = []
        for host in self.hosts:
            cells = [_el("th", host.name, scope="row", class_="host"),
                     _el("td", _badge(self.report.host_status(host)), class_="hoststatus")]
            cells += [self.grid_cell(cell) for cell in self.report.cells(host)]
            rows.append(_el("tr", *cells, data_host=host.name))
        table = _el("table", _el("thead", _el("tr", *header_cells)), _el("tbody", *rows), class_="grid")
        return _el("section", _el("h2", "Compliance by host and article"), self.legend(),
                   _el("div", table, class_="gridwrap"))

    def grid_cell(self, cell: Cell) -> _Html:
        info = STATUS_INFO[cell.status]
        content: list[object] = [_el("span", info.symbol, class_="sym", aria_hidden="true"), " ", info.label]
        record = cell.record
        if record and record.before and record.after and record.before.status != record.status:
            content.append(_el("span", f"was {STATUS_INFO[record.before.status].label.lower()}", class_="was"))
        if cell.status not in OK_STATUSES and cell.status != "not_run":
            # A cell without a record shows a host-level problem: its details are the host's finding.
            target = self.anchor(cell.host, cell.article if cell.record else None)
            content = [_el("a", *content, href=f"#{target}")]
        return _el("td", *content, class_=f"cell st-{cell.status}", data_host=cell.host, data_article=cell.article,
                   data_status=cell.status, title=cell_message(cell) if cell.status != "not_run" else None)

    def findings_section(self) -> _Html:
        blocks = [self.host_findings(h) for h in self.hosts if self.report.host_status(h) not in OK_STATUSES]
        if not blocks:
            return _el("section", _el("h2", "Findings"), _el("p", "Nothing to fix.", class_="none"))
        return _el("section", _el("h2", "Findings"), *blocks)

    def host_findings(self, host: HostRecord) -> _Html:
        status = self.report.host_status(host)
        parts: list[object] = [_el("h3", _el("span", host.name, class_="mono"), " ", _badge(status))]
        if host.unreachable is not None:
            parts.append(self.problem(host.unreachable))
        parts += [self.problem(p) for p in host.failures]
        for cell in self.report.cells(host):
            if cell.status in OK_STATUSES or cell.status == "not_run":
                continue
            if cell.record is None:
                continue  # host-level problem, shown above
            parts.append(self.article_finding(cell))
        return _el("div", *parts, class_=f"finding st-border-{status}", id=self.anchor(host.name),
                   data_host=host.name)

    @staticmethod
    def problem(problem: Problem) -> _Html:
        what = "Unreachable" if problem.kind == "unreachable" else "Failed"
        task = [" (task ", _el("q", problem.task), ")"] if problem.task else []
        return _el("div", _el("strong", what), *task, ": ", _el("span", problem.message, class_="mono"),
                   class_=f"problem {problem.kind}")

    def article_finding(self, cell: Cell) -> _Html:
        record = cell.record
        if record is None:  # the writer only asks for findings of cells that hold a record
            raise AssertionError("article_finding needs a cell with a record")
        title = f" \u2014 {record.title}" if record.title else ""
        parts: list[object] = [_el("h4", _badge(cell.status), " ", cell.article, _el("span", title, class_="ttl"))]
        if cell.problem is not None:
            parts.append(self.problem(cell.problem))
        verdict = record.after
        if verdict is not None:
            if cell.problem is not None:
                parts.append(_el("p", f"Last verdict before the problem: {STATUS_INFO[verdict.status].label}.",
                                 class_="muted"))
            if verdict.reason:
                parts.append(_el("p", verdict.reason, class_="reason"))
            parts.append(self.checks_table(failing_checks(verdict), "Failing checks"))
            parts.append(self.checks_table(undecided_checks(verdict), "Undecided checks"))
            if verdict.missing:
                parts += [_el("div", "Facts that could not be read", class_="label"),
                          _el("ul", *(_el("li", _el("code", m)) for m in verdict.missing), class_="missing")]
            if verdict.plan:
                restart = " (requires a restart)" if verdict.restart_required else ""
                parts += [_el("div", "Remediation plan", restart, class_="label"),
                          _el("ol", *(_el("li", step.description) for step in verdict.plan), class_="plan")]
        return _el("div", *parts, class_="article", id=self.anchor(cell.host, cell.article),
                   data_article=cell.article)

    @staticmethod
    def checks_table(checks: Sequence[CheckResult], caption: str) -> _Html:
        if not checks:
            return _Html("")
        head = _el("tr", *(_el("th", h, scope="col") for h in ("Check", "Expected", "Found", "Note")))
        rows = [_el("tr", _el("td", _el("code", c.id)), _el("td", _el("code", c.expected), class_="expected"),
                    _el("td", _el("code", c.found), class_="found"), _el("td", c.message), class_="check")
                for c in checks]
        return _join([_el("div", caption, class_="label"),
                      _el("table", _el("thead", head), _el("tbody", *rows), class_="checks")])

    def changes_section(self) -> _Html:
        rows = []
        for host in self.hosts:
            for record in host.articles.values():
                if record.before is None or record.after is None or record.before.status == record.after.status:
                    continue
                rows.append(_el("tr", _el("td", host.name, class_="mono"), _el("td", record.article),
                                _el("td", _badge(record.before.status)), _el("td", _badge(record.after.status))))
        if not rows:
            return _el("section", _el("h2", "Changes in this run"),
                       _el("p", "No article changed status during this run.", class_="none"))
        head = _el("tr", *(_el("th", h, scope="col") for h in ("Host", "Article", "Before", "After")))
        return _el("section", _el("h2", "Changes in this run"),
                   _el("table", _el("thead", head), _el("tbody", *rows), class_="checks changes"))


def render_html(report: FleetReport, now: datetime.datetime | None = None) -> str:
    """A self-contained page: inline CSS, no script, no external resource."""
    return _HtmlPage(report, _utc_now(now)).render()


# --------------------------------------------------------------------------------------------------------
# Files


def _write_atomically(path: Path, text: str) -> None:
    # A CI job may pick the report up while a second run rewrites it: never show it half-written.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_reports(report: FleetReport, directory: str | os.PathLike[str],
                  formats: Iterable[str] = FORMATS, now: datetime.datetime | None = None) -> list[Path]:
    """Write the requested formats into ``directory`` (created if needed); returns the paths written.
    All formats carry the same generation time."""
    moment = _utc_now(now)
    renderers = {"json": render_json, "junit": render_junit, "html": render_html}
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in renderers]
    if unknown:
        raise ArgumentError("formats", f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in wanted:
        path = target / FILE_NAMES[cast(ReportFormat, name)]
        _write_atomically(path, renderers[name](report, moment))
        written.append(path)
    return written
