# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""installer and article_runner against simulated hosts (winsim, real WinRM over HTTP + NTLM): detection
in each era, package sources on the host and on a share, exit codes, removal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import NotFoundError, RemoteCommandError
from ansible_collections.kbfix.windows.plugins.plugin_utils.package.policy import PackagePolicy
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import upload
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim import packages
from winsim.signing import signing_ca
from winsim.testing import Endpoint, Fleet, HostSpec, running_fleet

ROLES = Path(__file__).resolve().parents[3] / "roles"
SHARE = "\\\\fs01\\updates"
# winsim's packages are signed by its test CA: trusted explicitly, as the inventories do.
TRUST_WINSIM = PackagePolicy(ca_files=(str(signing_ca().ca_file),))

pytestmark = pytest.mark.slow
LOST_INSTALL_FAULTS = ("reset_before", "reset_after", "timeout_fault", "reset_before_twice")
LOST_INSTALL_PLANS: dict[str, dict[str, Any]] = {
    "reset_before": {"reset_before": {"action": "Command", "count": 1}},
    "reset_after": {"reset_after": {"action": "Command", "count": 1}},
    "timeout_fault": {"timeout_fault": {"action": "Command", "count": 1}},
    # The repeat is lost too (the campaign saw it): detection settles each round.
    "reset_before_twice": {"reset_before": {"action": "Command", "count": 2}},
}


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("packages")
    for name in packages.package_names():
        packages.write_package(name, directory)
    return directory


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, package_dir: Path) -> Iterator[Fleet]:
    hosts = [
        HostSpec("xp-fixed", "xp-sp1-x86", {"installed": ["KB828753"]}),
        HostSpec("r2-fixed", "2008r2-rtm-x64", {"installed": ["KB977381"]}),
        HostSpec("w2008-pending", "2008-sp2-x64", {"pending": ["KB977381"]}),
        HostSpec("w2003", "2003r2-sp2-x86"),
        HostSpec("w2008-share", "2008-sp2-x86", {"shares": {SHARE: str(package_dir)}}),
        HostSpec("vista-sp1", "vista-sp1-x64"),
        HostSpec("xp-nobackup", "xp-sp1-x86"),
        # Removed by test_removal_in_each_era: no other test reads these.
        HostSpec("xp-remove", "xp-sp1-x86", {"installed": ["KB828753"]}),
        HostSpec("r2-remove", "2008r2-rtm-x64", {"installed": ["KB977381"]}),
        HostSpec("w2008-remove", "2008-sp2-x64", {"pending": ["KB977381"]}),
        # test_an_install_lost_with_the_connection_is_settled_by_detection: one host per fault.
        *(HostSpec(f"lost-{fault}", "2008-sp2-x86", {"shares": {SHARE: str(package_dir)}})
          for fault in LOST_INSTALL_FAULTS),
    ]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("runner-fleet")) as running:
        yield running


def connect(ep: Endpoint) -> tuple[WinRMTransport, OsFacts]:
    client = winrm.WinRMClient(winrm.WinRMSettings(host=ep.address, port=ep.port, scheme=ep.scheme,
                                                   username=ep.username, password=ep.password))
    transport = WinRMTransport(client)
    return transport, transport.os_facts()


def writes(ep: Endpoint) -> dict[str, int]:
    """Requests that change a host: registry writes and processes."""
    return {k: v for k, v in ep.counters()["by_action"].items()
            if k.startswith(("Invoke:Set", "Invoke:Create", "Invoke:Delete")) or k in ("Command", "Create")}


def test_update_exe_records_and_file_evidence_on_xp(fleet: Fleet) -> None:
    client, os_facts = connect(fleet.hosts["xp-fixed"])
    found = installer.detect(client, os_facts, "KB828753", load_spec(ROLES / "kb828753/files/kb828753.yml"))
    assert found.qfe and found.installed and found.present
    # The SPn in the record is the service pack that will contain the fix (SP2), not the installed SP1.
    assert found.records == ["HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753"]
    assert found.sources == ["qfe", "registry", "files"]
    assert found.files_current is True and len(found.file_checks) == 3
    assert found.cbs_packages == {}
    absent = installer.detect(client, os_facts, "KB999999")
    assert not absent.installed and absent.sources == [] and absent.files_current is None


