# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.kb_article through real ansible-playbook runs against simulated Windows hosts (winsim)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import PlaybookRun, TaskResult, run_playbook

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi
from winsim import packages
from winsim.testing import Endpoint, Fleet

ROLES = Path(__file__).resolve().parents[3] / "roles"
SPECS = {kb: str(ROLES / kb.lower() / "files" / f"{kb.lower()}.yml")
         for kb in ("KB828753", "KB253729", "KB977381", "KB938475")}
SERVERS = ["fs01", "fs01.example.com"]
VARIABLES = {"reconnectable_servers": SERVERS, "asynchronous_credits": 512}
SEED_VARIABLES = {"KB828753": {"reconnectable_servers": SERVERS}, "KB938475": {"asynchronous_credits": 512},
                  "KB977381": {}, "KB253729": {}}
PASSWORD = "W1nsim!Pass"  # winsim's Administrator password (profiles/_base.yml)
FORKS = {"ANSIBLE_FORKS": "8"}

# (host, profile, the seed article it is the test system of, its verdict before anything is done)
SEED_HOSTS = [
    ("xp1", "xp-sp1-x86", "KB828753", "noncompliant"),
    ("xp2", "xp-sp2-x86", "KB828753", "not_applicable"),
    ("r2003", "2003r2-sp2-x64", "KB977381", "noncompliant"),
    ("s2008", "2008-sp2-x64", "KB977381", "noncompliant"),
    ("r2008", "2008r2-rtm-x64", "KB977381", "noncompliant"),
    ("vista", "vista-rtm-x64", "KB938475", "noncompliant"),
]
FIXED = ["xp1", "r2003", "s2008", "r2008", "vista"]

pytestmark = pytest.mark.slow


def verdict(result: TaskResult, article: str, key: str = "verdicts") -> dict[str, Any]:
    return next(v for v in result.result[key] if v["article"] == article)


def writes(ep: Endpoint) -> dict[str, int]:
    """Requests that change a host: StdRegProv writes and processes started in a cmd shell."""
    return {k: v for k, v in ep.counters()["by_action"].items()
            if k.startswith(("Invoke:Set", "Invoke:CreateKey", "Invoke:Delete")) or k == "Command"}


def host_vars(workdir: Path, fleet: Fleet, names: list[str]) -> None:
    """``kbfix_os`` per host next to the playbook, as kbfix.windows.facts would have left it."""
    directory = workdir / "host_vars"
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        ep = fleet.hosts[name]
        client = winrm.WinRMClient(winrm.WinRMSettings(host=ep.address, port=ep.port, username=ep.username,
                                                       password=ep.password))
        facts = wmi.os_facts(client).to_dict()
        client.close()
        (directory / f"{name}.yml").write_text(yaml.safe_dump({"kbfix_os": facts}), encoding="utf-8")


def reboot(fleet: Fleet, names: list[str]) -> None:
    for name in names:
        fleet.hosts[name].run_control("reboot")
    deadline = time.monotonic() + 60
    for name in names:
        while not fleet.hosts[name].run_control("is_up")["up"]:
            assert time.monotonic() < deadline, f"{name} did not come back"
            time.sleep(0.2)


def assert_ok(run: PlaybookRun) -> None:
    assert all(r.status in ("ok", "changed", "unreachable") for r in run.results), run.output[-6000:]


