# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet compliance report model: per-host ``kb_article`` results in, per host x article status out.

``FleetReport`` collects what a playbook run learned (verdicts, failures, unreachable hosts) and answers the
questions every writer asks: which articles, which hosts, what status each host x article cell has. The
writers (one module per format, chosen in ``writers.RENDERERS``) only format. Formats and field meanings are
documented in docs/report-format.md.

Everything that comes in is untrusted: host names come from inventories, check values from hosts; each
writer escapes for its format.

No Ansible imports: the callback plugin and the report action are the only Ansible-facing parts.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ..article.model import VERDICT_STATUSES, CheckResult, PlanStep, Verdict, VerdictStatus

SCHEMA_VERSION = 1
GENERATOR = "kbfix.windows.compliance_report"

ReportStatus = Literal[
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable",
    "not_audited",
]
CellStatus = Literal[
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable",
    "not_audited", "not_run",
]

# Display order (summary, legend): the verdict statuses, then the ways a result can be missing ("not_audited":
# a report from the fact cache found no verdict at all for the host).
REPORT_STATUSES: tuple[ReportStatus, ...] = (
    "compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable",
    "not_audited",
)
# Worst first: a host takes the status of its worst cell. Noncompliant ranks above unknown because it is a
# confirmed problem; both rank above reboot_pending (the fix is in, only the restart is missing).
_SEVERITY: dict[str, int] = {
    "unreachable": 0, "failed": 1, "noncompliant": 2, "unknown": 3, "not_audited": 4, "reboot_pending": 5,
    "compliant": 6, "not_applicable": 7, "not_run": 8,
}
OK_STATUSES: frozenset[str] = frozenset({"compliant", "not_applicable"})


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
    "not_audited": StatusInfo("Never audited", "\u2205", "no verdict was ever recorded for this host"),
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
    observed: datetime.datetime | None = None  # when ``after`` was judged, for reports built from cached facts

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
    never_audited: bool = False  # a report from cached facts found no verdict for this host

    @property
    def observed(self) -> datetime.datetime | None:
        """When the oldest verdict shown for this host was judged (None: no time known, e.g. this run)."""
        times = [r.observed for r in self.articles.values() if r.observed is not None]
        return min(times) if times else None


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

    def add_not_audited(self, host: str) -> None:
        """``host`` is in the inventory but no verdict was ever recorded for it."""
        self._host(host).never_audited = True

    def set_observed(self, host: str, article: str, moment: datetime.datetime | None) -> None:
        """When the verdict recorded for ``host`` x ``article`` was judged (reports from cached facts)."""
        record = self._hosts[host].articles.get(normalise_article_id(article))
        if record is not None:
            record.observed = moment

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
        if host.never_audited:
            return Cell(host.name, article, "not_audited", None, None)
        return Cell(host.name, article, "not_run", None, None)

    def cells(self, host: HostRecord) -> list[Cell]:
        return [self.cell(host, article) for article, _title in self.articles()]

    def host_status(self, host: HostRecord) -> ReportStatus:
        if host.unreachable is not None:
            return "unreachable"
        if host.never_audited and not host.articles:
            return "not_audited"
        statuses = [c.status for c in self.cells(host) if c.status != "not_run"]
        if host.failures:
            statuses.append("failed")
        if not statuses:
            return "unknown"
        return min(statuses, key=lambda s: _SEVERITY[s])

    def article_summaries(self, top_checks: int = 5) -> list[ArticleSummary]:
        counts: dict[str, dict[str, int]] = {a: dict.fromkeys(REPORT_STATUSES, 0) for a, _t in self.articles()}
        checks: dict[str, Counter[str]] = {a: Counter() for a in counts}
        for host in self._hosts.values():
            for cell in self.cells(host):
                if cell.status == "not_run":
                    continue
                counts[cell.article][cell.status] += 1
                verdict = cell.record.after if cell.record else None
                if verdict is not None and cell.problem is None:
                    checks[cell.article].update({c.id for c in failing_checks(verdict)})
        return [ArticleSummary(a, title, counts[a], checks[a].most_common(top_checks))
                for a, title in self.articles()]

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


@dataclass(frozen=True)
class ArticleSummary:
    """One article across the fleet: results per status (every status, zeros included) and the failing
    checks most often seen, most frequent first, as (check id, number of hosts)."""

    article: str
    title: str
    counts: dict[str, int]
    failing_checks: list[tuple[str, int]]


def failing_checks(verdict: Verdict) -> list[CheckResult]:
    return [c for c in verdict.checks if c.passed is False]


def undecided_checks(verdict: Verdict) -> list[CheckResult]:
    return [c for c in verdict.checks if c.passed is None]


def utc_now(now: datetime.datetime | None) -> datetime.datetime:
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def age_text(moment: datetime.datetime, now: datetime.datetime) -> str:
    """How long before ``now`` ``moment`` was, in the largest whole unit: "3 d ago", "5 min ago"."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def iso_time(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def check_line(check: CheckResult) -> str:
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
    parts += [check_line(c) for c in failing_checks(verdict)]
    if cell.status == "unknown":
        parts += [f"could not read: {m}" for m in verdict.missing]
        parts += [check_line(c) for c in undecided_checks(verdict)]
    return "; ".join(parts) or STATUS_INFO[cell.status].label
