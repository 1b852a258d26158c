# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staging real-size packages on simulated hosts: one upload per package and task, what an upload costs in
requests (winsim's counters), and a host that restarts in the middle of an upload during kb_article."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from harness import client_for

from ansible_collections.kbfix.windows.plugins.plugin_utils.package.policy import PackagePolicy
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.staging import stage, staging_path
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.base import PackageSource
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.settings import SMBSettings
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim import packages
from winsim.signing import signing_ca
from winsim.testing import Fleet, HostSpec, running_fleet

# winsim's packages are signed by its test CA: trusted explicitly, as the inventories do.
TRUST_WINSIM = PackagePolicy(ca_files=(str(signing_ca().ca_file),))

SPEC = Path(__file__).resolve().parents[2] / "roles" / "kb938475" / "files" / "kb938475.yml"
PACKAGE = "Windows6.0-KB938475-x64.msu"
CREDITS = {"HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters":
           {"AsynchronousCredits": ["dword", 512]}}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("real-size-packages")
    packages.write_package(PACKAGE, directory, packages.real_size(PACKAGE))
    big = "Windows6.0-KB977381-x64.msu"
    packages.write_package(big, directory, packages.real_size(big))
    return directory


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hosts = [HostSpec("shared", "vista-rtm-x64", {"registry": CREDITS}),
             HostSpec("count", "2008-sp2-x64"),
             HostSpec("restarts", "vista-rtm-x64", {"registry": CREDITS, "reboot_seconds": 3}),
             HostSpec("sharing", "2008-sp2-x64", {"file_sharing": True})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("staging")) as started:
        yield started


def test_one_upload_per_package_and_task(fleet: Fleet, package_dir: Path) -> None:
    """Two installs of one task from the same package file: staged once, removed once the task is done."""
    ep = fleet.hosts["shared"]
    location = installer.PackageLocation("controller", str(package_dir / PACKAGE))
    request = installer.InstallRequest("KB938475", location, "msu", ("/quiet", "/norestart"), installer.exit_codes(),
                                       policy=TRUST_WINSIM)
    with closing(client_for(ep)) as client:
        transport = WinRMTransport(client)
        os_facts = transport.os_facts()
        staging = installer.Staging(transport, os_facts, keep=True)
        ep.reset_counters()
        first = installer.install(transport, request, os_facts, staging=staging)
        sends = ep.counters()["by_action"]["Send"]
        second = installer.install(transport, request, os_facts, staging=staging, not_applicable_raises=False)
        assert ep.counters()["by_action"]["Send"] == sends  # nothing uploaded the second time
        staged = staging_path(os_facts, PACKAGE)
        assert ep.host().fs.exists(staged)  # kept for the task's later articles
        staging.release_all()
    assert not ep.host().fs.exists(staged)
    assert (first.staged_by, first.meaning) == ("stdin", "restart_required")
    assert second.meaning == "already_installed"


def test_requests_per_megabyte_uploaded(fleet: Fleet, package_dir: Path) -> None:
    """The budget of the stdin path, counted by the host: at most 20 WS-Man requests per MB (the echo path
    took about 450)."""
    ep = fleet.hosts["count"]
    name = "Windows6.0-KB977381-x64.msu"
    data = (package_dir / name).read_bytes()
    assert len(data) == packages.real_size(name) == 3 * MB
    with closing(client_for(ep)) as client:
        transport = WinRMTransport(client)
        ep.reset_counters()
        staged = transport.stage_package(PackageSource(data=data), f"C:\\Windows\\Temp\\{name}")
        counted = ep.counters()
        assert staged.method == "stdin" and staged.size == len(data)
        assert wmi.file_facts(client, [staged.path])[staged.path.casefold()].size == len(data)
    requests = sum(counted["by_action"].values())
    assert requests / (len(data) / MB) <= 20, counted["by_action"]
    assert counted["auth_requests"] <= 2  # one connection, authenticated once


def test_a_restart_during_the_upload_is_waited_for_and_the_run_started_again(fleet: Fleet,
                                                                            package_dir: Path) -> None:
    """kb_article's restart-resume rule covers staging: the host restarts after the third Send and stays down
    longer than the client's retries; the run waits for the host, reads it afresh and uploads again on a new
    shell (the old one went with the restart)."""
    ep = fleet.hosts["restarts"]
    boot = ep.host().boot_id
    articles = article_runner.prepare([article_runner.ArticleRequest(SPEC, {}, "articles[0]")],
                                      {"asynchronous_credits": 512})
    options = article_runner.Options(state="enforced", resume_timeout=60, package_policy=TRUST_WINSIM,
                                     package_source=installer.PackageLocation("controller", str(package_dir)))
    ep.set_faults(reboot_after={"action": "Send", "skip": 2, "count": 1})
    try:
        settings = winrm.WinRMSettings(host=ep.address, port=ep.port, username=ep.username, password=ep.password,
                                       retries=1, backoff=0.1)
        with closing(winrm.WinRMClient(settings)) as client:
            result = article_runner.run(WinRMTransport(client), articles, None, options)
    finally:
        ep.set_faults()
    assert ep.host().boot_id == boot + 1
    assert any("resumed from a fresh read" in note for note in result.notes)
    [change] = [c for c in result.changes if c["action"] == "install_package"]
    assert (change["staged_by"], change["changed"]) == ("stdin", True)
    assert ep.counters()["injected"].get("reboot") == 1
    assert not ep.host().fs.exists(f"C:\\Windows\\Temp\\{PACKAGE}")  # removed after the install


def test_a_host_with_file_sharing_open_gets_the_package_over_smb(fleet: Fleet, package_dir: Path) -> None:
    """kbfix_upload_smb: the package goes to ADMIN$ in SMB writes of raw bytes (16 KB each, within the 16,644-byte
    buffer the SMB1 server negotiates) and is then checked through WinRM (SHA-1 by certutil -hashfile, size by
    CIM_DataFile); no cmd shell upload."""
    ep = fleet.hosts["sharing"]
    name = "Windows6.0-KB977381-x64.msu"
    data = (package_dir / name).read_bytes()
    assert ep.smb_port
    settings = SMBSettings(host=ep.address, username=ep.username, password=ep.password, port=ep.smb_port)
    with closing(client_for(ep)) as client:
        transport = WinRMTransport(client, smb_upload=settings)
        os_facts = transport.os_facts()
        ep.reset_counters()
        staged = stage(transport, installer.PackageLocation("controller", str(package_dir / name)), os_facts)
    assert (staged.method, staged.size, staged.uploaded) == ("smb", len(data), True)
    assert staged.sha1 == hashlib.sha1(data).hexdigest()  # noqa: S324
    assert ep.host().fs.read(staging_path(os_facts, name)) == data
    counted = ep.counters()
    assert "Send" not in counted["by_action"]
    writes = sum(v for k, v in counted["by_action"].items() if k.startswith("SMB:Write"))
    assert writes == -(-len(data) // 16384)