def test_seed_hosts_audit_plan_enforce_restart_audit(start_fleet: Any, tmp_path: Path) -> None:
    # The NT 4.0 host (KB253729's test system) runs the same sequence over SMB in test_nt4_smb.py.
    fleet, inventory = start_fleet([(h, p) for h, p, _, _ in SEED_HOSTS])
    seeds = {h: a for h, _, a, _ in SEED_HOSTS}
    package_dir = tmp_path / "packages"
    for name in packages.package_names():
        packages.write_package(name, package_dir)
    workdir = tmp_path / "run"
    host_vars(workdir, fleet, list(seeds))
    for ep in fleet.hosts.values():
        ep.reset_counters()

    # 1. Audit of each host's own article with host_facts given; then all four articles, enforced, in check mode.
    audit = run_playbook(f"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: audit
              kbfix.windows.kb_article:
                articles: ["{{{{ specs[seeds[inventory_hostname]] }}}}"]
                variables: "{{{{ seed_variables[seeds[inventory_hostname]] }}}}"
                host_facts: "{{{{ kbfix_os | default(omit) }}}}"
            - name: plan
              kbfix.windows.kb_article:
                articles: "{{{{ specs.values() | list }}}}"
                variables: {VARIABLES}
                state: enforced
                package_source: {package_dir}
                host_facts: "{{{{ kbfix_os }}}}"
              check_mode: true
        """, inventory, workdir, env=FORKS, extra_vars={
        "specs": SPECS, "seeds": seeds, "seed_variables": SEED_VARIABLES})
    assert_ok(audit)
    for host, _, article, status in SEED_HOSTS:
        first, plan = audit.one("audit", host), audit.one("plan", host)
        assert verdict(first, article)["status"] == status, first.result["msg"]
        assert not first.result["changed"]
        # The check-mode run reports the plan of every noncompliant article and changes nothing.
        assert [v["article"] for v in plan.result["verdicts"]] == list(SPECS)
        assert verdict(plan, "KB253729")["status"] == "not_applicable"  # NT 4.0 TSE only
        assert plan.result["changed"] is (status == "noncompliant")
        assert all(c["planned"] for c in plan.result["changes"])
        assert writes(fleet.hosts[host]) == {}
        counters = fleet.hosts[host].counters()
        assert counters["requests"] == first.result["requests"] + plan.result["requests"]
    assert verdict(audit.one("audit", "xp2"), "KB828753")["reason"].startswith("fixed by service pack")
    # With the OS facts known, one article costs at most five requests after authentication, NT 6.x included
    # (tests/integration/test_request_budget.py measures each seed article against winsim's counters).
    for host, _, _, _ in SEED_HOSTS:
        assert audit.one("audit", host).result["requests"] <= 5, host
    xp_plan = [c["action"] for c in audit.one("plan", "xp1").result["changes"]]
    assert xp_plan == ["install_package", "set_registry"]
    assert fleet.hosts["xp1"].host().registry.get(
        r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters", "ReconnectableServers") is None

    # 2. Enforce, with diff; enforcing again before the restart changes nothing.
    enforce = run_playbook(f"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: enforce
              kbfix.windows.kb_article:
                articles: "{{{{ specs.values() | list }}}}"
                variables: {VARIABLES}
                state: enforced
                package_source: {package_dir}
            - name: enforce again
              kbfix.windows.kb_article:
                articles: "{{{{ specs.values() | list }}}}"
                variables: {VARIABLES}
                state: enforced
                package_source: {package_dir}
        """, inventory, workdir, env=FORKS, extra_vars={"specs": SPECS}, diff=True)
    assert_ok(enforce)
    for host, _, article, status in SEED_HOSTS:
        first, again = enforce.one("enforce", host), enforce.one("enforce again", host)
        assert verdict(first, article, "verdicts_before")["status"] == status
        assert first.result["changed"] is (host in FIXED)
        assert not again.result["changed"], again.result["msg"]
        if host in FIXED:
            assert verdict(first, article)["status"] == "reboot_pending", first.result["msg"]
            assert first.result["restart_required"] and again.result["restart_required"]
            install = next(c for c in first.result["changes"] if c["action"] == "install_package")
            assert (install["exit_code"], install["result"], install["source"]) == (3010, "restart_required",
                                                                                   "controller")
    xp_changes = enforce.one("enforce", "xp1").result["changes"]
    assert xp_changes[1]["after"] == {"type": "multistring", "data": SERVERS}
    registry = fleet.hosts["xp1"].host().registry
    value = registry.get(r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters",
                         "ReconnectableServers")
    assert value is not None and value.data == SERVERS
    assert "+fs01.example.com" in enforce.stdout  # the diff of the multistring value
    vista_credits = fleet.hosts["vista"].host().registry.get(
        r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters", "AsynchronousCredits")
    assert vista_credits is not None and vista_credits.data == 512

    # 3. After the restart the audit says compliant, and enforcing changes nothing.
    reboot(fleet, FIXED)
    after = run_playbook("""
        - hosts: all
          gather_facts: false
          tasks:
            - name: audit
              kbfix.windows.kb_article:
                articles: "{{ specs.values() | list }}"
                variables: "{{ all_variables }}"
            - name: enforce
              kbfix.windows.kb_article:
                articles: "{{ specs.values() | list }}"
                variables: "{{ all_variables }}"
                state: enforced
                package_source: "{{ package_dir }}"
        """, inventory, workdir, env=FORKS,
        extra_vars={"specs": SPECS, "all_variables": VARIABLES, "package_dir": str(package_dir)})
    assert_ok(after)
    for host, _, article, status in SEED_HOSTS:
        audited, enforced = after.one("audit", host), after.one("enforce", host)
        expected = "not_applicable" if status == "not_applicable" else "compliant"
        assert verdict(audited, article)["status"] == expected, audited.result["msg"]
        assert not audited.result["restart_required"]
        assert not enforced.result["changed"], enforced.result["msg"]


def test_bad_variables_fail_before_any_request(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("vista", "vista-rtm-x64")])
    workdir = tmp_path / "run"
    (workdir / "files").mkdir(parents=True)
    shutil.copy(SPECS["KB938475"], workdir / "files" / "kb938475.yml")
    fleet.hosts["vista"].reset_counters()
    run = run_playbook("""
        - hosts: all
          gather_facts: false
          tasks:
            - name: missing
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                host_facts: {version: "6.0.6000", service_pack: 0, architecture: x64, product_type: 1}
              ignore_errors: true
            - name: out of range
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                variables: {asynchronous_credits: 70000}
              ignore_errors: true
            - name: not a number
              kbfix.windows.kb_article:
                articles: [{spec: kb938475.yml, variables: {asynchronous_credits: many}}]
              ignore_errors: true
            - name: typo
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                variables: {asynchronous_credits: 512, asynchronus_credits: 512}
              ignore_errors: true
            - name: no such spec
              kbfix.windows.kb_article:
                articles: [kb999999.yml]
              ignore_errors: true
            - name: bad host facts
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                variables: {asynchronous_credits: 512}
                host_facts: {version: "6.0.6000", service_pack: 0, architecture: arm, product_type: 1}
              ignore_errors: true
            - name: bad fail_on
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                variables: {asynchronous_credits: 512}
                fail_on: [broken]
              ignore_errors: true
            - name: bad package source
              kbfix.windows.kb_article:
                articles: [kb938475.yml]
                variables: {asynchronous_credits: 512}
                state: enforced
                package_source: no-such-directory
              ignore_errors: true
        """, inventory, workdir)
    failed = {r.task: r.result for r in run.results}
    assert all(r.status == "failed" for r in run.results) and len(failed) == 8, run.output[-4000:]
    assert failed["missing"]["argument"] == "articles[0].variables.asynchronous_credits"
    assert failed["missing"]["msg"].startswith("KB938475: articles[0].variables.asynchronous_credits: is required")
    assert failed["out of range"]["argument"] == "variables.asynchronous_credits"
    assert "must be in 1..65535, got 70000" in failed["out of range"]["msg"]
    assert failed["not a number"]["argument"] == "articles[0].variables.asynchronous_credits"
    assert all(failed[t]["article"] == "KB938475" for t in ("missing", "out of range", "not a number"))
    assert failed["typo"]["argument"] == "variables.asynchronus_credits"
    assert failed["no such spec"]["argument"] == "articles[0]" and "kb999999.yml" in failed["no such spec"]["msg"]
    assert failed["bad host facts"]["argument"] == "host_facts.architecture"
    assert "fail_on" in failed["bad fail_on"]["msg"] and "broken" in failed["bad fail_on"]["msg"]
    assert failed["bad package source"]["argument"] == "package_source"
    counters = fleet.hosts["vista"].counters()
    assert (counters["requests"], counters["auth_requests"]) == (0, 0)


