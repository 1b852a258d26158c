# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's rules, case by case (docs/engine.md). Each case starts from a host on which the article is
fully in place (built from the spec's own rows) and changes one thing."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from engine_helpers import (
    DFSR_KEY,
    NT4_SERVER,
    NT4_TSE,
    SERVER,
    TOP,
    VARIABLES,
    VISTA_SP1_X64,
    VISTA_X64,
    VISTA_X86,
    WIN7,
    WORKSTATION,
    WS2003_SP2,
    WS2003R2_IA64,
    WS2003R2_X64,
    WS2003R2_X86,
    WS2008_SP1_X86,
    WS2008_SP2_X64,
    WS2008R2,
    WS2008R2_SP1,
    XP_SP1,
    XP_SP2,
    fixed_host,
    host,
    seed_spec,
)

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import (
    applicability,
    evaluate,
    expand_path,
    fact_request,
    package_for,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    CheckResult,
    FileFacts,
    HostFacts,
    OsFacts,
    RegistryValue,
    Verdict,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec_data
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError

Change = Callable[[HostFacts], None]

DFSRS = "%SystemRoot%\\system32\\Dfsrs.exe"
DFSRRESS = "%SystemRoot%\\system32\\Dfsrress.dll"
DFSR_EXE = "%SystemRoot%\\system32\\Dfsr.exe"
MRXSMB = "%SystemRoot%\\system32\\drivers\\Mrxsmb.sys"
MPR = "%SystemRoot%\\system32\\Mpr.dll"


def set_file(path: str, version: str | None, **extra: Any) -> Change:
    def change(facts: HostFacts) -> None:
        full = expand_path(path, facts.os)
        facts.files[full.casefold()] = FileFacts(full, exists=version is not None or bool(extra), version=version,
                                                 **extra)
    return change


def forget_file(path: str) -> Change:
    def change(facts: HostFacts) -> None:
        facts.files.pop(expand_path(path, facts.os).casefold(), None)
    return change


def set_value(key: str, name: str, value: RegistryValue | None) -> Change:
    def change(facts: HostFacts) -> None:
        facts.registry[(registry_key_id(key), name.casefold())] = value
    return change


def forget_value(key: str, name: str) -> Change:
    def change(facts: HostFacts) -> None:
        del facts.registry[(registry_key_id(key), name.casefold())]
    return change


def set_key(key: str, present: bool | None) -> Change:
    def change(facts: HostFacts) -> None:
        if present is None:
            facts.registry_keys.pop(registry_key_id(key), None)
        else:
            facts.registry_keys[registry_key_id(key)] = present
    return change


def recorded(facts: HostFacts) -> None:
    facts.hotfixes = frozenset({"KB977381", "KB828753", "Q253729", "KB938475"})
    facts.hotfix_sources = {h: ("qfe",) for h in facts.hotfixes}


def reboot_pending(facts: HostFacts) -> None:
    facts.reboot_pending = True
    facts.reboot_pending_sources = ("PendingFileRenameOperations",)


def judge(article: str, os: OsFacts, *changes: Change, variables: dict[str, Any] | None = None) -> Verdict:
    spec = seed_spec(article)
    values = VARIABLES[article] if variables is None else variables
    facts = fixed_host(spec, os, values)
    for change in changes:
        change(facts)
    verdict = evaluate(spec, facts, values)
    # The invariants every verdict keeps (docs/engine.md).
    assert (verdict.plan == []) == (verdict.status in ("compliant", "not_applicable"))
    assert verdict.restart_required == any(step.action == "reboot" for step in verdict.plan)
    assert verdict.status != "unknown" or verdict.missing
    return verdict


def check(verdict: Verdict, check_id: str) -> CheckResult:
    (found,) = [c for c in verdict.checks if c.id == check_id]
    return found


def failing(verdict: Verdict) -> list[str]:
    return [c.id for c in verdict.checks if c.passed is False]


def actions(verdict: Verdict) -> list[str]:
    return [step.action for step in verdict.plan]


# ----------------------------------------------------------------------------------- the fixed baseline


@pytest.mark.parametrize(("article", "os"), [
    ("KB828753", XP_SP1), ("KB253729", NT4_TSE), ("KB977381", WS2003R2_X86), ("KB977381", WS2003R2_X64),
    ("KB977381", WS2003R2_IA64), ("KB977381", WS2008_SP1_X86), ("KB977381", WS2008_SP2_X64),
    ("KB977381", WS2008R2), ("KB938475", VISTA_X86), ("KB938475", VISTA_X64),
])
def test_a_host_with_the_fix_is_compliant(article: str, os: OsFacts) -> None:
    verdict = judge(article, os)
    assert verdict.status == "compliant", verdict.reason
    assert verdict.plan == [] and verdict.missing == [] and not verdict.restart_required
    assert all(c.passed is not False for c in verdict.checks)
    assert verdict.reason.startswith("all ")


# ------------------------------------------------------------------------------------ version branch rules


@pytest.mark.parametrize(("article", "os", "path", "version", "status", "message"), [
    # GDR host vs LDR fix: a GDR file never carries a hotfix-only (LDR) fix, whatever its number.
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6001.18226 (vistasp1_gdr.090302-1506)", "noncompliant",
     "the GDR branch does not carry this fix"),
    ("KB977381", WS2003R2_X64, DFSR_EXE, "5.2.3790.4455 (srv03_sp2_gdr.090203-1205)", "noncompliant",
     "the GDR branch does not carry this fix"),
    # On XP / 2003 GDR numbers interleave with QFE ones: above the fixed number but still GDR.
    ("KB828753", XP_SP1, MRXSMB, "5.1.2600.1300 (xpsp1_gdr.040101-0000)", "noncompliant",
     "is on the GDR branch (its FileVersion build tag 'xpsp1_gdr.040101-0000' names no qfe/ldr lab), numbered "
     "above the QFE fix 5.1.2600.1276"),
    # An LDR file below the fix.
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6001.22300 (vistasp1_ldr.090101-0000)", "noncompliant",
     "is below 6.0.6001.22565, the LDR fix"),
    # The SP baseline file.
    ("KB828753", XP_SP1, MRXSMB, "5.1.2600.1106 (xpsp1.020828-1920)", "noncompliant",
     "is below 5.1.2600.1276, the LDR fix"),
    ("KB977381", WS2003R2_X86, DFSR_EXE, "5.2.3790.3959 (srv03_sp2_rtm.070216-1710)", "noncompliant",
     "is below 5.2.3790.4650"),
    # Newer LDR.
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6001.22700 (vistasp1_ldr.100301-0000)", "compliant",
     "at or above 6.0.6001.22565"),
    ("KB828753", XP_SP1, MRXSMB, "5.1.2600.1400 (xpsp1_qfe.040301-0000)", "compliant", "at or above"),
    # XP file without a tag: the numbers decide.
    ("KB828753", XP_SP1, MRXSMB, "5.1.2600.1276", "compliant", "at or above"),
    # A file on a higher build line (SP2 file on an SP1 host) is judged by that line's row.
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6002.22269 (vistasp2_ldr.091117-1600)", "compliant",
     "at or above 6.0.6002.22269"),
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6002.18005 (lh_sp2rtm.090410-1830)", "noncompliant",
     "the GDR branch does not carry this fix"),
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6002.22100 (vistasp2_ldr.090801-0000)", "noncompliant",
     "is below 6.0.6002.22269"),
    # A newer build line the article has no row for: a superseding build.
    ("KB977381", WS2008_SP2_X64, DFSRS, "6.0.6003.20707 (vistasp2_ldr_escrow.191230-1700)", "compliant",
     "superseding build"),
    # An older build line than the host's service pack needs.
    ("KB977381", WS2008_SP2_X64, DFSRS, "6.0.6001.22565 (vistasp1_ldr.091117-1600)", "noncompliant",
     "older than the line this service pack needs"),
    ("KB977381", WS2008_SP1_X86, DFSRS, "6.0.6000.20000", "noncompliant", "older than the line"),
])
def test_version_rules(article: str, os: OsFacts, path: str, version: str, status: str, message: str) -> None:
    verdict = judge(article, os, set_file(path, version))
    assert verdict.status == status, verdict.reason
    result = check(verdict, f"file:{path}")
    assert result.found == version
    assert message in result.message
    if status == "noncompliant":
        assert failing(verdict) == [f"file:{path}"]
        assert actions(verdict) == ["install_package", "reboot"]
        assert f"file:{path}" in verdict.reason


