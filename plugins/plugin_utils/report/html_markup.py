# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escape-first HTML building blocks and the report's stylesheet.

Every value passed to ``el`` is escaped unless it is ``Html`` (markup built here already), so forgetting to
escape an untrusted value is not possible by omission.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from .model import STATUS_INFO


class Html(str):
    """Markup that has been escaped already. Everything else passed to ``_el`` is escaped, so forgetting
    to escape an untrusted value is not possible by omission."""


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[object]) -> Html:
    return Html("".join(esc(p) for p in parts))


def el(tag: str, *children: object, **attrs: object) -> Html:
    """``<tag attrs>children</tag>``. Attribute names: trailing ``_`` dropped (``class_``), ``_`` -> ``-``."""
    text = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for name, value in attrs.items() if value is not None and value is not False
    )
    return Html(f"<{tag}{text}>{join(children)}</{tag}>")


def void(tag: str, **attrs: object) -> Html:
    """An element without content or end tag (``input``), attributes as in ``el``."""
    return Html(el(tag, **attrs)[: -len(f"</{tag}>")])


def badge(status: str, short: bool = False) -> Html:
    info = STATUS_INFO[status]
    return el("span", el("span", info.symbol, class_="sym", aria_hidden="true"), " ",
              "" if short else info.label, class_=f"badge st-{status}")


CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--bg:#f3f5f8;
--compliant:#1a7f37;--compliant-bg:#dafbe1;--compliant-accent:#1a7f37;
--noncompliant:#b3141f;--noncompliant-bg:#ffe2de;--noncompliant-accent:#cf222e;
--reboot_pending:#7d5200;--reboot_pending-bg:#fff1bf;--reboot_pending-accent:#d4a72c;
--not_applicable:#4f5965;--not_applicable-bg:#eceff3;--not_applicable-accent:#afb8c1;
--unknown:#6a32c9;--unknown-bg:#efe5ff;--unknown-accent:#8250df;
--failed:#86160a;--failed-bg:#ffd3c2;--failed-accent:#a4260d;
--unreachable:#ffffff;--unreachable-bg:#3d4451;--unreachable-accent:#3d4451;
--not_audited:#3d4451;--not_audited-bg:#e6e8ec;--not_audited-accent:#6e7781;
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
CSS += "".join(
    f".st-{s}{{background:var(--{s}-bg);color:var(--{s})}}"
    f".card.st-{s},.finding.st-border-{s}{{border-left-color:var(--{s}-accent)}}"
    f".card.st-{s} dt .sym{{color:var(--{s}-accent)}}"
    for s in STATUS_INFO
)
# Cards are white; only their accent carries the colour (the rule above would tint the whole card).
CSS += ".card{background:#fff;color:var(--fg)}"
