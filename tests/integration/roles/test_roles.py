# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The article roles through real ansible-playbook runs against simulated Windows hosts (winsim).

Molecule (tests/integration/test_molecule.py) covers enforce -> restart -> idempotence -> verify for each
role; these tests cover the policy corners: restart never / if_required, audits that must not touch the
host, check mode, a UNC package source, and bad variables that must fail before any request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import PlaybookRun, run_playbook
from role_helpers import SERVERS, boot_id, group_vars, statuses, task_results, writes

pytestmark = pytest.mark.slow

SHARE = "\\\\fileserver\\hotfixes"
SESSION_MANAGER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"


def role_play(role: str, variables: dict[str, Any]) -> str:
    return f"""
    - name: Apply {role}
      hosts: all
      gather_facts: false
      roles:
        - role: kbfix.windows.{role}
          vars: {json.dumps(variables)}
    """


def only(run: PlaybookRun, task: str, host: str) -> dict[str, Any]:
    found = task_results(run, task, host)
    assert len(found) == 1, f"{task!r} on {host}: {len(found)} results\n{run.output[-5000:]}"
    return found[0].result


def skipped(run: PlaybookRun, task: str, host: str) -> bool:
    return all(r.status == "skipped" for r in task_results(run, task, host))


def test_restart_never_leaves_reboot_pending_and_if_required_completes_it(
        start_fleet: Any, package_dir: Path, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("dfs", "2008-sp2-x64", {"shares": {SHARE: str(package_dir)}})])
    ep = fleet.hosts["dfs"]
    booted = boot_id(ep)
    enforce = {"kb977381_state": "enforced", "kb977381_package_source": SHARE}

    never = run_playbook(role_play("kb977381", {**enforce, "kb977381_restart": "never"}), inventory, tmp_path / "1")
    assert never.rc == 0, never.output[-5000:]
    applied = only(never, "Check or enforce the articles", "dfs")
    assert applied["changed"] and statuses(task_results(never, "Check or enforce the articles", "dfs")[0]) == {
        "KB977381": "reboot_pending"}
    assert any(c["action"] == "install_package" and c["source"] for c in applied["changes"])
    assert skipped(never, "Restart the host to put the fix in effect", "dfs")
    assert boot_id(ep) == booted, "restart policy 'never' restarted the host"

    # The same role with if_required: nothing left to install, but the pending restart is the fix's own.
    required = run_playbook(role_play("kb977381", {**enforce, "kb977381_restart": "if_required"}), inventory,
                            tmp_path / "2")
    assert required.rc == 0, required.output[-5000:]
    assert only(required, "Restart the host to put the fix in effect", "dfs")["rebooted"] is True
    after = task_results(required, "Enforce the articles again after the restart", "dfs")
    assert len(after) == 1 and statuses(after[0]) == {"KB977381": "compliant"}
    assert boot_id(ep) == booted + 1

    again = run_playbook(role_play("kb977381", {**enforce, "kb977381_restart": "if_required"}), inventory,
                         tmp_path / "3")
    assert again.rc == 0 and not any(r.status == "changed" for r in again.results), again.output[-5000:]
    assert boot_id(ep) == booted + 1, "a compliant host was restarted"


def test_a_restart_pending_before_the_install_takes_two_restarts(start_fleet: Any, package_dir: Path,
                                                                 tmp_path: Path) -> None:
    # Another update left a file rename for the next boot: kb_article does not run an installer on such a
    # host, the role restarts it, installs in the second pass and restarts again for the fix.
    waiting = {"registry": {SESSION_MANAGER: {"PendingFileRenameOperations": [
        "multistring", ["\\??\\C:\\Windows\\Temp\\other-update.tmp", ""]]}}}
    fleet, inventory = start_fleet([("dfs", "2008-sp2-x86", waiting)])
    ep = fleet.hosts["dfs"]
    booted = boot_id(ep)
    group_vars(inventory, {"kbfix_package_source": str(package_dir)})
    run = run_playbook(role_play("kb977381", {"kb977381_state": "enforced"}), inventory, tmp_path)
    assert run.rc == 0, run.output[-5000:]
    first = only(run, "Check or enforce the articles", "dfs")
    assert [c for c in first["changes"] if c["action"] == "install_package" and c.get("skipped")], first["changes"]
    second = only(run, "Enforce the articles again after the restart", "dfs")
    assert [c for c in second["changes"] if c["action"] == "install_package" and not c.get("skipped")]
    final = task_results(run, "Audit the articles after the second restart", "dfs")
    assert len(final) == 1 and statuses(final[0]) == {"KB977381": "compliant"}
    assert boot_id(ep) == booted + 2


