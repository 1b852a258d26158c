# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request budget of a KB253729 audit over SMB (issue 11), the counterpart of test_request_budget.py: with
the OS facts known, the audit of an NT 4.0 TSE host costs a handful of SMB/RPC round trips, counted both by the
transport and, independently, by winsim's NT 4.0 face.

What an audit needs: Mpr.dll's size and write time (the C$ tree, open, one query, the version resource's
ranged reads, close), the Hotfix\\Q253729 key and PendingFileRenameOperations (the winreg pipe: open, bind,
OpenLocalMachine, two OpenKey, one QueryValue). impacket carries each RPC call as an SMB write and an SMB read
of the pipe, so the SMB request count is twice the RPC count plus the file operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import SMBTransport, open_for
from winsim.testing import Fleet, HostSpec, running_fleet

SPEC = Path(__file__).resolve().parents[2] / "roles" / "kb253729" / "files" / "kb253729.yml"
RPC_BUDGET = 4  # OpenLocalMachine, OpenKey (Hotfix\Q253729), OpenKey (Session Manager), QueryValue (PFRO)
FILE_BUDGET = 6  # tree connect, NtCreate, QueryFileInfo, version reads (at most 2 here), close
SMB_BUDGET = 18  # after logon: the pipe (tree connect IPC$, open, bind write + read), 2 per RPC call, files
LOGON = ("SMB_COM_NEGOTIATE", "SMB_COM_SESSION_SETUP_ANDX")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hosts = [HostSpec("nt4", "nt4-tse-sp6-x86"), HostSpec("nt4fixed", "nt4-tse-sp6-x86", {"installed": ["Q253729"]})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("budget-smb")) as started:
        yield started


def host_vars(fleet: Fleet, name: str) -> dict[str, Any]:
    inventory = yaml.safe_load(fleet.inventory(fleet.state_dir / "inventory.yml").read_text(encoding="utf-8"))
    return dict(inventory["all"]["children"]["winsim_nt4_tse_sp6_x86"]["hosts"][name])


def audit(fleet: Fleet, name: str) -> tuple[Any, SMBTransport, dict[str, int], dict[str, int]]:
    """kb_article's library path with ``host_facts`` given, on a fresh transport (its logon included)."""
    variables = host_vars(fleet, name)
    probe = open_for(variables, lambda level, message: None)
    try:
        kbfix_os = probe.os_facts().to_dict()  # what kbfix.windows.facts leaves in kbfix_os
    finally:
        probe.close()
    transport = open_for(variables, lambda level, message: None)
    articles = article_runner.prepare([article_runner.ArticleRequest(SPEC, {}, "articles[0]")], {})
    ep = fleet.hosts[name]
    ep.reset_counters()
    try:
        result = article_runner.run(transport, articles, article_runner.os_facts_from_mapping(kbfix_os),
                                    article_runner.Options())
        by_action = ep.counters()["by_action"]
        counts = transport.requests_by_name()  # before close() adds its tree disconnects and logoff
    finally:
        transport.close()
    [verdict] = result.verdicts
    return verdict, transport, counts, by_action


@pytest.mark.parametrize(("name", "status"), [("nt4", "noncompliant"), ("nt4fixed", "compliant")])
def test_kb253729_audit_costs_a_handful_of_round_trips(fleet: Fleet, name: str, status: str) -> None:
    verdict, transport, counts, by_action = audit(fleet, name)
    assert verdict.status == status, verdict.reason
    assert verdict.missing == []
    total = sum(counts.values())
    # The face counts what reached it: the SMB requests (its RPC:* entries are the calls those carried).
    face_smb = sum(n for action, n in by_action.items() if action.startswith("SMB:"))
    face_rpc = {a: n for a, n in by_action.items() if a.startswith("RPC:")}
    assert total == face_smb, (counts, by_action)
    assert sum(face_rpc.values()) <= RPC_BUDGET, face_rpc
    assert total - sum(counts.get(k, 0) for k in LOGON) <= SMB_BUDGET, counts
    files = sum(n for k, n in counts.items() if k.startswith("SMB_COM_") and k not in LOGON)
    assert files <= FILE_BUDGET, counts
    assert transport.bytes_read < 4096  # only the version resource's ranges, not the whole file
    # No srvsvc (the boot time comes with the OS facts), no svcctl, no ADMIN$ write for an audit.
    assert not any(k.startswith(("srvsvc", "svcctl", "R")) for k in counts), counts


def test_a_direct_session_asks_no_netbios_name_first(fleet: Fleet) -> None:
    """impacket asks the host's NetBIOS name service for the real name of ``*SMBSERVER`` (UDP 137, four
    one-second tries when nothing answers, uncounted by winsim) unless the port is 445; a direct session
    (here winsim's port) has no NetBIOS session request to name a server in, so it is given the address."""
    variables = host_vars(fleet, "nt4")
    assert variables["kbfix_smb_session"] == "direct" and int(variables["kbfix_smb_port"]) != 445
    transport = open_for(variables, lambda level, message: None)
    try:
        assert transport.session().conn.getRemoteName() == variables["ansible_host"]
    finally:
        transport.close()
