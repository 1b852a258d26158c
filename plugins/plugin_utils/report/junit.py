# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JUnit XML report: one test case per host x article, for CI servers.

ElementTree escapes markup; characters XML 1.0 forbids even escaped are replaced (``_xml_text``).
"""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from typing import Literal

from .model import Cell, CellStatus, FleetReport, cell_message, check_line, iso_time, utc_now

# XML 1.0 cannot carry most control characters, not even escaped; a registry value read from a host can.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _cell_details(cell: Cell) -> str:
    lines = [cell_message(cell)]
    verdict = cell.record.after if cell.record else None
    if verdict is not None:
        lines += [f"check {'passed' if c.passed else 'FAILED' if c.passed is False else 'undecided'}: "
                  f"{check_line(c)}" for c in verdict.checks]
        lines += [f"plan: {step.description}" for step in verdict.plan]
        if verdict.restart_required:
            lines.append("applying the plan requires a restart")
    return "\n".join(lines)


def _junit_case(parent: ET.Element, cell: Cell, name: str, classname: str) -> None:
    case = ET.SubElement(parent, "testcase", name=_xml_text(name), classname=_xml_text(classname), time="0")
    if cell.status in ("noncompliant", "reboot_pending"):
        tag = "failure"
    elif cell.status in ("unknown", "failed", "unreachable", "not_audited"):
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
    stamp = iso_time(utc_now(now)).removesuffix("Z")
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