PFRO = {r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager": {
    "PendingFileRenameOperations": ["multistring", ["\\??\\C:\\WINDOWS\\system32\\SET3.tmp", ""]]}}


def test_credentials_fail_on_pending_restart_and_secrets(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86"), ("xp3", "xp-sp1-x86", {"registry": PFRO})])
    wrong = "Wr0ng-Secret!value"
    workdir = tmp_path / "run"
    package_dir = tmp_path / "packages"
    packages.write_package("WindowsXP-KB828753-x86-ENU.exe", package_dir)
    # In a vars file: ansible-playbook itself echoes -e values and the failing task's source at -vvvvv.
    (workdir / "host_vars").mkdir(parents=True)
    (workdir / "host_vars" / "xp1.yml").write_text(yaml.safe_dump({"wrong": wrong}), encoding="utf-8")
    run = run_playbook("""
        - hosts: all
          gather_facts: false
          tasks:
            - name: wrong password
              kbfix.windows.kb_article:
                articles: ["{{ spec }}"]
                variables: {reconnectable_servers: [fs01]}
              vars:
                ansible_password: "{{ wrong }}"
              when: inventory_hostname == 'xp1'
              ignore_errors: true
            - name: gate
              kbfix.windows.kb_article:
                articles: ["{{ spec }}"]
                variables: {reconnectable_servers: [fs01]}
                fail_on: [noncompliant, unknown]
              when: inventory_hostname == 'xp1'
              ignore_errors: true
            - name: pending
              kbfix.windows.kb_article:
                articles: ["{{ spec }}"]
                variables: {reconnectable_servers: [fs01]}
                state: enforced
                package_source: "{{ package_dir }}"
              when: inventory_hostname == 'xp3'
        """, inventory, workdir, verbosity=5, extra_vars={"spec": SPECS["KB828753"], "package_dir": str(package_dir)})
    refused, gate = run.one("wrong password", "xp1"), run.one("gate", "xp1")
    assert refused.status == "failed"
    assert "rejected the credentials of 'Administrator'" in refused.result["msg"]
    assert gate.status == "failed" and gate.result["article"] == "KB828753"
    assert gate.result["msg"].startswith("KB828753 is noncompliant (fail_on)")
    assert verdict(gate, "KB828753")["status"] == "noncompliant"  # reported before failing
    # A restart is pending: the package waits, the registry value is set, and the task says why.
    pending_task = run.one("pending", "xp3")
    pending = pending_task.result
    install, servers = pending["changes"]
    assert install["skipped"] and "a restart is pending (PendingFileRenameOperations)" in install["reason"]
    assert servers["name"] == "ReconnectableServers" and servers["changed"]
    assert pending["changed"] and pending["restart_required"] and "restart is pending" in pending["msg"]
    assert verdict(pending_task, "KB828753")["status"] == "noncompliant"
    assert "Command" not in fleet.hosts["xp3"].counters()["by_action"]  # nothing uploaded or run
    # -vvvvv shows every WS-Man payload, never a password.
    assert "(127.0.0.1): request <" in run.output  # messages name the inventory host and its address
    assert PASSWORD not in run.output and wrong not in run.output


def test_enforcing_refreshes_the_pending_restart_it_reuses(start_fleet: Any, tmp_path: Path) -> None:
    """After kbfix.windows.facts, kb_article takes the pending restart from ansible_facts instead of reading it
    (issue 13). An install queues a restart, so the changing task returns the refreshed indicators: the audit
    after it judges "reboot_pending" (installed, waiting for the restart), not "noncompliant" from the facts
    gathered before the install."""
    _, inventory = start_fleet([("s2008", "2008-sp2-x64")])
    package_dir = tmp_path / "packages"
    for name in packages.package_names():
        packages.write_package(name, package_dir)
    run = run_playbook(f"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: facts
              kbfix.windows.facts:
            - name: enforce
              kbfix.windows.kb_article:
                articles: ["{SPECS['KB977381']}"]
                state: enforced
                package_source: {package_dir}
            - name: audit
              kbfix.windows.kb_article:
                articles: ["{SPECS['KB977381']}"]
        """, inventory, tmp_path / "run", env=FORKS)
    assert_ok(run)
    facts = run.one("facts", "s2008").result["ansible_facts"]
    assert facts["kbfix_reboot_pending"] is False
    enforce, audit = run.one("enforce", "s2008"), run.one("audit", "s2008")
    assert enforce.result["changed"] and enforce.result["restart_required"]
    refreshed = enforce.result["ansible_facts"]
    assert refreshed["kbfix_reboot_pending"] is True and refreshed["kbfix_reboot_pending_sources"], refreshed
    # Judged from the refreshed answer: with the one gathered before the install it would be "noncompliant".
    assert verdict(audit, "KB977381")["status"] == "reboot_pending", audit.result["msg"]