def test_each_failing_check_names_expected_and_found() -> None:
    verdict = judge("KB977381", WS2008_SP1_X86, set_file(DFSRS, "6.0.6001.18000 (longhorn_rtm.080118-1840)"))
    result = check(verdict, f"file:{DFSRS}")
    assert result.expected == ">= 6.0.6001.22565 (LDR; vulnerable when 6.0.6001.22000 <= version < 6.0.6001.22565)"
    assert result.found == "6.0.6001.18000 (longhorn_rtm.080118-1840)"


def test_dfsrress_on_2008_r2_is_not_asked_to_reach_the_service_binary_version() -> None:
    verdict = judge("KB977381", WS2008R2, set_file(DFSRRESS, "6.1.7600.16385 (win7_rtm.090713-1255)"),
                    set_file(DFSRS, "6.1.7600.20578 (win7_ldr.091118-1700)"))
    assert verdict.status == "compliant"
    result = check(verdict, f"file:{DFSRRESS}")
    assert result.passed is True
    assert "6.1.7600.16385" in result.expected and "20578" not in result.expected
    # An LDR Dfsrress.dll from a later update is fine too; an older GDR build is not.
    assert judge("KB977381", WS2008R2, set_file(DFSRRESS, "6.1.7600.20600")).status == "compliant"
    assert judge("KB977381", WS2008R2, set_file(DFSRRESS, "6.1.7600.16100")).status == "noncompliant"