def test_audited_state_never_touches_the_host_even_with_restart_always(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp", "xp-sp1-x86")])
    ep = fleet.hosts["xp"]
    booted = boot_id(ep)
    ep.reset_counters()
    run = run_playbook(role_play("kb828753", {"kb828753_reconnectable_servers": SERVERS,
                                              "kb828753_restart": "always"}), inventory, tmp_path)
    assert run.rc == 0, run.output[-5000:]
    result = only(run, "Check or enforce the articles", "xp")
    assert statuses(task_results(run, "Check or enforce the articles", "xp")[0]) == {"KB828753": "noncompliant"}
    assert result["changed"] is False and result["changes"] == []
    assert writes(ep) == {}
    assert boot_id(ep) == booted


def test_check_mode_predicts_changes_and_changes_nothing(start_fleet: Any, package_dir: Path, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp", "xp-sp1-x86")])
    ep = fleet.hosts["xp"]
    booted = boot_id(ep)
    group_vars(inventory, {"kbfix_package_source": str(package_dir)})
    ep.reset_counters()
    run = run_playbook(role_play("kb828753", {"kb828753_reconnectable_servers": SERVERS,
                                              "kb828753_state": "enforced"}), inventory, tmp_path, check=True)
    assert run.rc == 0, run.output[-5000:]
    result = only(run, "Check or enforce the articles", "xp")
    assert result["changed"] is True
    assert {c["action"] for c in result["changes"]} >= {"install_package", "set_registry"}
    assert all(c.get("planned") for c in result["changes"])
    assert writes(ep) == {}
    assert boot_id(ep) == booted
    assert skipped(run, "Enforce the articles again after the restart", "xp")


def test_fail_on_judges_the_final_state(start_fleet: Any, package_dir: Path, tmp_path: Path) -> None:
    _, inventory = start_fleet([("fresh", "2008-sp1-x64"), ("pending", "2008-sp1-x64", {"pending": ["KB977381"]})])
    group_vars(inventory, {"kbfix_package_source": str(package_dir)})

    # An audit fails on the statuses listed, reboot_pending included: nothing will restart the host.
    audit = run_playbook(role_play("kb977381", {}), inventory, tmp_path / "1",
                         extra_vars={"kbfix_fail_on": ["noncompliant", "reboot_pending"]})
    assert audit.rc == 2
    failed = {r.host: r.result for r in task_results(audit, "Check or enforce the articles") if r.status == "failed"}
    assert set(failed) == {"fresh", "pending"}, audit.output[-5000:]
    assert "KB977381 is noncompliant (fail_on)" in failed["fresh"]["msg"]
    assert "KB977381 is reboot_pending (fail_on)" in failed["pending"]["msg"]

    # Enforced with a restart policy, reboot_pending is only a step: the restart completes the fix and
    # the audit after it is what fail_on judges.
    enforce = run_playbook(role_play("kb977381", {"kb977381_state": "enforced"}), inventory, tmp_path / "2",
                           extra_vars={"kbfix_fail_on": ["noncompliant", "reboot_pending"]})
    assert enforce.rc == 0, enforce.output[-5000:]
    for host in ("fresh", "pending"):
        after = task_results(enforce, "Enforce the articles again after the restart", host)
        assert len(after) == 1 and statuses(after[0]) == {"KB977381": "compliant"}


@pytest.mark.parametrize(("role", "variables", "field"), [
    ("kb938475", {}, "kb938475_asynchronous_credits"),
    ("kb938475", {"kb938475_asynchronous_credits": 70000}, "asynchronous_credits"),
    ("kb938475", {"kb938475_asynchronous_credits": 0}, "asynchronous_credits"),
    ("kb828753", {}, "kb828753_reconnectable_servers"),
    ("kb828753", {"kb828753_reconnectable_servers": SERVERS, "kb828753_restart": "sometimes"},
     "kb828753_restart"),
])
def test_bad_variables_fail_before_any_request(start_fleet: Any, tmp_path: Path, role: str,
                                               variables: dict[str, Any], field: str) -> None:
    fleet, inventory = start_fleet([("host", "vista-rtm-x86" if role == "kb938475" else "xp-sp1-x86")])
    ep = fleet.hosts["host"]
    ep.reset_counters()
    run = run_playbook(role_play(role, {**variables, f"{role}_state": "enforced"}), inventory, tmp_path)
    assert run.rc == 2, run.output[-5000:]
    failed = [r for r in run.results if r.status == "failed"]
    assert len(failed) == 1 and field in failed[0].result["msg"], run.output[-5000:]
    assert ep.counters()["requests"] == 0, "a bad variable reached the host"
