# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/remediate.yml against a host that restarts in the middle of the run (issue 15 item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook
from role_helpers import PLAYBOOKS, SITE_VARS, boot_id, group_vars, task_results, writes

pytestmark = pytest.mark.slow

REMEDIATE = PLAYBOOKS / "remediate.yml"
AUDIT = PLAYBOOKS / "audit.yml"
ENFORCE = "Check or enforce the articles"


# Request numbers of the host's life in this play (facts, then the first kb_article pass). They move when the
# audit gets cheaper (issue 13 removed reads): with today's counts 9 and 10 fall in the kb_article pass's reads,
# 12 and 14 among its writes (a write whose answer is lost is read back after the host is up again).
@pytest.mark.parametrize("after", [9, 12, 14])
def test_a_host_restarting_mid_task_is_waited_for_and_the_task_resumed(
        start_fleet: Any, package_dir: Path, tmp_path: Path, after: int) -> None:
    # Down longer than the client's own retries last (4 retries, at most 7.5 s of backoff), so only the
    # task-level wait can carry the task through.
    fleet, inventory = start_fleet([("vista", "vista-rtm-x64", {"reboot_seconds": 15})])
    group_vars(inventory, {**SITE_VARS, "kbfix_package_source": str(package_dir), "kbfix_reboot_timeout": 60})
    ep = fleet.hosts["vista"]
    booted = boot_id(ep)
    ep.set_faults(reboot_after_requests=after)

    run = run_playbook(REMEDIATE, inventory, tmp_path / "run")

    assert run.rc == 0, run.output[-5000:]
    first = task_results(run, ENFORCE, "vista")[0]
    assert first.status == "changed", first.result
    assert any("went down during the task" in note for note in first.result.get("notes", [])) or \
        "went down during the task" in first.result["msg"], first.result
    assert boot_id(ep) > booted  # the injected restart happened (and the planned one after the fix)
    audit = run_playbook(AUDIT, inventory, tmp_path / "audit")
    assert audit.rc == 0, audit.output[-5000:]
    for result in task_results(audit, "Audit every article in one pass"):
        assert set(v["status"] for v in result.result["verdicts"]) <= {"compliant", "not_applicable"}, result.result


def test_a_host_that_does_not_come_back_is_reported_unreachable_with_the_reason(
        start_fleet: Any, package_dir: Path, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("vista", "vista-rtm-x64", {"reboot_seconds": 600})])
    group_vars(inventory, {**SITE_VARS, "kbfix_package_source": str(package_dir), "kbfix_reboot_timeout": 8})
    ep = fleet.hosts["vista"]
    ep.set_faults(reboot_after_requests=10)

    run = run_playbook(REMEDIATE, inventory, tmp_path / "run")

    enforced = task_results(run, ENFORCE, "vista")[0]
    assert enforced.status == "unreachable", enforced.result
    msg = enforced.result["msg"]
    assert "went down during the task" in msg and "did not answer again within 8 seconds" in msg, msg
    assert writes(ep) == {}, "nothing may be written to a host that was lost before its first write"
