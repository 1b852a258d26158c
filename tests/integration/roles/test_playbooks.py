# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection playbooks kbfix.windows.audit and kbfix.windows.remediate against simulated hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook
from role_helpers import (
    LANMAN_WORKSTATION,
    PLAYBOOKS,
    SERVERS,
    SITE_VARS,
    boot_id,
    group_vars,
    statuses,
    task_results,
    writes,
)

pytestmark = pytest.mark.slow

AUDIT = PLAYBOOKS / "audit.yml"
REMEDIATE = PLAYBOOKS / "remediate.yml"
ALL_ARTICLES = ["KB253729", "KB828753", "KB938475", "KB977381"]
REPORT_ENV = {"ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report"}


def test_audit_judges_every_article_in_one_task_and_reports_unreachable_hosts(
        start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp", "xp-sp1-x86"), ("vista", "vista-sp1-x64"), ("tse", "nt4-tse-sp6-x86"),
                                    ("down", "nt4-tse-sp6-x86")])
    fleet.hosts["down"].set_faults(port_closed=True)  # its SMB listeners closed: off, refused
    group_vars(inventory, SITE_VARS)
    report = tmp_path / "report"
    run = run_playbook(AUDIT, inventory, tmp_path / "run", env={**REPORT_ENV, "KBFIX_REPORT_DIR": str(report)})

    assert run.rc == 4, run.output[-5000:]  # 4: a host was unreachable, and nothing failed
    audits = task_results(run, "Audit every article in one pass")
    assert sorted(r.host for r in audits) == ["tse", "vista", "xp"]  # NT 4.0 over SMB, like the others
    for result in audits:
        assert [v["article"] for v in result.result["verdicts"]] == ALL_ARTICLES
        assert result.status == "ok" and result.result["changes"] == []
    assert statuses(task_results(run, "Audit every article in one pass", "xp")[0])["KB828753"] == "noncompliant"
    assert set(statuses(task_results(run, "Audit every article in one pass", "vista")[0]).values()) == {
        "not_applicable"}
    assert statuses(task_results(run, "Audit every article in one pass", "tse")[0]) == {
        a: "noncompliant" if a == "KB253729" else "not_applicable" for a in ALL_ARTICLES}
    assert [r.status for r in run.results if r.host == "down"] == ["unreachable"]
    for name in ("xp", "vista"):
        assert writes(fleet.hosts[name]) == {}, f"the audit changed {name}"
    assert fleet.hosts["tse"].host().fs.entry("C:\\WINNT\\system32\\mpr.dll").size == 59664  # unchanged

    data = json.loads((report / "kbfix-report.json").read_text(encoding="utf-8"))
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["down"]["status"] == "unreachable"
    assert hosts["tse"]["articles"]["KB253729"]["status"] == "noncompliant"
    assert hosts["xp"]["articles"]["KB828753"]["status"] == "noncompliant"
    assert data["summary"]["hosts_by_status"]["unreachable"] == 1


def test_audit_of_chosen_articles_and_a_missing_required_variable(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("ws", "2008-sp1-x86"), ("xp", "xp-sp1-x86")])
    chosen = run_playbook(AUDIT, inventory, tmp_path / "1", extra_vars={"kbfix_articles": ["KB977381"]})
    assert chosen.rc == 0, chosen.output[-5000:]
    assert statuses(task_results(chosen, "Audit every article in one pass", "ws")[0]) == {"KB977381": "noncompliant"}

    # KB828753 needs the site's server names to judge ReconnectableServers where it applies: on XP the audit
    # fails naming the variable, before any request of its own; on Server 2008 the article does not apply and
    # needs nothing.
    fleet.hosts["xp"].reset_counters()
    missing = run_playbook(AUDIT, inventory, tmp_path / "2", extra_vars={"kbfix_articles": ["KB828753"]})
    assert missing.rc == 2
    failure = task_results(missing, "Audit every article in one pass", "xp")[0]
    assert failure.status == "failed" and "reconnectable_servers" in failure.result["msg"]
    assert failure.result["requests"] == 0
    assert statuses(task_results(missing, "Audit every article in one pass", "ws")[0]) == {
        "KB828753": "not_applicable"}


def test_remediate_fixes_restarts_and_a_second_run_changes_nothing(
        start_fleet: Any, package_dir: Path, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp", "xp-sp1-x86"), ("r2", "2003r2-sp2-x64"), ("xp2", "xp-sp2-x86")])
    group_vars(inventory, {**SITE_VARS, "kbfix_package_source": str(package_dir)})
    booted = {name: boot_id(ep) for name, ep in fleet.hosts.items()}

    first = run_playbook(REMEDIATE, inventory, tmp_path / "1")
    assert first.rc == 0, first.output[-5000:]
    for name, article in (("xp", "KB828753"), ("r2", "KB977381")):
        enforced = task_results(first, "Check or enforce the articles", name)[0]
        assert enforced.status == "changed"
        assert {v["article"]: v["status"] for v in enforced.result["verdicts_before"]}[article] == "noncompliant"
        assert statuses(task_results(first, "Enforce the articles again after the restart", name)[0])[article] == \
            "compliant"
        assert boot_id(fleet.hosts[name]) == booted[name] + 1
    assert boot_id(fleet.hosts["xp2"]) == booted["xp2"], "a host with nothing to fix was restarted"
    value = fleet.hosts["xp"].host().registry.get(LANMAN_WORKSTATION, "ReconnectableServers")
    assert [s.casefold() for s in value.data] == [s.casefold() for s in SERVERS]

    second = run_playbook(REMEDIATE, inventory, tmp_path / "2")
    assert second.rc == 0 and not [r for r in second.results if r.status == "changed"], second.output[-5000:]
    assert {name: boot_id(ep) for name, ep in fleet.hosts.items()} == {
        "xp": booted["xp"] + 1, "r2": booted["r2"] + 1, "xp2": booted["xp2"]}

    audit = run_playbook(AUDIT, inventory, tmp_path / "3")
    assert audit.rc == 0
    for result in task_results(audit, "Audit every article in one pass"):
        assert set(statuses(result).values()) <= {"compliant", "not_applicable"}, result.result["msg"]
