# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12, verdicts as a scanner gives them (docs/engine.md): KB938475 judged from its components'
binaries, a pending restart that concerns the fix told from an unrelated one, XP / 2003 GDR files numbered
above the QFE fix, and installer answers that contradict the files. Each table starts from a host on which
the article is fully in place and changes what the case is about."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from engine_helpers import TOP, VARIABLES, VISTA_X64, VISTA_X86, XP_SP1, fixed_host, seed_spec
from test_engine_rules import Change, actions, check, failing, judge, recorded, set_file

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import (
    evaluate,
    expand_path,
    fact_request,
    with_install_answer,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FileFacts, HostFacts, OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.snapshot import (
    host_snapshot_from_data,
)

UTC = datetime.UTC
DRIVERS = "%SystemRoot%\\system32\\drivers"
SMB_BINARIES = ("srv2.sys", "mrxsmb.sys")
# Components KB938475 does not carry (smb10-minirdr, smb20-minirdr): their builds never decide.
MINIRDR_BINARIES = ("mrxsmb10.sys", "mrxsmb20.sys")
MANIFESTS = {
    "x86": ("X86_microsoft-windows-smbserver-v2_31bf3856ad364e35_6.0.6000.20620_none_d87a55d61282fd5a.manifest",
            "X86_microsoft-windows-smbminirdr_31bf3856ad364e35_6.0.6000.20620_none_7e1f299c6d24b8b7.manifest"),
    "x64": ("Amd64_microsoft-windows-smbserver-v2_31bf3856ad364e35_6.0.6000.20620_none_3498f159cae06e90.manifest",
            "Amd64_microsoft-windows-smbminirdr_31bf3856ad364e35_6.0.6000.20620_none_da3dc520258229ed.manifest"),
}
MRXSMB_XP = "%SystemRoot%\\system32\\drivers\\Mrxsmb.sys"
CSCDLL_XP = "%SystemRoot%\\system32\\Cscdll.dll"


def binaries(version: str | None, *names: str) -> Change:
    def change(facts: HostFacts) -> None:
        for name in names or SMB_BINARIES:
            set_file(f"{DRIVERS}\\{name}", version)(facts)
    return change


def manifests(present: bool) -> Change:
    def change(facts: HostFacts) -> None:
        for name in MANIFESTS[facts.os.architecture]:
            path = expand_path(f"%SystemRoot%\\winsxs\\Manifests\\{name}", facts.os)
            facts.files[path.casefold()] = FileFacts(path, exists=present, size=4718 if present else None)
    return change


# ------------------------------------------------------------------------- case 1: KB938475's binaries


@pytest.mark.parametrize("os", [VISTA_X86, VISTA_X64], ids=["x86", "x64"])
@pytest.mark.parametrize(("changes", "status", "failing_files"), [
    # A later SMB hotfix on the same LDR line: the fix is in, this update's manifests are not.
    ((binaries("6.0.6000.20734 (vista_ldr.080229-1541)"), manifests(False)), "compliant", []),
    ((binaries("6.0.6000.20620 (vista_ldr.070615-1530)"), manifests(False)), "compliant", []),
    # A GDR-only host never carries the hotfix-only fix, with or without stray manifests.
    ((binaries("6.0.6000.16386 (vista_rtm.061101-2205)"), manifests(False)), "noncompliant", list(SMB_BINARIES)),
    ((binaries("6.0.6000.16567 (vista_gdr.071009-1548)"), manifests(True)), "noncompliant", list(SMB_BINARIES)),
    # One component left behind is enough to fail.
    ((binaries("6.0.6000.16386 (vista_rtm.061101-2205)", "mrxsmb.sys"),), "noncompliant", ["mrxsmb.sys"]),
    ((binaries("6.0.6000.20600 (vista_ldr.070501-1000)", "srv2.sys"),), "noncompliant", ["srv2.sys"]),
    ((binaries(None, "mrxsmb.sys"),), "noncompliant", ["mrxsmb.sys"]),
    # The fixed host as KB938475 leaves it: mrxsmb10.sys / mrxsmb20.sys still at RTM (or absent).
    ((binaries("6.0.6000.20620 (vista_ldr.070615-1530)"),
      binaries("6.0.6000.16386 (vista_rtm.061101-2205)", *MINIRDR_BINARIES)), "compliant", []),
    ((binaries("6.0.6000.20620 (vista_ldr.070615-1530)"), binaries(None, *MINIRDR_BINARIES)), "compliant", []),
])
def test_kb938475_is_judged_from_its_components_binaries(os: OsFacts, changes: tuple[Change, ...], status: str,
                                                         failing_files: list[str]) -> None:
    verdict = judge("KB938475", os, *changes)
    assert verdict.status == status, verdict.reason
    assert failing(verdict) == [f"file:{DRIVERS}\\{name}" for name in failing_files]
    assert ("install_package" in actions(verdict)) == bool(failing_files)


@pytest.mark.parametrize("present", [True, False])
def test_kb938475_manifests_are_reported_never_deciding(present: bool) -> None:
    verdict = judge("KB938475", VISTA_X64, manifests(present))
    assert verdict.status == "compliant"
    for name in MANIFESTS["x64"]:
        result = check(verdict, f"file:%SystemRoot%\\winsxs\\Manifests\\{name}")
        assert result.passed is None and result.found == ("size 4718" if present else "absent")


def test_kb938475_is_still_fixed_by_service_pack_1() -> None:
    sp1 = dataclasses.replace(VISTA_X64, version="6.0.6001", service_pack=1)
    verdict = evaluate(seed_spec("KB938475"), HostFacts(os=sp1), VARIABLES["KB938475"])
    assert verdict.status == "not_applicable" and "fixed by service pack" in verdict.reason


# ------------------------------------------------------------------------ case 2: whose restart is it


BOOT = datetime.datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
SRV2 = "C:\\Windows\\system32\\drivers\\srv2.sys"


def restart(*renames: str, boot: datetime.datetime | None = BOOT, written: datetime.datetime | None = None,
            sources: tuple[str, ...] = ("PendingFileRenameOperations",), read: bool = True) -> Change:
    def change(facts: HostFacts) -> None:
        facts.reboot_pending = True
        facts.reboot_pending_sources = sources
        facts.pending_renames = tuple(renames) if read else None
        facts.os = dataclasses.replace(facts.os, last_boot=boot)
        if written is not None:
            for key, found in list(facts.files.items()):
                facts.files[key] = dataclasses.replace(found, modified=written)
    return change


BEFORE_BOOT = BOOT - datetime.timedelta(days=30)
AFTER_BOOT = BOOT + datetime.timedelta(hours=2)
OTHER_APP = ("\\??\\C:\\Program Files\\Backup\\agent.new", "!\\??\\C:\\Program Files\\Backup\\agent.exe")


@pytest.mark.parametrize(("change", "status", "why"), [
    # Restarted after the fix, something else waits: compliant, the restart reported as information.
    (restart(*OTHER_APP, written=BEFORE_BOOT), "compliant", "a restart is pending for something else"),
    (restart(written=BEFORE_BOOT, sources=("Component Based Servicing",)), "compliant", "for something else"),
    # The article's own change waits: a rename names its file ...
    (restart("\\??\\C:\\Windows\\winsxs\\Temp\\PendingRenames\\srv2.sys", f"!\\??\\{SRV2}", written=BEFORE_BOOT),
     "reboot_pending", f"replaces {SRV2}"),
    # ... or an installer's rename-aside copy sits next to it ...
    (restart("\\??\\C:\\Windows\\system32\\drivers\\SET3A.tmp", "", written=BEFORE_BOOT),
     "reboot_pending", "next to C:\\Windows\\system32\\drivers"),
    # ... or a fixed file was written after the last boot.
    (restart(*OTHER_APP, written=AFTER_BOOT), "reboot_pending", "after the last boot at 2024-03-01 06:00 UTC"),
    # What cannot be ruled out counts as the article's: no boot time, no write time, renames not read.
    (restart(*OTHER_APP, boot=None, written=BEFORE_BOOT), "reboot_pending", "last boot time is not known"),
    (restart(*OTHER_APP), "reboot_pending", "write time of"),
    (restart(written=BEFORE_BOOT, read=False), "reboot_pending", "renames could not be read"),
])
def test_reboot_pending_only_when_the_articles_change_waits(change: Change, status: str, why: str) -> None:
    verdict = judge("KB938475", VISTA_X64, change)
    assert verdict.status == status, verdict.reason
    reboot = check(verdict, "reboot")
    assert why in reboot.message
    assert reboot.passed is (None if status == "compliant" else False)
    assert actions(verdict) == ([] if status == "compliant" else ["reboot"])


def test_an_unrelated_restart_does_not_hide_old_files() -> None:
    verdict = judge("KB938475", VISTA_X64, binaries("6.0.6000.16386 (vista_rtm.061101-2205)"),
                    restart(*OTHER_APP, written=BEFORE_BOOT))
    assert verdict.status == "noncompliant"
    assert actions(verdict) == ["install_package", "reboot"]


def test_snapshot_carries_boot_time_and_pending_renames() -> None:
    snapshot = host_snapshot_from_data({
        "os": {"version": "6.0.6000", "service_pack": 0, "architecture": "x64", "product_type": 1,
               "system_root": "C:\\Windows", "last_boot": "2024-03-01T06:00:00Z"},
        "files": {SRV2: {"version": "6.0.6000.20734", "modified": "2024-01-01T00:00:00Z"}},
        "reboot_pending": ["PendingFileRenameOperations"], "pending_renames": list(OTHER_APP),
    }, "snapshot.yml")
    facts = snapshot.answer(fact_request(seed_spec("KB938475"), snapshot.state.os, VARIABLES["KB938475"]))
    assert facts.os.last_boot == BOOT and facts.pending_renames == OTHER_APP
    unread = host_snapshot_from_data({"os": {"version": "6.0.6000", "service_pack": 0, "architecture": "x64",
                                             "product_type": 1}}, "s.yml")
    assert unread.state.pending_renames is None and unread.state.os.last_boot is None


# ----------------------------------------------------------------- case 3: XP GDR files above the QFE fix


GDR_ABOVE = "5.1.2600.1300 (xpsp1_gdr.040101-0000)"  # a later security update's GDR build; the fix is 1276


@pytest.mark.parametrize(("changes", "status", "plan"), [
    # Not yet installed: update.exe moves the file to the QFE branch with the twin from $hf_mig$.
    ((set_file(MRXSMB_XP, GDR_ABOVE),), "noncompliant", ["install_package", "reboot"]),
    # Installed, yet still GDR above the fix: running update.exe again changes nothing.
    ((set_file(MRXSMB_XP, GDR_ABOVE), recorded), "noncompliant", ["manual", "reboot"]),
    # Another file that the package does replace: the install is still the step (it migrates both).
    ((set_file(MRXSMB_XP, GDR_ABOVE), set_file(CSCDLL_XP, "5.1.2600.1106 (xpsp1.020828-1920)"), recorded),
     "noncompliant", ["install_package", "reboot"]),
    # On the QFE branch the same number carries the fix.
    ((set_file(MRXSMB_XP, "5.1.2600.1300 (xpsp1_qfe.040101-0000)"),), "compliant", []),
])
def test_xp_gdr_file_above_the_qfe_fix(changes: tuple[Change, ...], status: str, plan: list[str]) -> None:
    verdict = judge("KB828753", XP_SP1, *changes)
    assert verdict.status == status, verdict.reason
    assert actions(verdict) == plan
    if status == "compliant":
        return
    result = check(verdict, f"file:{MRXSMB_XP}")
    assert "is on the GDR branch" in result.message and "xpsp1_gdr.040101-0000" in result.message
    assert "above the QFE fix 5.1.2600.1276" in result.message
    step = verdict.plan[0]
    documented = (TOP / "docs" / "engine.md").read_text()
    assert [k for k in step.details.to_dict() if f"`{k}`" not in documented] == []
    if step.action == "manual":
        assert step.details.switch == "/B:SP1QFE" and step.details.files == (MRXSMB_XP,)
        assert "reinstall the security update that installed 5.1.2600.1300" in step.description
    else:
        assert step.details.qfe_migration == (MRXSMB_XP,) and "$hf_mig$" in step.description


# -------------------------------------------------------------------- case 4: installer answers


NOT_APPLICABLE, ALREADY = -2145124329, 2359302


@pytest.mark.parametrize(("code", "meaning", "text"), [
    (NOT_APPLICABLE, "not_applicable", "0x80240017, not applicable"),
    (ALREADY, "already_installed", "0x00240006, already installed"),
])
def test_installer_answer_against_the_files_is_unknown(code: int, meaning: str, text: str) -> None:
    before = judge("KB938475", VISTA_X64, binaries("6.0.6000.16386 (vista_rtm.061101-2205)", "srv2.sys"))
    assert before.status == "noncompliant"
    after = with_install_answer(before, "KB938475", code, meaning)
    assert after.status == "unknown"
    assert text in after.reason and f"file:{DRIVERS}\\srv2.sys" in after.reason
    answer = check(after, "installer:KB938475")
    assert answer.passed is False and text in answer.found
    assert after.plan == before.plan  # never enforced (unknown), but still what would fix the host


@pytest.mark.parametrize(("status_change", "meaning"), [
    ((), "not_applicable"),  # files agree: nothing to contradict
    ((binaries("6.0.6000.16386 (vista_rtm.061101-2205)"),), "success"),
    ((binaries("6.0.6000.16386 (vista_rtm.061101-2205)"),), "restart_required"),
])
def test_installer_answer_that_agrees_changes_nothing(status_change: tuple[Change, ...], meaning: str) -> None:
    before = judge("KB938475", VISTA_X64, *status_change)
    assert with_install_answer(before, "KB938475", 0, meaning) == before


def test_installer_answer_with_only_a_registry_difference_changes_nothing() -> None:
    facts = fixed_host(seed_spec("KB938475"), VISTA_X64)
    before = evaluate(seed_spec("KB938475"), facts, {"asynchronous_credits": 100})
    assert before.status == "noncompliant" and actions(before) == ["set_registry", "reboot"]
    assert with_install_answer(before, "KB938475", ALREADY, "already_installed") == before