def test_missing_file_fails_as_absent() -> None:
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, None))
    assert verdict.status == "noncompliant"
    assert check(verdict, f"file:{MRXSMB}").found == "absent"


def test_wow_copy_is_checked_on_64_bit_2003_r2() -> None:
    wow = "%SystemRoot%\\SysWOW64\\W03a3409.dll"
    for os in (WS2003R2_X64, WS2003R2_IA64):
        verdict = judge("KB977381", os, set_file(wow, "5.2.3790.4000 (srv03_sp2_qfe.080101-0000)"))
        assert failing(verdict) == [f"file:{wow}"]
    assert f"file:{wow}" not in [c.id for c in judge("KB977381", WS2003R2_X86).checks]


# ------------------------------------------------------------------------------------------ size and date


MPR_ROW_TIME = datetime.datetime(2000, 2, 8, 19, 27, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("size", "modified", "status", "message"), [
    (60176, datetime.datetime(1999, 1, 1, tzinfo=datetime.UTC), "compliant", "same size"),
    (60176, None, "compliant", "same size"),
    (61000, MPR_ROW_TIME, "compliant", "at least as new"),
    (61000, MPR_ROW_TIME + datetime.timedelta(days=400), "compliant", "at least as new"),
    (59664, MPR_ROW_TIME - datetime.timedelta(minutes=1), "noncompliant", "older than the article's file"),
    (None, MPR_ROW_TIME - datetime.timedelta(days=1), "unknown", "could not be read"),
    (59664, None, "unknown", "could not be read"),
])
def test_size_date_rows(size: int | None, modified: datetime.datetime | None, status: str, message: str) -> None:
    verdict = judge("KB253729", NT4_TSE, set_file(MPR, "4.0.1381.33289", size=size, modified=modified))
    assert verdict.status == status
    assert message in check(verdict, f"file:{MPR}").message


