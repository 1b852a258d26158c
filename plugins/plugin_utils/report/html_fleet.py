# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of the HTML page that must stay usable at fleet scale (thousands of hosts, dozens of articles):
the per-article summary, the filter bar and its script, and the compact host x article grid.

Size: a grid cell is a one-letter class and a symbol (about 20 bytes), not-applicable cells are empty
(collapsed; the filter bar shows them), a row carries its cells' status letters once (``data-cells``) for the
filters. Rows come in ``tbody`` chunks that Chromium lays out only when they scroll into view. The script is
the page's only one, allowed by its hash in the Content-Security-Policy; without it the page shows everything.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Callable, Sequence

from .html_markup import Html, badge, el, esc, join, void
from .model import OK_STATUSES, REPORT_STATUSES, STATUS_INFO, Cell, FleetReport, HostRecord, age_text, iso_time

# One letter per status: the grid's cell classes and the row's data-cells string.
CODES: dict[str, str] = {
    "compliant": "c", "noncompliant": "n", "reboot_pending": "r", "not_applicable": "a", "unknown": "u",
    "failed": "f", "unreachable": "x", "not_audited": "v", "not_run": "o",
}
ROWS_PER_CHUNK = 100
FIRST_ARTICLE_COLUMN = 4  # host, host status, data age, then one column per article (CSS nth-child, 1-based)

SCRIPT = """(function(){
var d=document,q=d.getElementById('f-host'),st=d.getElementById('f-status'),ar=d.getElementById('f-article'),
na=d.getElementById('f-na'),out=d.getElementById('f-count'),grid=d.getElementById('grid'),
hide=d.getElementById('f-columns');
if(!grid){return;}
var rows=grid.querySelectorAll('tbody tr'),codes=JSON.parse(grid.getAttribute('data-codes'));
function apply(){
var text=q.value.trim().toLowerCase(),s=st.value,col=ar.value===''?-1:parseInt(ar.value,10),
code=s===''?'':codes[s],shown=0;
for(var i=0;i<rows.length;i++){var r=rows[i],cells=r.getAttribute('data-cells'),ok=true;
if(text&&r.getAttribute('data-host').toLowerCase().indexOf(text)<0){ok=false;}
if(ok&&code){ok=col<0?(cells.indexOf(code)>=0||r.getAttribute('data-status')===s):cells.charAt(col)===code;}
else if(ok&&col>=0){ok=cells.charAt(col)!=='a'||na.checked;}
r.hidden=!ok;if(ok){shown++;}}
var n=col+FIRST;
hide.textContent=col<0?'':'#grid tr>:nth-child(n+'+FIRST+'):not(:nth-child('+n+')){display:none}';
grid.classList.toggle('show-na',na.checked);
out.textContent=shown+' of '+rows.length+' hosts';}
[q,st,ar,na].forEach(function(e){e.addEventListener('input',apply);e.addEventListener('change',apply);});
apply();})();""".replace("FIRST", str(FIRST_ARTICLE_COLUMN))
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")

CSS = (
    ".filters{display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px;margin:0 0 12px;font-size:13px}"
    ".filters input[type=search]{width:220px}.filters output{color:var(--muted)}"
    "table.grid.compact{width:auto}"
    "table.grid.compact td{padding:4px 8px;text-align:center;font-weight:600;min-width:28px}"
    "table.grid.compact td a{color:inherit;text-decoration:none;display:block}"
    "table.grid.compact td.age{font-weight:400;color:var(--muted);white-space:nowrap;text-align:left}"
    "table.grid.compact thead th.k{font-size:12px;writing-mode:vertical-rl;transform:rotate(180deg);"
    "padding:6px 2px;white-space:nowrap}"
    "table.grid.compact td .was{display:block;font-weight:400;font-size:11px}"
    "table.grid.compact tbody{content-visibility:auto;contain-intrinsic-size:auto 2600px}"
    "table.grid.compact.show-na td.a::after{content:'\\2013'}"
    "table.articles th .title{display:block;font-weight:400;color:var(--muted);font-size:12px}"
    "table.articles td.count{text-align:right}table.articles td.count.zero{color:#b4bcc5}"
    "ol.topchecks{margin:0;padding-left:18px;font-size:12.5px}"
    "details.na-articles summary{cursor:pointer;color:var(--muted);margin:10px 0 6px}"
    ".finding{content-visibility:auto;contain-intrinsic-size:auto 240px}"
    + "".join(f"table.grid.compact td.{code}{{background:var(--{s}-bg);color:var(--{s})}}"
              for s, code in CODES.items())
)