def test_cbs_packages_installed_and_pending(fleet: Fleet) -> None:
    client, os_facts = connect(fleet.hosts["r2-fixed"])
    found = installer.detect(client, os_facts, "KB977381")
    assert found.sources == ["qfe", "cbs"]
    assert found.cbs_packages == {"Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0": "installed"}
    assert not found.reboot_pending
    client, os_facts = connect(fleet.hosts["w2008-pending"])
    pending = installer.detect(client, os_facts, "KB977381")
    # Win32_QuickFixEngineering lists the package only after the restart; the CBS key says it is waiting.
    assert not pending.qfe and pending.installed and pending.install_pending
    assert set(pending.cbs_packages.values()) == {"install_pending"}
    assert pending.reboot_pending and "CBS RebootPending" in pending.reboot_pending_sources


def test_runner_calls_an_installed_msu_awaiting_restart_reboot_pending(fleet: Fleet) -> None:
    client, os_facts = connect(fleet.hosts["w2008-pending"])
    articles = article_runner.prepare([article_runner.ArticleRequest(
        ROLES / "kb977381/files/kb977381.yml", {}, "articles[0]")], {})
    result = article_runner.run(client, articles, os_facts, article_runner.Options())
    assert [v.status for v in result.verdicts] == ["reboot_pending"]
    assert result.restart_required
    hotfix = next(c for c in result.verdicts[0].checks if c.kind == "hotfix")
    assert "cbs" in hotfix.found


def test_package_on_the_host_then_already_installed(fleet: Fleet, package_dir: Path) -> None:
    ep = fleet.hosts["w2003"]
    client, os_facts = connect(ep)
    name = "WindowsServer2003-KB977381-x86-ENU.exe"
    client.run_command('mkdir "C:\\updates"', timeout=120, success_codes=None)
    upload.upload(client.client, (package_dir / name).read_bytes(), f"C:\\updates\\{name}")
    request = installer.InstallRequest("KB977381", installer.PackageLocation("host", f"C:\\updates\\{name}"),
                                       "update", installer.DEFAULT_ARGUMENTS["update"], installer.exit_codes())
    done = installer.install(client, request, os_facts)
    assert (done.exit_code, done.meaning, done.source) == (3010, "restart_required", "host")
    assert done.command == f"C:\\updates\\{name} /quiet /norestart"
    again = installer.install(client, request, os_facts)
    assert (again.exit_code, again.meaning, again.changed) == (2359302, "already_installed", False)
    # A host path is run where it is: nothing was staged in %SystemRoot%\Temp, and the package stays.
    files = client.file_facts([f"C:\\updates\\{name}", f"{os_facts.system_root}\\Temp\\{name}"])
    assert [f.exists for f in files.values()] == [True, False]


def test_package_on_a_share(fleet: Fleet) -> None:
    ep = fleet.hosts["w2008-share"]
    client, os_facts = connect(ep)
    ep.reset_counters()
    location = installer.PackageLocation("unc", SHARE).joined("Windows6.0-KB977381-x86.msu")
    request = installer.InstallRequest("KB977381", location, "msu", installer.DEFAULT_ARGUMENTS["msu"],
                                       installer.exit_codes())
    done = installer.install(client, request, os_facts)
    assert (done.meaning, done.source) == ("restart_required", "unc")
    assert done.command == f"wusa.exe {SHARE}\\Windows6.0-KB977381-x86.msu /quiet /norestart"
    assert ep.counters()["by_action"]["Command"] == 1  # run from the share: no upload commands
    assert installer.detect(client, os_facts, "KB977381").install_pending


@pytest.mark.parametrize("fault", LOST_INSTALL_FAULTS)
def test_an_install_lost_with_the_connection_is_settled_by_detection(fleet: Fleet, fault: str) -> None:
    """The installer's Command breaks after sending (reset, or the service's operation timeout): the module
    looks at the host before running the installer again, so the package is installed exactly once."""
    ep = fleet.hosts[f"lost-{fault}"]
    client, os_facts = connect(ep)
    location = installer.PackageLocation("unc", SHARE).joined("Windows6.0-KB977381-x86.msu")
    request = installer.InstallRequest("KB977381", location, "msu", installer.DEFAULT_ARGUMENTS["msu"],
                                       installer.exit_codes())
    ep.reset_counters()
    ep.set_faults(**LOST_INSTALL_PLANS[fault])
    done = installer.install(client, request, os_facts)
    assert (done.meaning, done.changed, done.restart_required) == ("restart_required", True, True)
    runs = ep.host().installer_runs
    assert [r["installed"] for r in runs] == [True], runs  # once, whichever way the Command was lost
    # reset_after: the host ran it and the reply was lost, detection shows the pending package, no second
    # Command; reset_before / timeout: the host never started it, detection shows nothing, it runs again.
    assert ep.counters()["by_action"]["Command"] == {"reset_after": 1, "reset_before_twice": 3}.get(fault, 2)
    assert installer.detect(client, os_facts, "KB977381").install_pending


