# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""FleetReport: what a run's events turn into (cells, host statuses, summary)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from report_fleet import kb828753, kb828753_not_applicable, kb938475, kb938475_unknown, kb977381

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    VERDICT_STATUSES,
    CheckResult,
    PlanStep,
    Verdict,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport, verdict_from_dict


def _cell_status(report: FleetReport, host: str, article: str) -> str:
    record = next(h for h in report.hosts() if h.name == host)
    return report.cell(record, article).status


def _host_status(report: FleetReport, host: str) -> str:
    return report.host_status(next(h for h in report.hosts() if h.name == host))


def test_last_result_wins_and_earliest_state_is_before() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("noncompliant")])  # audit
    report.add_result("xp", [kb828753("compliant")], before=[kb828753("noncompliant")])  # enforce
    # a second enforce starts from the fixed state; the run's "before" must still be the audit
    report.add_result("xp", [kb828753("compliant")], before=[kb828753("compliant")])
    record = report.hosts()[0].articles["KB828753"]
    assert record.after is not None and record.after.status == "compliant"
    assert record.before is not None and record.before.status == "noncompliant"


def test_verdicts_before_is_used_when_first_seen_in_enforce() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("compliant")], before=[kb828753("noncompliant")])
    record = report.hosts()[0].articles["KB828753"]
    assert record.before is not None and record.before.status == "noncompliant"


def test_first_verdicts_become_before_without_verdicts_before() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("noncompliant")])
    assert report.hosts()[0].articles["KB828753"].before is None  # seen once: nothing to compare
    report.add_result("xp", [kb828753("compliant")])
    report.add_result("xp", [kb828753("compliant")])
    record = report.hosts()[0].articles["KB828753"]
    assert record.before is not None and record.before.status == "noncompliant"


def test_article_failure_replaces_status_and_a_later_result_clears_it() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("noncompliant")])
    report.add_failure("xp", "installer exited with 1603", article="kb828753", task="Enforce")
    assert _cell_status(report, "xp", "KB828753") == "failed"
    record = report.hosts()[0].articles["KB828753"]
    assert record.after is not None and record.after.status == "noncompliant"  # kept as context
    report.add_result("xp", [kb828753("compliant")])
    assert _cell_status(report, "xp", "KB828753") == "compliant"


def test_host_level_failure_marks_unchecked_articles_failed() -> None:
    report = FleetReport()
    report.add_result("a", [kb828753("compliant"), kb938475("compliant")])
    report.add_result("b", [kb828753("compliant")])
    report.add_failure("b", "spec could not be loaded")
    assert _cell_status(report, "b", "KB828753") == "compliant"
    assert _cell_status(report, "b", "KB938475") == "failed"
    assert _host_status(report, "b") == "failed"


def test_unreachable_host_without_results_is_unreachable_everywhere() -> None:
    report = FleetReport()
    report.add_result("a", [kb828753("compliant"), kb977381("compliant")])
    report.add_unreachable("nt4", "connection refused", task="Gather facts")
    assert [c.status for c in report.cells(report.hosts()[1])] == ["unreachable", "unreachable"]
    assert _host_status(report, "nt4") == "unreachable"
    summary = report.summary()
    assert summary.results_by_status["unreachable"] == 2
    assert summary.hosts_by_status["unreachable"] == 1
    assert not summary.fleet_compliant


def test_host_unreachable_after_results_keeps_the_verdicts_but_not_the_host() -> None:
    report = FleetReport()
    report.add_result("dfs", [kb977381("reboot_pending")])
    report.add_unreachable("dfs", "did not come back within 600 s", task="Reboot")
    assert _cell_status(report, "dfs", "KB977381") == "reboot_pending"
    assert _host_status(report, "dfs") == "unreachable"


def test_unreachable_for_an_article_sets_that_cell() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("noncompliant")])
    report.add_unreachable("xp", "reset by peer", article="KB828753")
    assert _cell_status(report, "xp", "KB828753") == "unreachable"


def test_articles_not_checked_on_a_host_are_not_results() -> None:
    report = FleetReport()
    report.add_result("xp", [kb828753("compliant")])
    report.add_result("vista", [kb938475("compliant")])
    assert _cell_status(report, "xp", "KB938475") == "not_run"
    summary = report.summary()
    assert sum(summary.results_by_status.values()) == 2
    assert summary.fleet_compliant