def article_summary_section(report: FleetReport) -> Html:
    """Per article: results per status and the failing checks most often seen. Articles that apply to no
    host (every result not applicable, or none) are collapsed below the others."""
    head = el("tr", el("th", "Article", scope="col"),
              *(el("th", badge(s, short=True), " ", STATUS_INFO[s].label, scope="col") for s in REPORT_STATUSES),
              el("th", "Failing checks most often seen", scope="col"))
    applying: list[Html] = []
    elsewhere: list[Html] = []
    for summary in report.article_summaries():
        counts = [el("td", str(summary.counts[s]), class_="count" + ("" if summary.counts[s] else " zero"),
                     data_status=s, data_count=str(summary.counts[s])) for s in REPORT_STATUSES]
        checks = el("ol", *(el("li", el("code", check), f" \u00d7 {n}") for check, n in summary.failing_checks),
                    class_="topchecks") if summary.failing_checks else Html("")
        title = el("span", summary.title, class_="title") if summary.title else Html("")
        row = el("tr", el("th", summary.article, " ", title, scope="row"), *counts, el("td", checks),
                 data_article=summary.article)
        applies = any(summary.counts[s] for s in REPORT_STATUSES if s not in ("not_applicable",))
        (applying if applies else elsewhere).append(row)
    parts: list[object] = [el("h2", "Articles")]
    if applying:
        parts.append(el("div", el("table", el("thead", head), el("tbody", *applying), class_="checks articles"),
                        class_="gridwrap"))
    if elsewhere:
        parts.append(el("details", el("summary", f"{len(elsewhere)} article(s) apply to no host in this report"),
                        el("table", el("thead", head), el("tbody", *elsewhere), class_="checks articles"),
                        class_="na-articles"))
    if not applying and not elsewhere:
        parts.append(el("p", "No article reported.", class_="none"))
    return el("section", *parts, id="articles")


def filter_bar(articles: Sequence[tuple[str, str]], hosts: int) -> Html:
    statuses = [el("option", "any", value="")] + [el("option", STATUS_INFO[s].label, value=s)
                                                  for s in REPORT_STATUSES]
    choices = [el("option", "all", value="")] + [el("option", a, value=str(i)) for i, (a, _t) in enumerate(articles)]
    return el("form", el("label", "Host ", void("input", type="search", id="f-host", placeholder="name contains")),
              el("label", "Status ", el("select", *statuses, id="f-status")),
              el("label", "Article ", el("select", *choices, id="f-article")),
              el("label", void("input", type="checkbox", id="f-na"), " show not applicable"),
              el("output", f"{hosts} hosts", id="f-count"),
              el("style", id="f-columns"),
              class_="filters", role="search", aria_label="Filter hosts")


def grid_section(report: FleetReport, hosts: Sequence[HostRecord], articles: Sequence[tuple[str, str]],
                 anchor: Callable[[str, str | None], str], now: datetime.datetime, legend: Html) -> Html:
    if not hosts:
        return el("section", el("h2", "Compliance by host and article"),
                  el("p", "No hosts reported.", class_="none"))
    header = [el("th", "Host", scope="col"), el("th", "Host status", scope="col"), el("th", "Data from", scope="col")]
    header += [el("th", article, scope="col", class_="k", title=title or None, data_article=article)
               for article, title in articles]
    chunks: list[Html] = []
    rows: list[str] = []
    for host in hosts:
        rows.append(_row(report, host, anchor, now))
        if len(rows) == ROWS_PER_CHUNK:
            chunks.append(Html("<tbody>" + "".join(rows) + "</tbody>"))
            rows = []
    if rows:
        chunks.append(Html("<tbody>" + "".join(rows) + "</tbody>"))
    codes = "{" + ",".join(f'"{s}":"{c}"' for s, c in CODES.items()) + "}"
    table = el("table", el("thead", el("tr", *header)), join(chunks), class_="grid compact", id="grid",
               data_codes=codes)
    return el("section", el("h2", "Compliance by host and article"), legend, filter_bar(articles, len(hosts)),
              el("div", table, class_="gridwrap"))


def _row(report: FleetReport, host: HostRecord, anchor: Callable[[str, str | None], str],
         now: datetime.datetime) -> str:
    cells = report.cells(host)
    observed = host.observed
    age = el("td", age_text(observed, now) if observed else "this run", class_="age",
             title=iso_time(observed) if observed else None)
    parts = [f'<tr data-host="{esc(host.name)}" data-status="{report.host_status(host)}" '
             f'data-cells="{"".join(CODES[c.status] for c in cells)}">',
             el("th", host.name, scope="row", class_="host"),
             el("td", badge(report.host_status(host)), class_="hoststatus"), age]
    parts += [_cell(cell, anchor) for cell in cells]
    return "".join(parts) + "</tr>"


def _cell(cell: Cell, anchor: Callable[[str, str | None], str]) -> str:
    code = CODES[cell.status]
    if cell.status == "not_applicable":
        return f"<td class={code}>"  # collapsed: the filter bar's checkbox shows the dash
    content: str = esc(STATUS_INFO[cell.status].symbol)
    record = cell.record
    if record and record.before and record.after and record.before.status != record.status:
        content += f'<span class="was">was {esc(STATUS_INFO[record.before.status].label.lower())}</span>'
    if cell.status not in OK_STATUSES and cell.status != "not_run":
        # A cell without a record shows a host-level problem: its details are the host's finding.
        content = f'<a href="#{anchor(cell.host, cell.article if record else None)}">{content}</a>'
    # No end tag: HTML ends a cell at the next one or at the row's end, and 250,000 cells save 1.2 MB.
    return f"<td class={code}>{content}"
