# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12 on simulated hosts: KB938475 judged from its components' binaries, a pending restart told
apart by the boot time WinRM reports and the rename queue it reads, and wusa's "already installed" weighed
against the files. Each host is a winsim Vista RTM x64 with one override; the audit is kb_article's library
path (``article_runner.run``) with the OS facts read fresh, so the boot time comes with them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from harness import client_for

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import CheckResult, Verdict
from ansible_collections.kbfix.windows.plugins.plugin_utils.package.policy import PackagePolicy
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import indicators
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim import packages
from winsim.signing import signing_ca
from winsim.testing import Fleet, HostSpec, running_fleet

SPEC = Path(__file__).resolve().parents[2] / "roles" / "kb938475" / "files" / "kb938475.yml"
DRIVERS = "%SystemRoot%\\system32\\drivers"
SERVER = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"
CREDITS = {SERVER: {"AsynchronousCredits": ["dword", 512]}}
# A later SMB hotfix on the KB938475 LDR line: its binaries, without KB938475's manifests.
LATER = {f"{DRIVERS}\\{name}": {"version": "6.0.6000.20734 (vista_ldr.080229-1541)", "size": size,
                                "modified": "2008-02-29T15:41:00+00:00"}
         for name, size in (("srv2.sys", 129536), ("mrxsmb.sys", 141312), ("mrxsmb10.sys", 257024),
                            ("mrxsmb20.sys", 90112))}


def renames(*entries: str) -> dict[str, Any]:
    return {indicators.SESSION_MANAGER: {indicators.PFRO_VALUE: ["multistring", list(entries)]}}


OTHER_PROGRAM = ("\\??\\C:\\Program Files\\Backup\\agent.new", "!\\??\\C:\\Program Files\\Backup\\agent.exe")
HOSTS = [
    HostSpec("rtm", "vista-rtm-x64", {"registry": CREDITS}),
    HostSpec("later", "vista-rtm-x64", {"registry": CREDITS, "files": LATER}),
    HostSpec("unrelated", "vista-rtm-x64", {"registry": {**CREDITS, **renames(*OTHER_PROGRAM)}, "files": LATER}),
    HostSpec("own", "vista-rtm-x64", {"registry": {**CREDITS, **renames(
        "\\??\\C:\\Windows\\winsxs\\Temp\\PendingRenames\\srv2.sys",
        "!\\??\\C:\\Windows\\system32\\drivers\\srv2.sys")}, "files": LATER}),
    # KB938475 installed by winsim's own servicing model (the package's components, restart done).
    HostSpec("installed", "vista-rtm-x86", {"registry": CREDITS, "installed": ["KB938475"]}),
    # Recorded as installed (its CBS package), while the binaries are still the RTM ones.
    HostSpec("recorded", "vista-rtm-x64", {"registry": CREDITS, "hotfixes": {"KB938475": {
        "package": "Package_1_for_KB938475~31bf3856ad364e35~amd64~~6.0.1.0"}}}),
]


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("packages")
    packages.write_package("Windows6.0-KB938475-x64.msu", directory)
    return directory


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(HOSTS, state_dir=tmp_path_factory.mktemp("verdicts")) as started:
        yield started


def run(fleet: Fleet, host: str, options: article_runner.Options | None = None) -> article_runner.RunResult:
    articles = article_runner.prepare([article_runner.ArticleRequest(SPEC, {}, "articles[0]")],
                                      {"asynchronous_credits": 512})
    with closing(client_for(fleet.hosts[host])) as client:
        return article_runner.run(WinRMTransport(client), articles, None, options or article_runner.Options())


def check(verdict: Verdict, check_id: str) -> CheckResult:
    (found,) = [c for c in verdict.checks if c.id == check_id]
    return found


def test_binaries_decide_not_the_manifests(fleet: Fleet) -> None:
    [rtm] = run(fleet, "rtm").verdicts
    assert rtm.status == "noncompliant"
    assert sorted(c.id for c in rtm.checks if c.passed is False) == sorted(
        f"file:{DRIVERS}\\{n}" for n in ("srv2.sys", "mrxsmb.sys"))
    [later] = run(fleet, "later").verdicts
    assert later.status == "compliant", later.reason
    manifest = next(c for c in later.checks if "smbserver-v2" in c.id)
    assert (manifest.passed, manifest.found) == (None, "absent")


def test_a_host_that_installed_the_hotfix_keeps_rtm_mini_redirectors_and_is_compliant(fleet: Fleet) -> None:
    # The hotfix carries smbminirdr (mrxsmb.sys) and smbserver-v2 (srv2.sys), not the smb10-minirdr and
    # smb20-minirdr components: mrxsmb10.sys and mrxsmb20.sys stay at RTM, and must not decide the verdict.
    host = fleet.hosts["installed"].host()
    assert host.file_version(f"{DRIVERS}\\srv2.sys") == "6.0.6000.20620 (vista_ldr.070615-1730)"
    for driver in ("mrxsmb10.sys", "mrxsmb20.sys"):
        assert host.file_version(f"{DRIVERS}\\{driver}").startswith("6.0.6000.16386")
    [verdict] = run(fleet, "installed").verdicts
    assert verdict.status == "compliant", verdict.reason
    assert not [c.id for c in verdict.checks if "mrxsmb10" in c.id or "mrxsmb20" in c.id]


def test_an_unrelated_pending_restart_is_information(fleet: Fleet) -> None:
    with closing(client_for(fleet.hosts["unrelated"])) as client:
        assert wmi.os_facts(client).last_boot is not None  # read with the OS facts
    [verdict] = run(fleet, "unrelated").verdicts
    assert verdict.status == "compliant", verdict.reason
    reboot = check(verdict, "reboot")
    assert reboot.passed is None and reboot.found == "PendingFileRenameOperations"
    assert "a restart is pending for something else" in reboot.message and "before the last boot" in reboot.message


def test_a_rename_of_the_articles_file_is_reboot_pending(fleet: Fleet) -> None:
    result = run(fleet, "own")
    [verdict] = result.verdicts
    assert verdict.status == "reboot_pending"
    assert "replaces C:\\Windows\\system32\\drivers\\srv2.sys" in check(verdict, "reboot").message
    assert result.restart_required


def test_already_installed_against_old_files_is_unknown(fleet: Fleet, package_dir: Path) -> None:
    # winsim's packages are signed by its test CA, which this run trusts explicitly.
    options = article_runner.Options(state="enforced", package_source=installer.PackageLocation(
        "controller", str(package_dir)), package_policy=PackagePolicy(ca_files=(str(signing_ca().ca_file),)))
    result = run(fleet, "recorded", options)
    [before] = result.verdicts_before or []
    assert before.status == "noncompliant"
    [change] = [c for c in result.changes if c["action"] == "install_package"]
    assert (change["result"], change["exit_code"], change["changed"]) == ("already_installed", 2359302, False)
    assert "0x00240006, already installed" in change["reason"]
    [after] = result.verdicts
    assert after.status == "unknown"
    assert "answered 2359302 (0x00240006, already installed) but the files say the fix is missing" in after.reason
    assert check(after, "installer:KB938475").passed is False
    assert any("already installed" in note for note in result.notes)
