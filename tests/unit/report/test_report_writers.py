# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three writers: JSON schema fields, JUnit parsed back, HTML escaped and complete."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fleet import EVIL_FOUND, EVIL_HOST, MRXSMB, NOW, RECONNECT, grid_cells, kb828753, kb938475

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.html_page import render_html
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.json_report import render_json
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.junit import render_junit
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import REPORT_STATUSES, FleetReport
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.writers import write_reports

# ------------------------------------------------------------------------------------------------ JSON


def test_json_top_level_fields(fleet: FleetReport) -> None:
    data = json.loads(render_json(fleet, NOW))
    assert data["schema"] == 1
    assert data["generator"] == "kbfix.windows.compliance_report"
    assert data["generated"] == "2026-11-22T08:30:00Z"
    assert data["statuses"] == list(REPORT_STATUSES)
    assert data["run"] == {"playbooks": ["audit.yml"], "check_mode": False}
    assert data["summary"] == fleet.summary().to_dict()
    assert data["summary"]["fleet_compliant"] is False
    assert [a["article"] for a in data["articles"]] == ["KB828753", "KB938475", "KB977381"]
    assert [h["name"] for h in data["hosts"]] == [h.name for h in fleet.hosts()]


def test_json_cells_carry_checks_plan_before_after(fleet: FleetReport) -> None:
    hosts = {h["name"]: h for h in json.loads(render_json(fleet, NOW))["hosts"]}
    cell = hosts["xp-sp1-01"]["articles"]["KB828753"]
    assert cell["status"] == "noncompliant" and cell["problem"] is None and cell["before"] is None
    # the module's verdict dict, unchanged (as JSON has it: typed plan details carry tuples, JSON lists)
    assert cell["after"] == json.loads(json.dumps(kb828753("noncompliant")))
    failing = [c for c in cell["after"]["checks"] if c["passed"] is False]
    assert [(c["id"], c["expected"], c["found"]) for c in failing] == [
        (MRXSMB, ">= 5.1.2600.1276", "5.1.2600.1106"), (RECONNECT, "dword 120", "absent")]
    assert [s["action"] for s in cell["after"]["plan"]] == ["install_package", "set_registry"]
    changed = hosts["xp-sp1-02"]["articles"]["KB828753"]
    assert (changed["before"]["status"], changed["after"]["status"]) == ("noncompliant", "compliant")
    # pairs that were never checked are absent, not "not_run"
    assert set(hosts["xp-sp1-01"]["articles"]) == {"KB828753"}


def test_json_problems_and_untrusted_text(fleet: FleetReport) -> None:
    hosts = {h["name"]: h for h in json.loads(render_json(fleet, NOW))["hosts"]}
    nt4 = hosts["nt4-tse-01"]
    assert nt4["status"] == "unreachable"
    assert nt4["unreachable"] == {"kind": "unreachable", "task": "Audit",
                                  "message": "connection refused: no WinRM listener on port 5985"}
    assert {a: c["status"] for a, c in nt4["articles"].items()} == dict.fromkeys(
        ["KB828753", "KB938475", "KB977381"], "unreachable")
    evil = hosts[EVIL_HOST]["articles"]["KB938475"]
    assert evil["status"] == "failed"
    assert evil["problem"]["message"] == "spec <b>kb938475.yml</b> could not be loaded"
    assert hosts["vista-01"]["articles"]["KB938475"]["after"]["checks"][0]["found"] == EVIL_FOUND


# ----------------------------------------------------------------------------------------------- JUnit


def _cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(s.get("name", ""), c.get("name", "")): c for s in root.iter("testsuite") for c in s.iter("testcase")}


