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
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import collect, wmi
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
        wmi.set_value(client, LANMAN, "ReconnectableServers", RegistryValue("multistring", SERVERS))
        wmi.set_value(client, LANMAN, "ReconnectTimeout", RegistryValue("dword", 120))
    after = audit(fleet, "xp1", "KB828753", KB828753_VARIABLES)
    assert after.requests <= BUDGET, after.by_action
    assert registry_check(after.verdict, "ReconnectableServers")[0] is True
    assert registry_check(after.verdict, "ReconnectTimeout")[0] is True
    assert after.by_action.get("Invoke:GetMultiStringValue") == 2  # the value itself + the rename queue
    assert after.by_action.get("Invoke:GetDWORDValue") == 1

    # A value of the wrong type (the redirector ignores a REG_SZ list): the typed Get says so, and only
    # then EnumValues and the Get of the real type read it, so the check can name the type it found.
    with closing(client_for(fleet.hosts["xp1"])) as client:
        wmi.set_value(client, LANMAN, "ReconnectableServers", RegistryValue("string", "fs01"))
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