def test_not_applicable_is_a_failure_that_says_so(fleet: Fleet, package_dir: Path) -> None:
    ep = fleet.hosts["vista-sp1"]
    client, os_facts = connect(ep)
    request = installer.InstallRequest(
        "KB938475", installer.PackageLocation("controller", str(package_dir / "Windows6.0-KB938475-x64.msu")),
        "msu", installer.DEFAULT_ARGUMENTS["msu"], installer.exit_codes(), policy=TRUST_WINSIM)
    with pytest.raises(RemoteCommandError) as caught:
        installer.install(client, request, os_facts)
    assert caught.value.exit_code == -2145124329
    assert "KB938475 does not apply to this host" in str(caught.value) and "0x80240017" in str(caught.value)
    # The uploaded package is removed again, whatever the installer said.
    staged = f"{os_facts.system_root}\\Temp\\Windows6.0-KB938475-x64.msu"
    assert not client.file_facts([staged])[staged.casefold()].exists
    assert not installer.detect(client, os_facts, "KB938475").installed


def test_removal_in_each_era(fleet: Fleet) -> None:
    # XP: the spuninst.exe that update.exe left, named by the record's UninstallCommand.
    client, os_facts = connect(fleet.hosts["xp-remove"])
    found = installer.detect(client, os_facts, "KB828753")
    removed = installer.uninstall(client, os_facts, found, timeout=60)
    assert removed.commands == ("C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe /quiet /norestart",)
    assert removed.meaning in ("success", "restart_required")
    after = installer.detect(client, os_facts, "KB828753")
    assert not after.installed and after.records == [] and not after.qfe
    # 6.1: wusa /uninstall /kb:N; 6.0: pkgmgr /up:<package> for each CBS package.
    for name, commands in (("r2-remove", ["wusa.exe /uninstall /kb:977381 /quiet /norestart"]),
                           ("w2008-remove", [f"pkgmgr.exe /up:Package_for_KB977381_server{suffix}~31bf3856ad364e35"
                                             "~amd64~~6.0.1.0 /quiet /norestart" for suffix in ("_1", "")])):
        client, os_facts = connect(fleet.hosts[name])
        removed = installer.uninstall(client, os_facts, installer.detect(client, os_facts, "KB977381"), timeout=60)
        assert list(removed.commands) == commands
        assert removed.restart_required, removed
        after = installer.detect(client, os_facts, "KB977381")
        assert not after.installed and set(after.cbs_packages.values()) <= {"uninstall_pending", "absent"}, after


def test_removal_without_uninstall_data_says_what_is_missing(fleet: Fleet, package_dir: Path) -> None:
    ep = fleet.hosts["xp-nobackup"]
    client, os_facts = connect(ep)
    # /n: no backup, so update.exe leaves no $NtUninstallKB828753$ folder and no spuninst.exe.
    request = installer.InstallRequest(
        "KB828753", installer.PackageLocation("controller", str(package_dir / "WindowsXP-KB828753-x86-ENU.exe")),
        "update", ("/quiet", "/norestart", "/n"), installer.exit_codes(), policy=TRUST_WINSIM)
    assert installer.install(client, request, os_facts).changed
    found = installer.detect(client, os_facts, "KB828753")
    assert found.installed
    ep.reset_counters()
    with pytest.raises(NotFoundError) as caught:
        installer.uninstall(client, os_facts, found, timeout=30)
    assert "C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe does not exist" in str(caught.value)
    assert writes(ep) == {}
    assert installer.detect(client, os_facts, "KB828753").installed


def test_detection_asks_few_requests(fleet: Fleet) -> None:
    ep = fleet.hosts["r2-fixed"]
    client, os_facts = connect(ep)
    ep.reset_counters()
    started = time.monotonic()
    installer.detect(client, os_facts, "KB977381")
    # gather (files none, QFE, pending restart) plus the CBS package list and one CurrentState per package.
    assert ep.counters()["requests"] == client.request_count - 2 <= 7  # 2: the OS query in connect()
    assert time.monotonic() - started < 5
