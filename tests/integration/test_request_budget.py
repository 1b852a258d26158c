# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request budget of an article audit (issue 4): with the OS facts known, auditing one seed article on
one host costs at most five WinRM requests after authentication, counted by winsim.

The audit runs the library path of kbfix.windows.kb_article (``article_runner.prepare`` + ``run`` with the
``kbfix_os`` mapping as ``host_facts``) against winsim hosts of each article's test systems."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import client_for

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FactRequest, RegistryValue, Verdict
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import indicators
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import collect, stdregprov, wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim.testing import Fleet, HostSpec, running_fleet

BUDGET = 5
ROLES = Path(__file__).resolve().parents[2] / "roles"
LANMAN = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
SERVERS = ["fs01", "fs01.example.com", "10.0.0.5"]
KB828753_VARIABLES = {"reconnectable_servers": SERVERS, "reconnect_timeout": 120}

# (host, profile, article, variables): each seed article on the systems it was written for.
SEED_AUDITS = [
    ("r2003", "2003r2-sp2-x64", "KB977381", {}),
    ("s2008", "2008-sp2-x64", "KB977381", {}),
    ("r2008", "2008r2-rtm-x64", "KB977381", {}),
    ("vista", "vista-rtm-x64", "KB938475", {"asynchronous_credits": 512}),
]
# Restart flags other agents leave: Windows Update's key, update.exe's volatile key (Flags != 0).
WU_KEY = {indicators.WU_REBOOT_REQUIRED: {}}
UPDATE_EXE = {indicators.UPDATE_EXE_VOLATILE: {indicators.UPDATE_EXE_FLAGS: ["dword", 1]}}
HOSTS = [
    HostSpec("xp1", "xp-sp1-x86"),
    *(HostSpec(host, profile) for host, profile, _, _ in SEED_AUDITS),
    HostSpec("xpflags", "xp-sp1-x86", {"registry": {**WU_KEY, **UPDATE_EXE}}),
    HostSpec("vflags", "vista-rtm-x64", {"registry": WU_KEY}),
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(HOSTS, state_dir=tmp_path_factory.mktemp("budget")) as started:
        yield started


@dataclass
class Audit:
    verdict: Verdict
    requests: int  # winsim's count of WS-Man requests, authentication round trips excluded
    by_action: dict[str, int]


def audit(fleet: Fleet, host: str, article: str, variables: dict[str, Any]) -> Audit:
    """One audit as kb_article runs it with ``host_facts: "{{ kbfix_os }}"``, on a fresh client (so every
    connection authenticates again: those round trips must not count)."""
    ep = fleet.hosts[host]
    spec = ROLES / article.lower() / "files" / f"{article.lower()}.yml"
    with closing(client_for(ep)) as probe:
        kbfix_os = wmi.os_facts(probe).to_dict()  # what kbfix.windows.facts leaves in kbfix_os
    client = client_for(ep)
    try:
        articles = article_runner.prepare([article_runner.ArticleRequest(spec, variables, "articles[0]")], {})
        ep.reset_counters()
        result = article_runner.run(WinRMTransport(client), articles, article_runner.os_facts_from_mapping(kbfix_os),
                                    article_runner.Options())
        counters = ep.counters()
        assert counters["auth_requests"] > 0  # a fresh client did authenticate, and that was not counted
        assert client.request_count == counters["requests"]  # the figure kb_article reports is winsim's
    finally:
        client.close()
    [verdict] = result.verdicts
    return Audit(verdict, counters["requests"], counters["by_action"])


def registry_check(verdict: Verdict, name: str) -> tuple[bool | None, str, str]:
    check = next(c for c in verdict.checks if c.id == f"registry:{LANMAN}\\{name}")
    return check.passed, check.found, check.message


@pytest.mark.parametrize(("host", "profile", "article", "variables"), SEED_AUDITS,
                         ids=[f"{a}-{p}" for _, p, a, _ in SEED_AUDITS])
def test_seed_article_audit_within_budget(fleet: Fleet, host: str, profile: str, article: str,
                                          variables: dict[str, Any]) -> None:
    del profile  # in the test id only
    done = audit(fleet, host, article, variables)
    assert done.requests <= BUDGET, done.by_action
    assert done.verdict.status == "noncompliant", done.verdict.reason  # judged from facts actually read
    assert done.verdict.missing == []
    # Neither WindowsUpdate's RebootRequired nor the values' types are looked up for an audit.
    assert "Invoke:EnumValues" not in done.by_action


def test_kb828753_on_xp_within_budget_before_and_after_the_values_exist(fleet: Fleet) -> None:
    before = audit(fleet, "xp1", "KB828753", KB828753_VARIABLES)
    assert before.requests <= BUDGET, before.by_action
    assert before.verdict.status == "noncompliant" and before.verdict.missing == []
    assert registry_check(before.verdict, "ReconnectableServers")[:2] == (False, "absent")
    assert registry_check(before.verdict, "ReconnectTimeout")[:2] == (False, "absent")

    with closing(client_for(fleet.hosts["xp1"])) as client:
        stdregprov.set_value(client, LANMAN, "ReconnectableServers", RegistryValue("multistring", SERVERS))
        stdregprov.set_value(client, LANMAN, "ReconnectTimeout", RegistryValue("dword", 120))
    after = audit(fleet, "xp1", "KB828753", KB828753_VARIABLES)
    assert after.requests <= BUDGET, after.by_action
    assert registry_check(after.verdict, "ReconnectableServers")[0] is True
    assert registry_check(after.verdict, "ReconnectTimeout")[0] is True
    assert after.by_action.get("Invoke:GetMultiStringValue") == 2  # the value itself + the rename queue
    assert after.by_action.get("Invoke:GetDWORDValue") == 1

    # A value of the wrong type (the redirector ignores a REG_SZ list): the typed Get says so, and only
    # then EnumValues and the Get of the real type read it, so the check can name the type it found.
    with closing(client_for(fleet.hosts["xp1"])) as client:
        stdregprov.set_value(client, LANMAN, "ReconnectableServers", RegistryValue("string", "fs01"))
    wrong = audit(fleet, "xp1", "KB828753", KB828753_VARIABLES)
    passed, found, message = registry_check(wrong.verdict, "ReconnectableServers")
    assert (passed, found) == (False, "fs01 (string)")
    assert "is string, Windows only honours multistring" in message
    assert wrong.by_action.get("Invoke:EnumValues") == 1 and wrong.by_action.get("Invoke:GetStringValue") == 1
    assert wrong.requests == after.requests + 2


def test_article_audits_leave_other_agents_restart_flags_to_the_facts_module(fleet: Fleet) -> None:
    expected = {"xpflags": (indicators.SOURCE_WU, indicators.SOURCE_UPDATE_EXE), "vflags": (indicators.SOURCE_WU,)}
    for host, sources in expected.items():
        ep = fleet.hosts[host]
        with closing(client_for(ep)) as client:
            os_facts = wmi.os_facts(client)
            article = collect.gather(client, os_facts, FactRequest())
            assert (article.reboot_pending, article.reboot_pending_sources) == (False, ()), host
            full = collect.gather(client, os_facts, FactRequest(), restart_scope="full")
            assert (full.reboot_pending, full.reboot_pending_sources) == (True, sources), host
            ep.reset_counters()
            assert wmi.pending_restart(client, os_facts) == (True, sources), host
            # The facts / reboot modules' read: rename queue, RebootRequired, and the OS's own third flag.
            assert ep.counters()["requests"] == 3, ep.counters()["by_action"]


# --- issue 13: the whole host in one round of requests ---------------------------------------------------

# playbooks/audit.yml per host: kbfix.windows.facts (winrm_version: os_table) then one kb_article task for the
# four seed articles, which takes the OS and the pending restart from the facts task.
HOST_BUDGET_WSMAN = 8
# Authentication included: one HTTP request (the NTLM challenge) per connection (ntlm_http), and a task opens
# at most one connection per request of its first concurrent round (facts: 2, kb_article: 3).
HOST_BUDGET_HTTP = 13
SEED_ARTICLES = ("KB253729", "KB828753", "KB938475", "KB977381")
SITE_VARIABLES: dict[str, dict[str, Any]] = {"KB828753": {"reconnectable_servers": ["fs01"]},
                                             "KB938475": {"asynchronous_credits": 512}}
TOP = Path(__file__).resolve().parents[2]


def winrm_profiles() -> list[str]:
    from winsim.fleet import default_profiles

    return [p for p in default_profiles() if not p.startswith("nt4")]  # NT 4.0 has no WinRM


@pytest.fixture(scope="module")
def every_profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    specs = [HostSpec(f"p{i:02d}", profile) for i, profile in enumerate(winrm_profiles())]
    with running_fleet(specs, state_dir=tmp_path_factory.mktemp("host-budget")) as started:
        yield started


def test_whole_host_audit_within_budget_on_every_profile(every_profile: Fleet) -> None:
    """The library path of audit.yml, a fresh client per task as each Ansible worker has: the facts task, then
    the four articles with its OS facts and pending-restart sources. Counted by winsim per host."""
    requests = [article_runner.ArticleRequest(ROLES / a.lower() / "files" / f"{a.lower()}.yml",
                                              SITE_VARIABLES.get(a, {}), a) for a in SEED_ARTICLES]
    articles = article_runner.prepare(requests, {})
    for name, ep in every_profile.hosts.items():
        ep.reset_counters()
        facts_client = client_for(ep)
        try:
            gathered = WinRMTransport(facts_client).host_facts(ask_version=False)
        finally:
            facts_client.close()
        after_facts = ep.counters()
        article_client = client_for(ep)
        try:
            result = article_runner.run(WinRMTransport(article_client), articles,
                                        article_runner.os_facts_from_mapping(gathered["kbfix_os"]),
                                        article_runner.Options(), gathered["kbfix_reboot_pending_sources"])
        finally:
            article_client.close()
        counters = ep.counters()
        where = f"{name} ({ep.profile}): {counters['by_action']}"
        assert counters["requests"] <= HOST_BUDGET_WSMAN, where
        assert counters["requests"] + counters["auth_requests"] <= HOST_BUDGET_HTTP, where
        # One HTTP request of authentication per connection (issue 13: was three), and no more connections
        # than requests wanted to go out at once.
        assert counters["auth_requests"] == facts_client.pool.opened + article_client.pool.opened, where
        assert facts_client.pool.opened <= facts_client.pool.peak_wanted, where
        assert article_client.pool.opened <= max(article_client.pool.peak_wanted, 1), where
        assert after_facts["by_action"].get("Identify") is None  # os_table: no Identify
        # The pending-restart indicators are read once, by the facts task.
        pending_reads = counters["by_action"].get("Invoke:GetMultiStringValue", 0)
        assert pending_reads == after_facts["by_action"].get("Invoke:GetMultiStringValue", 0) + (
            1 if ep.profile.startswith("xp-sp1") else 0), where  # XP SP1: + KB828753's ReconnectableServers
        assert {v.status for v in result.verdicts} <= {"compliant", "noncompliant", "not_applicable"}, where
        assert all(v.missing == [] for v in result.verdicts), where


@pytest.mark.slow
def test_audit_playbook_within_budget_and_reuses_the_facts(start_fleet: Any, tmp_path: Path) -> None:
    """playbooks/audit.yml itself through ansible-playbook: the action plugins pass the facts task's
    ``kbfix_os`` and pending restart on to kb_article, which reads neither again (also where a rename is
    pending, so the answer passed on is not just the default)."""
    from harness import run_playbook

    session_manager = indicators.SESSION_MANAGER
    renames = {"registry": {session_manager: {indicators.PFRO_VALUE: ["multistring", [r"\??\C:\x.tmp", ""]]}}}
    fleet, inventory = start_fleet([("s2008", "2008-sp2-x64"), ("xp1", "xp-sp1-x86"),
                                    ("vista", "vista-rtm-x64"), ("pending", "2003r2-sp2-x64", renames)])
    extra = {"kbfix_articles": list(SEED_ARTICLES),
             **{f"{a.lower()}_{k}": v for a, vs in SITE_VARIABLES.items() for k, v in vs.items()}}
    for ep in fleet.hosts.values():
        ep.reset_counters()
    run = run_playbook(TOP / "playbooks" / "audit.yml", inventory, tmp_path, extra_vars=extra)
    assert run.rc == 0, run.output
    for name, ep in fleet.hosts.items():
        counters = ep.counters()
        where = f"{name}: {counters}"
        assert counters["requests"] <= HOST_BUDGET_WSMAN, where
        assert counters["requests"] + counters["auth_requests"] <= HOST_BUDGET_HTTP, where
        facts = run.one("Read the Windows version, service pack, architecture and pending restart", name).result
        audit = run.one("Audit every article in one pass", name).result
        # kb_article's own requests: the facts task's share is not read again.
        assert audit["requests"] == counters["requests"] - 5, where
        assert facts["ansible_facts"]["kbfix_winrm_version_source"] == "os_table"
    assert run.one("Read the Windows version, service pack, architecture and pending restart",
                   "pending").result["ansible_facts"]["kbfix_reboot_pending"] is True