def test_size_date_row_paths_expand_to_winnt_on_nt4() -> None:
    request = fact_request(seed_spec("KB253729"), NT4_TSE, {})
    assert request.files == ("C:\\WINNT\\system32\\Mpr.dll",)
    assert request.registry_keys == ("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\Q253729",)
    assert request.hotfix_ids == ("Q253729",)


def test_info_rows_never_decide() -> None:
    mui = "%SystemRoot%\\system32\\en-US\\Dfsrs.exe.mui"
    verdict = judge("KB977381", WS2008_SP1_X86, set_file(mui, None))
    assert verdict.status == "compliant"
    result = check(verdict, f"file:{mui}")
    assert (result.passed, result.found) == (None, "absent")
    # ... and a host that cannot read them is not unknown.
    assert judge("KB977381", WS2008_SP1_X86, forget_file(mui)).status == "compliant"


# ------------------------------------------------------------------------------------------------ registry


def test_wrong_registry_type_is_set_with_the_right_type() -> None:
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectTimeout", RegistryValue("string", "120")))
    assert verdict.status == "noncompliant"
    assert "is string, Windows only honours dword" in check(
        verdict, f"registry:{WORKSTATION}\\ReconnectTimeout").message
    (step, reboot) = verdict.plan
    assert step.action == "set_registry" and reboot.action == "reboot"
    assert step.details.to_dict() == {
        "key": WORKSTATION, "name": "ReconnectTimeout", "type": "dword", "data": 120,
        "before": {"type": "string", "data": "120"}, "before_read": True, "mode": "replace",
        "case_insensitive": False, "restart": True,
    }


def test_multistring_merge_keeps_other_entries_case_insensitively() -> None:
    servers = RegistryValue("multistring", ["backup01", "FS01"])
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectableServers", servers),
                    variables={"reconnectable_servers": ["fs01", "fs02", "FS02"]})
    assert verdict.status == "noncompliant"
    step = verdict.plan[0]
    assert step.details.data == ["backup01", "FS01", "fs02"]
    assert step.details.mode == "merge"
    assert step.description == f"add fs02 to {WORKSTATION}\\ReconnectableServers (multistring)"


def test_multistring_merge_already_complete_in_another_case_is_compliant() -> None:
    servers = RegistryValue("multistring", ["FS01.CORP.EXAMPLE.COM", "other", "Fs01"])
    assert judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectableServers", servers)).status == "compliant"


def test_multistring_of_the_wrong_type_is_replaced() -> None:
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectableServers", RegistryValue("string", "x")))
    assert verdict.plan[0].details.data == ["fs01", "fs01.corp.example.com"]
    assert verdict.plan[0].details.type == "multistring"


def test_absent_value_equal_to_the_windows_default_is_compliant() -> None:
    variables = {"reconnectable_servers": ["fs01"], "reconnect_timeout": 60}
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectTimeout", None), variables=variables)
    assert verdict.status == "compliant"
    assert "Windows uses 60" in check(verdict, f"registry:{WORKSTATION}\\ReconnectTimeout").message
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectTimeout", None))
    assert verdict.plan[0].description == f"create {WORKSTATION}\\ReconnectTimeout = 120 (dword)"


def test_optional_value_is_left_alone_when_its_variable_is_not_given() -> None:
    variables = {"reconnectable_servers": ["fs01"]}
    verdict = judge("KB828753", XP_SP1, set_value(WORKSTATION, "ReconnectTimeout", RegistryValue("dword", 5)),
                    variables=variables)
    assert verdict.status == "compliant"
    assert f"registry:{WORKSTATION}\\ReconnectTimeout" not in [c.id for c in verdict.checks]
    request = fact_request(seed_spec("KB828753"), XP_SP1, variables)
    assert (WORKSTATION, "ReconnectTimeout") not in request.registry_values


