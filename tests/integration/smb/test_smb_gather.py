"""A KB253729 audit over SMB against real Samba hosts: the engine's fact request for NT 4.0 TSE, gathered by
the SMB transport, judged by the engine (fixed host compliant, unfixed noncompliant), in a handful of round
trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article import engine
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts, RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import CURRENT_VERSION

SPEC = load_spec(Path(__file__).resolve().parents[3] / "roles" / "kb253729" / "files" / "kb253729.yml")
# What os_facts returns for a real NT 4.0 TSE SP6 (Samba cannot say it: see test_smb_samba_facts.py).
NT4_TSE = OsFacts(version="4.0.1381", service_pack=6, architecture="x86", product_type=3,
                  caption="Microsoft Windows NT Server 4.0 Terminal Server (Service Pack 6)", system_root="C:\\WINNT")
SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
# Round trips of the gather once the session is up (os_facts has run): the C$ tree connect; open + query
# size/date + 2 ranged reads + close of Mpr.dll; the Hotfix\Q253729 key (2); PendingFileRenameOperations (key
# and value, 4). Each RPC call is an SMB write and read of the pipe.
BUDGET = 12


def _audit(transport):
    request = engine.fact_request(SPEC, NT4_TSE, {})
    facts = transport.gather(NT4_TSE, request)
    return request, facts, engine.evaluate(SPEC, facts, {})


def test_fixed_host_is_compliant(fixed_host, connect):
    request, facts, verdict = _audit(connect(fixed_host))
    assert request.hotfix_ids == ("Q253729",)
    assert verdict.status == "compliant", verdict.reason
    assert facts.hotfix_sources == {"Q253729": ("registry",)}
    assert not facts.reboot_pending


def test_unfixed_host_is_noncompliant(unfixed_host, connect):
    _, facts, verdict = _audit(connect(unfixed_host))
    assert verdict.status == "noncompliant", verdict.reason
    assert facts.hotfixes == frozenset()
    assert [p.action for p in verdict.plan][:1] == ["install_package"]


def test_pending_file_rename_is_a_pending_restart(unfixed_host, connect):
    transport = connect(unfixed_host)
    renames = RegistryValue("multistring", [r"\??\C:\WINNT\system32\Mpr.dll.new", r"!\??\C:\WINNT\system32\Mpr.dll"])
    transport.set_value(SESSION_MANAGER, "PendingFileRenameOperations", renames)
    try:
        _, facts, _ = _audit(transport)
        assert facts.reboot_pending and facts.reboot_pending_sources == ("PendingFileRenameOperations",)
        assert transport.pending_restart(NT4_TSE) == (True, ("PendingFileRenameOperations",))
    finally:
        transport.delete_value(SESSION_MANAGER, "PendingFileRenameOperations")
    assert transport.pending_restart(NT4_TSE) == (False, ())


def test_audit_costs_a_handful_of_round_trips(fixed_host, connect):
    transport = connect(fixed_host)
    transport.read_values(CURRENT_VERSION, ["CurrentVersion", "CurrentBuildNumber"])  # what os_facts opens
    transport.reset_counters()
    _audit(transport)
    assert transport.request_count <= BUDGET, transport.requests_by_name()
    assert transport.bytes_read < 4096


def test_missing_share_leaves_the_file_unknown(tmp_path, connect):
    from smbhost import running_samba

    with running_samba(tmp_path / "noadmin", fixed=True, with_admin_share=False) as host:
        transport = connect(host)
        request = engine.fact_request(SPEC, NT4_TSE, {})
        request = type(request)(files=tuple(p.replace("C:\\WINNT", "D:\\WINNT") for p in request.files),
                                registry_keys=request.registry_keys, hotfix_ids=request.hotfix_ids)
        facts = transport.gather(NT4_TSE, request)
        verdict = engine.evaluate(SPEC, facts, {})
    assert facts.files == {}  # D$ does not exist: the file fact is absent, not "file missing"
    assert verdict.status == "unknown" and verdict.missing


@pytest.mark.parametrize("scope", ["everything", ""])
def test_bad_restart_scope(fixed_host, connect, scope):
    with pytest.raises(ArgumentError, match="restart_scope"):
        connect(fixed_host).gather(NT4_TSE, engine.fact_request(SPEC, NT4_TSE, {}), restart_scope=scope)
