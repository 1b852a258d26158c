# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kbfix_compliance fact: what kb_article leaves, what the audit records for hosts Ansible did not cache,
and the report read back from it (ages, never audited, a later failed attempt never shown as compliant)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from report_fleet import kb828753, kb977381

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.compliance_fact import (
    fact_after_verdicts,
    fact_to_record,
    report_from_facts,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.json_report import report_to_dict
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import verdict_from_dict
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.compliance_cache import Upload

T0 = datetime.datetime(2026, 12, 1, 8, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(days=2)
NOW = T1 + datetime.timedelta(hours=3)


def verdict(data: dict[str, Any]) -> Any:
    found = verdict_from_dict(data)
    assert found is not None
    return found


def test_a_task_replaces_its_articles_and_keeps_the_others() -> None:
    first = fact_after_verdicts(None, [verdict(kb828753("noncompliant")), verdict(kb977381("compliant"))],
                                "audited", T0, version="1.0.0")
    assert first["collection_version"] == "1.0.0" and first["updated"] == "2026-12-01T08:00:00Z"
    assert all(c["passed"] is not True for c in first["articles"]["KB828753"]["checks"])  # passing ones dropped
    second = fact_after_verdicts(first, [verdict(kb828753("compliant"))], "enforced", T1, version="1.0.0")
    assert second["articles"]["KB828753"]["status"] == "compliant"
    assert second["articles"]["KB828753"]["state"] == "enforced"
    assert second["articles"]["KB977381"] == first["articles"]["KB977381"]


def test_records_for_hosts_ansible_did_not_cache() -> None:
    fact = fact_after_verdicts(None, [verdict(kb828753("noncompliant"))], "audited", T0, version="1.0.0")
    assert fact_to_record(None, {"changed": False, "ansible_facts": {"kbfix_compliance": fact}}) is None
    # failed by fail_on: Ansible drops the facts of failed results, the record carries them
    assert fact_to_record(None, {"failed": True, "ansible_facts": {"kbfix_compliance": fact}}) == fact
    missed = fact_to_record(fact, None, T1)
    assert missed is not None and missed["articles"] == fact["articles"]
    assert missed["attempt"]["outcome"] == "unreachable" and missed["attempt"]["when"] == "2026-12-03T08:00:00Z"
    failed = fact_to_record(fact, {"failed": True, "msg": "bad spec"}, T1)
    assert failed is not None and failed["attempt"] == {"when": "2026-12-03T08:00:00Z", "outcome": "failed",
                                                        "message": "bad spec"}


def test_report_from_facts_ages_never_audited_and_a_later_unreachable_attempt() -> None:
    audited = fact_after_verdicts(None, [verdict(kb828753("compliant"))], "audited", T0, version="1.0.0")
    off_later = fact_to_record(audited, None, T1)
    answered_after = dict(off_later or {}, articles=fact_after_verdicts(
        None, [verdict(kb828753("compliant"))], "audited", T1 + datetime.timedelta(hours=1))["articles"])
    data = report_to_dict(report_from_facts([("ok", audited), ("off", off_later), ("back", answered_after),
                                             ("new", None)], NOW), NOW)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["ok"]["status"] == "compliant" and hosts["ok"]["age_seconds"] == int((NOW - T0).total_seconds())
    assert hosts["new"]["status"] == "not_audited" and hosts["new"]["never_audited"] is True
    off = hosts["off"]["articles"]["KB828753"]
    assert hosts["off"]["status"] == "unreachable"  # never compliant now
    assert off["status"] == "unreachable" and off["after"]["status"] == "compliant"
    assert off["observed"] == "2026-12-01T08:00:00Z"
    assert "attempt 3 h ago" in off["problem"]["message"] and "last verdict judged 2 d ago" in off["problem"]["message"]
    # a verdict judged after the failed attempt stands
    assert hosts["back"]["status"] == "compliant"
    assert data["summary"]["hosts_by_status"]["not_audited"] == 1


@pytest.mark.parametrize(("url", "field"), [
    ("ftp://reports.example.com/", "upload_url"),
    ("https://user:S3cret@reports.example.com/", "upload_url"),
    ("https://reports.example.com/?token=1", "upload_url"),
])
def test_upload_url_refused_before_anything_is_sent(url: str, field: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        Upload.from_args({"upload_url": url})
    assert caught.value.field == field
    assert "S3cret" not in str(caught.value)