def test_fact_request_carries_the_type_of_each_requested_value() -> None:
    # The collector reads a value of a known type with one typed Get (the request budget of issue 4).
    variables = {"reconnectable_servers": ["fs01"], "reconnect_timeout": 120}
    request = fact_request(seed_spec("KB828753"), XP_SP1, variables)
    assert request.registry_value_types == ((WORKSTATION, "ReconnectableServers", "multistring"),
                                            (WORKSTATION, "ReconnectTimeout", "dword"))
    assert [(key, name) for key, name, _ in request.registry_value_types] == list(request.registry_values)
    vista = fact_request(seed_spec("KB938475"), VISTA_X64, {"asynchronous_credits": 512})
    merged = request.merged(vista)
    assert merged.registry_value_types == (*request.registry_value_types,
                                           (SERVER, "AsynchronousCredits", "dword"))


def test_asynchronous_credits_only_on_file_servers() -> None:
    variables = {"asynchronous_credits": 512, "file_server": False}
    verdict = judge("KB938475", VISTA_X86, set_value(SERVER, "AsynchronousCredits", None), variables=variables)
    assert verdict.status == "compliant"
    verdict = judge("KB938475", VISTA_X86, set_value(SERVER, "AsynchronousCredits", RegistryValue("dword", 64)))
    assert failing(verdict) == [f"registry:{SERVER}\\AsynchronousCredits"]
    assert verdict.plan[0].description == f"set {SERVER}\\AsynchronousCredits from 64 (dword) to 512 (dword)"


# ------------------------------------------------------------------------------------------ prerequisites


def test_prerequisite_missing_is_not_applicable() -> None:
    verdict = judge("KB977381", WS2008_SP2_X64, set_key(DFSR_KEY, False), set_file(DFSRS, None))
    assert verdict.status == "not_applicable"
    assert verdict.reason == f"prerequisite not met: DFS Replication service installed (registry key {DFSR_KEY})"
    assert check(verdict, "prerequisite:dfsr_installed").passed is False


def test_prerequisite_unread_only_matters_when_something_is_to_be_done() -> None:
    verdict = judge("KB977381", WS2008_SP2_X64, set_key(DFSR_KEY, None))
    assert verdict.status == "compliant"
    assert verdict.missing == [f"registry_key:{DFSR_KEY}"]
    verdict = judge("KB977381", WS2008_SP2_X64, set_key(DFSR_KEY, None), set_file(DFSRS, "6.0.6002.18005"))
    assert verdict.status == "unknown"
    assert actions(verdict) == ["install_package", "reboot"]


def test_fact_request_reads_the_prerequisite_and_records_with_the_same_request() -> None:
    request = fact_request(seed_spec("KB977381"), WS2003R2_X64, {})
    assert request.registry_keys == (
        "HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP3\\KB977381", DFSR_KEY)
    assert request.files == ("C:\\WINDOWS\\system32\\Dfsr.exe", "C:\\WINDOWS\\system32\\W03a3409.dll",
                             "C:\\WINDOWS\\SysWOW64\\W03a3409.dll")


def test_fact_request_holds_only_this_service_pack_and_architecture() -> None:
    request = fact_request(seed_spec("KB977381"), WS2008_SP1_X86, {})
    assert all(path.startswith("C:\\Windows\\") for path in request.files)
    assert "C:\\Windows\\system32\\Dfsrs.exe" in request.files
    assert not [p for p in request.files if "6.0.6002" in p or "amd64" in p.casefold()]
    assert len([p for p in request.files if p.endswith(".mum")]) == 6
    assert request.registry_values == ()
    assert fact_request(seed_spec("KB977381"), XP_SP1, {}) == type(request)()


# ------------------------------------------------------------------------------------------ applicability


