# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report: one self-contained page (inline CSS, no external resource), built by ``HtmlPage``."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ..article.model import CheckResult
from . import html_fleet
from .html_markup import CSS, Html, badge, el, join
from .model import (
    GENERATOR,
    OK_STATUSES,
    REPORT_STATUSES,
    SCHEMA_VERSION,
    STATUS_INFO,
    Cell,
    FleetReport,
    HostRecord,
    Problem,
    failing_checks,
    iso_time,
    undecided_checks,
    utc_now,
)


class HtmlPage:
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
        head = join([
            Html('<meta charset="utf-8">'),
            # No fetch, no script but the filter bar's own (allowed by its hash): the page is an artefact that
            # may be opened from a CI server.
            Html('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                 f'style-src \'unsafe-inline\'; img-src data:; script-src \'{html_fleet.SCRIPT_HASH}\'">'),
            Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            el("title", report.title),
            el("style", Html(CSS + html_fleet.CSS)),
        ])
        meta = [el("span", f"Generated {iso_time(self.now).replace('T', ' ').replace('Z', ' UTC')}"),
                el("span", f"{self.summary.hosts} hosts"), el("span", f"{self.summary.articles} articles")]
        if report.playbooks:
            meta.append(el("span", "Playbooks: " + ", ".join(report.playbooks)))
        if report.check_mode:
            meta.append(el("span", "check mode: some results are predictions"))
        body = join([
            el("header", el("h1", report.title), el("div", *meta, class_="meta")),
            el("main", self.verdict(), self.summary_section(), html_fleet.article_summary_section(report),
               self.grid_section(), self.findings_section(), self.changes_section()),
            el("footer", f"{GENERATOR} \u00b7 report schema {SCHEMA_VERSION} \u00b7 "
                         "kbfix-report.json holds the same data in machine-readable form"),
        ])
        script = el("script", Html(html_fleet.SCRIPT))
        return "<!DOCTYPE html>\n" + el("html", el("head", head), el("body", body, script), lang="en") + "\n"

    def verdict(self) -> Html:
        s = self.summary
        if s.fleet_compliant:
            text = f"Fleet compliant: all {s.hosts} hosts are compliant or the articles do not apply"
            return el("div", el("span", "\u2713", class_="sym", aria_hidden="true"), text, class_="verdict ok",
                      role="status", data_fleet="compliant")
        attention = s.hosts - s.compliant_hosts
        text = (f"Fleet not compliant: {attention} of {s.hosts} hosts need attention" if s.hosts
                else "No results: no kb_article task reported for any host")
        return el("div", el("span", "\u2717", class_="sym", aria_hidden="true"), text, class_="verdict bad",
                  role="status", data_fleet="noncompliant")

    def summary_section(self) -> Html:
        cards = []
        for status in REPORT_STATUSES:
            count = self.summary.hosts_by_status[status]
            info = STATUS_INFO[status]
            cards.append(el("div",
                            el("dt", el("span", info.symbol, class_="sym", aria_hidden="true"), " ", info.label),
                            el("dd", str(count)),
                            class_=f"card st-{status}" + (" zero" if count == 0 else ""),
                            data_status=status, data_hosts=str(count)))
        results = []
        for status in REPORT_STATUSES:
            count = self.summary.results_by_status[status]
            results.append(el("span", badge(status, short=True), " ", el("strong", str(count)), " ",
                              STATUS_INFO[status].label.lower(), class_="result" + (" zero" if not count else ""),
                              data_status=status, data_results=str(count)))
        restart = self.summary.restart_required_hosts
        facts = (f"{self.summary.compliant_hosts} of {self.summary.hosts} hosts compliant \u00b7 "
                 f"{restart} {'host needs' if restart == 1 else 'hosts need'} a restart to apply the plan")
        return el("section",
                  el("h2", "Hosts by status"),
                  el("dl", *cards, class_="cards"),
                  el("p", facts, class_="hostline", id="host-summary"),
                  el("p", el("span", "Results per host \u00d7 article:", class_="muted"), " ", *results,
                      class_="results", id="result-summary"))

    def legend(self) -> Html:
        return el("ul", *(
            el("li", badge(s), el("span", info.description, class_="desc"))
            for s, info in STATUS_INFO.items()), class_="legend", aria_label="Legend")

    def grid_section(self) -> Html:
        return html_fleet.grid_section(self.report, self.hosts, self.articles, self.anchor, self.now, self.legend())

    def findings_section(self) -> Html:
        blocks = [self.host_findings(h) for h in self.hosts if self.report.host_status(h) not in OK_STATUSES]
        if not blocks:
            return el("section", el("h2", "Findings"), el("p", "Nothing to fix.", class_="none"))
        return el("section", el("h2", "Findings"), *blocks)

    def host_findings(self, host: HostRecord) -> Html:
        status = self.report.host_status(host)
        parts: list[object] = [el("h3", el("span", host.name, class_="mono"), " ", badge(status))]
        if host.unreachable is not None:
            parts.append(self.problem(host.unreachable))
        parts += [self.problem(p) for p in host.failures]
        for cell in self.report.cells(host):
            if cell.status in OK_STATUSES or cell.status == "not_run":
                continue
            if cell.record is None:
                continue  # host-level problem, shown above
            parts.append(self.article_finding(cell))
        return el("div", *parts, class_=f"finding st-border-{status}", id=self.anchor(host.name),
                  data_host=host.name)

    @staticmethod
    def problem(problem: Problem) -> Html:
        what = "Unreachable" if problem.kind == "unreachable" else "Failed"
        task = [" (task ", el("q", problem.task), ")"] if problem.task else []
        return el("div", el("strong", what), *task, ": ", el("span", problem.message, class_="mono"),
                  class_=f"problem {problem.kind}")

    def article_finding(self, cell: Cell) -> Html:
        record = cell.record
        if record is None:  # the writer only asks for findings of cells that hold a record
            raise AssertionError("article_finding needs a cell with a record")
        title = f" \u2014 {record.title}" if record.title else ""
        parts: list[object] = [el("h4", badge(cell.status), " ", cell.article, el("span", title, class_="ttl"))]
        if cell.problem is not None:
            parts.append(self.problem(cell.problem))
        verdict = record.after
        if verdict is not None:
            if cell.problem is not None:
                parts.append(el("p", f"Last verdict before the problem: {STATUS_INFO[verdict.status].label}.",
                                class_="muted"))
            if verdict.reason:
                parts.append(el("p", verdict.reason, class_="reason"))
            parts.append(self.checks_table(failing_checks(verdict), "Failing checks"))
            parts.append(self.checks_table(undecided_checks(verdict), "Undecided checks"))
            if verdict.missing:
                parts += [el("div", "Facts that could not be read", class_="label"),
                          el("ul", *(el("li", el("code", m)) for m in verdict.missing), class_="missing")]
            if verdict.plan:
                restart = " (requires a restart)" if verdict.restart_required else ""
                parts += [el("div", "Remediation plan", restart, class_="label"),
                          el("ol", *(el("li", step.description) for step in verdict.plan), class_="plan")]
        return el("div", *parts, class_="article", id=self.anchor(cell.host, cell.article),
                  data_article=cell.article)

    @staticmethod
    def checks_table(checks: Sequence[CheckResult], caption: str) -> Html:
        if not checks:
            return Html("")
        head = el("tr", *(el("th", h, scope="col") for h in ("Check", "Expected", "Found", "Note")))
        rows = [el("tr", el("td", el("code", c.id)), el("td", el("code", c.expected), class_="expected"),
                   el("td", el("code", c.found), class_="found"), el("td", c.message), class_="check")
                for c in checks]
        return join([el("div", caption, class_="label"),
                     el("table", el("thead", head), el("tbody", *rows), class_="checks")])

    def changes_section(self) -> Html:
        rows = []
        for host in self.hosts:
            for record in host.articles.values():
                if record.before is None or record.after is None or record.before.status == record.after.status:
                    continue
                rows.append(el("tr", el("td", host.name, class_="mono"), el("td", record.article),
                               el("td", badge(record.before.status)), el("td", badge(record.after.status))))
        if not rows:
            return el("section", el("h2", "Changes in this run"),
                      el("p", "No article changed status during this run.", class_="none"))
        head = el("tr", *(el("th", h, scope="col") for h in ("Host", "Article", "Before", "After")))
        return el("section", el("h2", "Changes in this run"),
                  el("table", el("thead", head), el("tbody", *rows), class_="checks changes"))


def render_html(report: FleetReport, now: datetime.datetime | None = None) -> str:
    """A self-contained page: inline CSS, one inline script (the filters), no external resource."""
    return HtmlPage(report, utc_now(now)).render()