def test_host_status_is_the_worst_cell() -> None:
    report = FleetReport()
    report.add_result("a", [kb828753("noncompliant"), kb938475_unknown()])
    report.add_result("b", [kb828753("compliant"), kb977381("reboot_pending")])
    report.add_result("c", [kb828753("compliant"), kb828753_not_applicable() | {"article": "KB938475"}])
    report.add_result("d", [kb828753_not_applicable()])
    assert [report.host_status(h) for h in report.hosts()] == [
        "noncompliant", "reboot_pending", "compliant", "not_applicable"]
    summary = report.summary()
    assert summary.compliant_hosts == 2
    assert summary.restart_required_hosts == 1  # a: KB828753's plan needs a restart


def test_fleet_summary(fleet: FleetReport) -> None:
    summary = fleet.summary()
    assert summary.hosts == 9 and summary.articles == 3
    assert summary.hosts_by_status == {"compliant": 2, "noncompliant": 2, "reboot_pending": 1,
                                       "not_applicable": 1, "unknown": 1, "failed": 1, "unreachable": 1,
                                       "not_audited": 0}
    # nt4-tse-01 is unreachable for each of the three articles
    assert summary.results_by_status == {"compliant": 2, "noncompliant": 2, "reboot_pending": 1,
                                         "not_applicable": 1, "unknown": 1, "failed": 1, "unreachable": 3,
                                         "not_audited": 0}
    assert summary.compliant_hosts == 3
    assert not summary.fleet_compliant


def test_empty_report_is_not_compliant() -> None:
    assert not FleetReport().summary().fleet_compliant


def test_hosts_and_articles_in_natural_order() -> None:
    report = FleetReport()
    for host in ("host10", "Host2", "host1"):
        report.add_result(host, [kb828753("compliant")])
    report.add_result("host1", [{"article": "Q253729", "status": "compliant"},
                                {"article": "kb977381", "status": "compliant"}])
    assert [h.name for h in report.hosts()] == ["host1", "Host2", "host10"]
    assert [a for a, _t in report.articles()] == ["KB828753", "KB977381", "Q253729"]


def test_odd_input_is_coerced_not_fatal() -> None:
    report = FleetReport()
    recorded = report.add_result("xp", [
        {"status": "compliant"},  # no article: ignored
        "not a mapping",  # type: ignore[list-item]
        {"article": " kb828753 ", "status": "weird", "reason": "from a newer module",
         "checks": [{"id": "x", "passed": "yes", "expected": 5, "found": ["a", "b"]}, "junk"],
         "plan": None, "missing": "not-a-list"},
    ])
    assert recorded == ["KB828753"]
    verdict = report.hosts()[0].articles["KB828753"].after
    assert verdict is not None
    assert verdict.status == "unknown"
    assert verdict.reason == "unrecognised status 'weird': from a newer module"
    assert verdict.checks == [CheckResult("x", "", None, "5", '["a", "b"]')]  # type: ignore[arg-type]
    assert verdict.plan == [] and verdict.missing == []


_text = st.text(max_size=30)
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), _text)
_checks = st.builds(CheckResult, id=_text, kind=st.sampled_from(["file", "registry", "hotfix"]),
                    passed=st.one_of(st.none(), st.booleans()), expected=_text, found=_text, message=_text)
# plan-step details are typed: a step is built from its task-result form, as the report reads it back
_steps = st.builds(lambda action, description, details: PlanStep.from_dict(
    {"action": action, "description": description, "details": details}),
    st.sampled_from(["install_package", "set_registry", "reboot"]), _text,
    st.dictionaries(_text, _json_leaf, max_size=3))
_verdicts = st.builds(
    Verdict, article=st.from_regex(r"\A(KB|Q)[0-9]{6}\Z"), title=_text, status=st.sampled_from(VERDICT_STATUSES),
    reason=_text, checks=st.lists(_checks, max_size=3), plan=st.lists(_steps, max_size=2),
    missing=st.lists(_text, max_size=2), restart_required=st.booleans())


@given(_verdicts)
def test_verdict_dicts_round_trip(verdict: Verdict) -> None:
    data: dict[str, Any] = verdict.to_dict()
    parsed = verdict_from_dict(data)
    assert parsed is not None and parsed.to_dict() == data