@pytest.mark.parametrize(("article", "os", "message"), [
    ("KB828753", XP_SP2, "fixed by service pack: Windows XP SP2 contains the fix"),
    ("KB938475", VISTA_SP1_X64, "fixed by service pack: Windows Vista SP1 contains the fix"),
    ("KB977381", WS2008R2_SP1, "fixed by service pack"),
    ("KB828753", dataclasses.replace(XP_SP1, service_pack=0), "has no fix for Windows XP SP0 (it covers SP1)"),
    ("KB938475", dataclasses.replace(WS2008_SP1_X86, version="6.0.6000", service_pack=0), "product type [1]"),
    ("KB977381", WIN7, "only as product type [2, 3]"),
    ("KB977381", WS2003_SP2, "the host is another edition"),
    ("KB253729", NT4_SERVER, "the host is another edition"),
    ("KB253729", dataclasses.replace(NT4_TSE, caption=""), "the OS caption was not reported"),
    ("KB977381", dataclasses.replace(WS2008_SP1_X86, architecture="ia64"), "has no fix for Windows Server 2008 ia64"),
    ("KB828753", WS2008R2, "KB828753 does not cover Windows 6.1.7600"),
])
def test_not_applicable_says_why(article: str, os: OsFacts, message: str) -> None:
    applies, reason = applicability(seed_spec(article), os)
    assert not applies
    assert message in reason
    verdict = evaluate(seed_spec(article), host(os), VARIABLES[article])
    assert (verdict.status, verdict.reason, verdict.plan) == ("not_applicable", reason, [])
    assert fact_request(seed_spec(article), os, VARIABLES[article]).files == ()
    assert package_for(seed_spec(article), os) is None


def test_applicable_hosts_get_their_own_package() -> None:
    spec = seed_spec("KB977381")
    assert applicability(spec, WS2008_SP2_X64) == (True, "KB977381 applies to Windows Server 2008")
    packages = {os.architecture: package_for(spec, os) for os in (WS2003R2_X86, WS2003R2_X64, WS2003R2_IA64)}
    assert {a: p.file for a, p in packages.items() if p} == {
        "x86": "WindowsServer2003-KB977381-x86-ENU.exe", "x64": "WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe",
        "ia64": "WindowsServer2003-KB977381-ia64-ENU.exe"}


# ----------------------------------------------------------------------------------------------- unknown


def test_unknown_when_a_file_fact_is_missing() -> None:
    verdict = judge("KB828753", XP_SP1, forget_file(MRXSMB))
    assert verdict.status == "unknown"
    assert verdict.missing == ["file:C:\\WINDOWS\\system32\\drivers\\Mrxsmb.sys"]
    assert verdict.reason == "could not read: file:C:\\WINDOWS\\system32\\drivers\\Mrxsmb.sys"
    assert actions(verdict) == ["install_package", "reboot"]


def test_unknown_when_a_version_cannot_be_parsed_or_was_not_reported() -> None:
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, "5.1"))
    assert verdict.status == "unknown"
    assert "'5.1' is not a four-part version" in check(verdict, f"file:{MRXSMB}").message
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, None, size=414976))
    assert verdict.status == "unknown"


def test_unknown_registry_value_plans_a_write_that_merges_at_the_host() -> None:
    verdict = judge("KB828753", XP_SP1, forget_value(WORKSTATION, "ReconnectableServers"))
    assert verdict.status == "unknown"
    assert verdict.missing == [f"registry:{WORKSTATION}\\ReconnectableServers"]
    step = verdict.plan[0]
    assert (step.details.before, step.details.before_read, step.details.mode) == (None, False, "merge")


def test_a_definite_failure_outranks_missing_facts() -> None:
    verdict = judge("KB828753", XP_SP1, forget_file(MRXSMB), set_file("%SystemRoot%\\system32\\Cscdll.dll", None))
    assert verdict.status == "noncompliant"
    assert verdict.missing == ["file:C:\\WINDOWS\\system32\\drivers\\Mrxsmb.sys"]


# ------------------------------------------------------------------------------------------------ reboots


def test_installed_but_files_not_yet_replaced_is_reboot_pending() -> None:
    verdict = judge("KB977381", WS2008_SP1_X86, set_file(DFSRS, "6.0.6001.18000"), recorded, reboot_pending)
    assert verdict.status == "reboot_pending"
    assert actions(verdict) == ["reboot"]
    assert verdict.restart_required
    assert "takes effect at the pending restart" in check(verdict, f"file:{DFSRS}").message
    assert check(verdict, "reboot").passed is False