def test_junit_counts_per_suite_and_total(fleet: FleetReport) -> None:
    root = ET.fromstring(render_junit(fleet, NOW))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["KB828753", "KB938475", "KB977381"]
    expected = {  # tests, failures, errors, skipped
        "KB828753": (4, 1, 1, 1),  # xp-sp1-01 failure, nt4 error, xp-sp3-01 skipped, xp-sp1-02 passed
        "KB938475": (4, 1, 3, 0),  # vista-01 failure; evil host failed, nt4 unreachable, vista-02 unknown
        "KB977381": (3, 1, 1, 0),  # dfs-2008-01 reboot pending = failure, nt4 error, dfs-2008r2-01 passed
    }
    for name, (tests, failures, errors, skipped) in expected.items():
        suite = suites[name]
        counted = (len(suite.findall("testcase")), len(suite.findall("testcase/failure")),
                   len(suite.findall("testcase/error")), len(suite.findall("testcase/skipped")))
        assert counted == (tests, failures, errors, skipped), name
        assert [int(suite.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")] == list(counted)
        assert suite.find("properties/property[@name='title']") is not None
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["11", "3", "5", "1"]


def test_junit_messages_name_expected_and_found(fleet: FleetReport) -> None:
    cases = _cases(ET.fromstring(render_junit(fleet, NOW)))
    failure = cases[("KB828753", "xp-sp1-01")].find("failure")
    assert failure is not None and failure.get("type") == "noncompliant"
    message = failure.get("message", "")
    assert f"{MRXSMB}: expected >= 5.1.2600.1276, found 5.1.2600.1106" in message
    assert f"{RECONNECT}: expected dword 120, found absent" in message
    assert "plan: install WindowsXP-KB828753-x86-ENU.exe" in (failure.text or "")
    error = cases[("KB938475", EVIL_HOST)].find("error")
    assert error is not None and error.get("type") == "failed"
    assert error.get("message") == "task failed (task 'Audit KB938475'): spec <b>kb938475.yml</b> could not be loaded"
    unknown = cases[("KB938475", "vista-02")].find("error")
    assert unknown is not None and unknown.get("type") == "unknown"
    assert "could not read: HKLM\\SYSTEM" in unknown.get("message", "")
    skipped = cases[("KB828753", "xp-sp3-01")].find("skipped")
    assert skipped is not None and skipped.get("message") == "fixed by Windows XP SP2 (host has SP3)"
    assert len(cases[("KB977381", "dfs-2008r2-01")]) == 0  # passed: no child element
    assert cases[("KB828753", "xp-sp1-01")].get("classname") == "kbfix.KB828753"


def test_junit_grouped_by_host(fleet: FleetReport) -> None:
    root = ET.fromstring(render_junit(fleet, NOW, group_by="host"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {h.name for h in fleet.hosts()}
    assert [c.get("name") for c in suites["nt4-tse-01"].iter("testcase")] == [
        "KB828753: Programs that run from a file server quit after the server restarts",
        "KB938475: More than 64 concurrent long-term SMB requests fail on Windows Vista",
        "KB977381: The DFS Replication service stops responding"]
    assert root.get("tests") == "11"


def test_junit_survives_control_characters() -> None:
    report = FleetReport()
    report.add_result("host\x01", [kb938475("noncompliant", found="dword\x00\x1b[31m 7")])
    root = ET.fromstring(render_junit(report, NOW))  # would raise on an unescapable character
    case = next(root.iter("testcase"))
    assert case.get("name") == "host\ufffd"
    failure = case.find("failure")
    assert failure is not None and "found dword\ufffd\ufffd[31m 7" in failure.get("message", "")


def test_junit_unreachable_fleet_is_not_an_empty_pass() -> None:
    report = FleetReport()
    report.add_unreachable("a", "connection refused")
    report.add_failure("b", "spec missing")
    root = ET.fromstring(render_junit(report, NOW))
    cases = _cases(root)
    assert set(cases) == {("kbfix.windows.hosts", "a"), ("kbfix.windows.hosts", "b")}
    assert [root.get(k) for k in ("tests", "errors")] == ["2", "2"]
    error = cases[("kbfix.windows.hosts", "a")].find("error")
    assert error is not None and error.get("type") == "unreachable"


# ------------------------------------------------------------------------------------------------ HTML


class _Page(HTMLParser):
    """Collects what the tests look at: elements by tag, attributes, and all text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_attr(self, name: str) -> list[dict[str, str]]:
        return [a for _t, a in self.elements if name in a]


def test_html_grid_has_one_cell_per_host_and_article(fleet: FleetReport) -> None:
    page = _Page(render_html(fleet, NOW))
    cells = grid_cells(page.elements)
    expected = {(h.name, c.article): c.status for h in fleet.hosts() for c in fleet.cells(h)}
    assert cells == expected
    assert len(cells) == 9 * 3
    assert cells[(EVIL_HOST, "KB938475")] == "failed"  # the untrusted name survives as data, intact
    assert cells[("xp-sp1-01", "KB938475")] == "not_run"


def test_html_summary_counts_and_legend(fleet: FleetReport) -> None:
    page = _Page(render_html(fleet, NOW))
    summary = fleet.summary()
    hosts = {a["data-status"]: int(a["data-hosts"]) for a in page.with_attr("data-hosts")}
    results = {a["data-status"]: int(a["data-results"]) for a in page.with_attr("data-results")}
    assert hosts == summary.hosts_by_status
    assert results == summary.results_by_status
    text = " ".join(page.text)
    for label in ("Compliant", "Noncompliant", "Reboot pending", "Not applicable", "Unknown", "Failed",
                  "Unreachable", "Not checked"):
        assert label in text
    assert "Fleet not compliant: 6 of 9 hosts need attention" in text


def test_html_escapes_untrusted_text(fleet: FleetReport) -> None:
    page = render_html(fleet, NOW)
    # the page's one script is its own filter code: nothing from a host name or a check value
    assert page.count("<script") == 1 and "<script>(function(){" in page
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;" in page
    assert "&lt;/code&gt;&lt;script&gt;alert(&#x27;found&#x27;)&lt;/script&gt;" in page
    parsed = _Page(page)
    assert EVIL_HOST in parsed.text  # shown as text, exactly as the inventory spells it
    assert not [t for t, _a in parsed.elements if t in ("img", "iframe", "link", "object")]
    assert [t for t, _a in parsed.elements].count("script") == 1


def test_html_is_self_contained(fleet: FleetReport) -> None:
    page = render_html(fleet, NOW)
    parsed = _Page(page)
    assert not [a for _t, a in parsed.elements if "src" in a]
    assert not [a["href"] for _t, a in parsed.elements if "href" in a and not a["href"].startswith("#")]
    assert "url(" not in page and "@import" not in page
    csp = [a for t, a in parsed.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"].startswith("default-src 'none'")
    # every in-page link points at an element that exists
    ids = {a["id"] for a in parsed.with_attr("id")}
    links = [a["href"][1:] for a in parsed.with_attr("href")]
    assert links and set(links) <= ids


def test_html_findings_show_expected_and_found(fleet: FleetReport) -> None:
    parsed = _Page(render_html(fleet, NOW))
    text = parsed.text
    finding_hosts = [a["data-host"] for t, a in parsed.elements if t == "div" and "finding" in a.get("class", "")]
    assert finding_hosts == [EVIL_HOST, "dfs-2008-01", "nt4-tse-01", "vista-01", "vista-02", "xp-sp1-01"]
    for value in (MRXSMB, ">= 5.1.2600.1276", "5.1.2600.1106", RECONNECT, "dword 120", "absent", EVIL_FOUND,
                  "connection refused: no WinRM listener on port 5985", "PendingFileRenameOperations set"):
        assert value in text, value
    assert "set ReconnectTimeout to 120 (dword)" in text  # plan step
    joined = " ".join(text)
    assert "Remediation plan (requires a restart)" in joined


def test_html_shows_changes_and_compliant_fleet() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("noncompliant")])
    report.add_result("xp", [kb828753("compliant")])
    page = _Page(render_html(report, NOW))
    text = " ".join(page.text)
    assert "Fleet compliant: all 1 hosts are compliant or the articles do not apply" in text
    assert "was noncompliant" in text
    assert "Nothing to fix." in text
    changes = [a for t, a in page.elements if t == "table" and "changes" in a.get("class", "")]
    assert len(changes) == 1


# ----------------------------------------------------------------------------------------------- files


def test_write_reports_writes_the_requested_formats(fleet: FleetReport, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    written = write_reports(fleet, target, ["html", "json"], now=NOW)
    assert [p.name for p in written] == ["kbfix-report.html", "kbfix-report.json"]
    assert sorted(p.name for p in target.iterdir()) == ["kbfix-report.html", "kbfix-report.json"]  # no temp files
    assert json.loads((target / "kbfix-report.json").read_text())["generated"] == "2026-11-22T08:30:00Z"
    written = write_reports(fleet, target, now=NOW)
    assert [p.name for p in written] == ["kbfix-report.json", "kbfix-report.xml", "kbfix-report.html"]
    assert (target / "kbfix-report.html").read_text(encoding="utf-8") == render_html(fleet, NOW)


def test_write_reports_rejects_unknown_format(fleet: FleetReport, tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=r"unknown format.*pdf"):
        write_reports(fleet, tmp_path, ["json", "pdf"])
    assert list(tmp_path.iterdir()) == []