def test_good_files_with_a_pending_restart_are_reboot_pending_when_the_fix_needs_one() -> None:
    verdict = judge("KB938475", VISTA_X64, reboot_pending)
    assert verdict.status == "reboot_pending"
    assert actions(verdict) == ["reboot"]


def test_old_files_without_a_record_and_a_pending_restart_need_the_package() -> None:
    verdict = judge("KB977381", WS2008_SP1_X86, set_file(DFSRS, "6.0.6001.18000"), reboot_pending)
    assert verdict.status == "noncompliant"
    assert actions(verdict) == ["install_package", "reboot"]


def test_installed_pending_restart_with_a_wrong_value_is_noncompliant() -> None:
    verdict = judge("KB938475", VISTA_X86, set_file(
        "%SystemRoot%\\winsxs\\Manifests\\X86_microsoft-windows-smbminirdr_31bf3856ad364e35_6.0.6000.20620_none_"
        "7e1f299c6d24b8b7.manifest", None), recorded, reboot_pending,
        set_value(SERVER, "AsynchronousCredits", None))
    assert verdict.status == "noncompliant"
    assert actions(verdict) == ["set_registry", "reboot"]


def test_no_restart_pending_is_a_passing_check() -> None:
    result = check(judge("KB828753", XP_SP1), "reboot")
    assert (result.passed, result.found) == (True, "none")


# ---------------------------------------------------------------------------------------- hotfix records


def test_hotfix_record_is_a_hint_only() -> None:
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, "5.1.2600.1106"), recorded)
    assert verdict.status == "noncompliant"
    result = check(verdict, "hotfix:KB828753")
    assert result.passed is None and result.found == "KB828753 (qfe)"
    verdict = judge("KB828753", XP_SP1, set_key("HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753", True))
    assert check(verdict, "hotfix:KB828753").found == (
        "record HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753")


def _hotfix_only_spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((TOP / "roles" / "kb938475" / "files" / "kb938475.yml").read_text())
    data["files"] = [row for row in data["files"] if row["check"] == "info"]
    return data


def test_hotfix_record_decides_when_no_file_row_can() -> None:
    spec = load_spec_data(_hotfix_only_spec(), "hotfix-only.yml")
    values = {"asynchronous_credits": 64}
    base = host(VISTA_X86, registry={(SERVER, "AsynchronousCredits"): RegistryValue("dword", 64)})
    assert evaluate(spec, base, values).status == "noncompliant"
    installed = host(VISTA_X86, registry={(SERVER, "AsynchronousCredits"): RegistryValue("dword", 64)},
                     hotfixes=("KB938475",))
    verdict = evaluate(spec, installed, values)
    assert verdict.status == "compliant"
    assert check(verdict, "hotfix:KB938475").passed is True


# ------------------------------------------------------------------------------------------- variables


def test_evaluate_checks_variables_first() -> None:
    with pytest.raises(ArgumentError) as caught:
        evaluate(seed_spec("KB938475"), host(VISTA_X86), {"asynchronous_credits": 70000})
    assert caught.value.field == "asynchronous_credits"
    with pytest.raises(ArgumentError):
        fact_request(seed_spec("KB938475"), VISTA_X86, {})


def test_verdict_serialises() -> None:
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, "5.1.2600.1106"))
    data = verdict.to_dict()
    assert data["status"] == "noncompliant"
    assert data["plan"][0]["details"]["success_codes"] == {0: "success", 3010: "restart_required"}
    assert data["plan"][0]["details"]["arguments"] == ["/quiet", "/norestart"]


def test_plan_details_are_documented() -> None:
    text = (TOP / "docs" / "engine.md").read_text()
    verdict = judge("KB828753", XP_SP1, set_file(MRXSMB, None), set_value(WORKSTATION, "ReconnectTimeout", None))
    assert actions(verdict) == ["install_package", "set_registry", "reboot"]
    undocumented = [f"{step.action}.{key}" for step in verdict.plan for key in step.details.to_dict()
                    if f"`{key}`" not in text]
    assert undocumented == []
