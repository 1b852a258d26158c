"""The hotfix installers run from cmd: each seed package's effects and exit codes on its profiles."""

from __future__ import annotations

import datetime as dt
import ntpath
import time
import zlib
from pathlib import Path

import pytest

from winsim import packages
from winsim.cmd import KILLED, run_command
from winsim.machine import CBS_KEY, SESSION_MANAGER, UPDATES_KEY, Host

SHARE = "\\\\fileserver\\patches"
NOT_APPLICABLE, ALREADY_INSTALLED, RESTART = -2145124329, 2359302, 3010


@pytest.fixture(scope="module")
def share_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shares")
    for name in packages.package_names():
        packages.write_package(name, root / "fileserver" / "patches")
    return root


def make(tmp_path: Path, share_root: Path, profile: str, **overrides: object) -> Host:
    return Host.create("box", profile, tmp_path / f"{profile}.json", share_root=str(share_root),
                       reboot_seconds=0.05, **overrides)


def reboot(host: Host) -> None:
    host.reboot()
    deadline = time.monotonic() + 5
    while not host.is_up():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def hotfix_ids(host: Host) -> set[str]:
    return {str(i.properties["HotFixID"]) for i in host.wmi_enumerate("root/cimv2", "Win32_QuickFixEngineering")}


def size(host: Host, path: str) -> int:
    entry = host.fs.entry(host.expand(path))
    assert entry is not None, path
    return entry.size


def modified(host: Host, path: str) -> dt.datetime:
    entry = host.fs.entry(path)
    assert entry is not None, path
    return entry.modified


# --- KB828753: XP SP1, update.exe ---------------------------------------------------------------------------

XP_PACKAGE = f"{SHARE}\\WindowsXP-KB828753-x86-ENU.exe"


def test_kb828753_installs_with_pending_renames(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    result = run_command(host, f"{XP_PACKAGE} /quiet /norestart")
    assert (result.exit_code, result.out, result.err) == (RESTART, "", "")
    # Everything it replaces is loaded (two drivers, cscdll in winlogon): all three wait for the reboot.
    renames = host.registry.get(SESSION_MANAGER, "PendingFileRenameOperations")
    assert renames is not None and renames.data[1::2] == [
        "!\\??\\C:\\WINDOWS\\system32\\cscdll.dll", "!\\??\\C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys",
        "!\\??\\C:\\WINDOWS\\system32\\drivers\\rdbss.sys"]
    assert host.file_version("%SystemRoot%\\system32\\drivers\\mrxsmb.sys") == "5.1.2600.1106 (xpsp1.020828-1920)"
    record = f"{UPDATES_KEY}\\Windows XP\\SP2\\KB828753"
    assert host.registry.get(record, "Description").data == "Windows XP Hotfix - KB828753"  # type: ignore[union-attr]
    assert "KB828753" in hotfix_ids(host)  # XP lists the record at once, before the reboot
    assert host.fs.is_dir("C:\\WINDOWS\\$NtUninstallKB828753$")
    assert "Exit code 3010" in host.fs.read("C:\\WINDOWS\\KB828753.log").decode()
    reboot(host)
    expected = {"cscdll.dll": 92160, "drivers\\mrxsmb.sys": 414976, "drivers\\rdbss.sys": 165632}
    for name, length in expected.items():
        path = f"%SystemRoot%\\system32\\{name}"
        assert host.file_version(path) == "5.1.2600.1276 (xpsp2.030926-1738)"
        assert size(host, path) == length
    assert modified(host, "C:\\WINDOWS\\system32\\cscdll.dll") == dt.datetime(2003, 9, 27, 1, 19, tzinfo=dt.UTC)
    assert host.reboot_pending_indicators() == []
    assert run_command(host, f"{XP_PACKAGE} /quiet /norestart").exit_code == ALREADY_INSTALLED


def test_every_installer_run_is_recorded_in_the_machine_state(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    assert run_command(host, f"{XP_PACKAGE} /quiet /norestart").exit_code == RESTART
    assert run_command(host, f"{XP_PACKAGE} /quiet /norestart").exit_code == ALREADY_INSTALLED
    runs = [{"hotfix_id": "KB828753", "installer": "update", "exit_code": RESTART, "installed": True},
            {"hotfix_id": "KB828753", "installer": "update", "exit_code": ALREADY_INSTALLED, "installed": False}]
    assert host.installer_runs == runs
    assert Host.load(tmp_path / "xp-sp1-x86.json").installer_runs == runs  # persisted with the machine


def test_kb828753_switches(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    assert run_command(host, f"{XP_PACKAGE} /passive /norestart /n /o /f /log:C:\\kb.log").exit_code == RESTART
    assert not host.fs.is_dir("C:\\WINDOWS\\$NtUninstallKB828753$")  # /n: no backup
    assert host.fs.read("C:\\kb.log").decode().count("Installation started") == 1
    result = run_command(host, f"{XP_PACKAGE} /quiet /bogus")
    assert result.exit_code is None  # the usage dialog waits on an invisible desktop


def test_kb828753_without_quiet_never_ends(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    process = host.start_process(XP_PACKAGE, [], None)
    assert process.read() == (b"", b"", None)
    process.terminate()
    assert process.read()[2] == KILLED
    assert "KB828753" not in hotfix_ids(host)


def test_kb828753_restarts_the_host_without_norestart(tmp_path: Path, share_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "RESTART_DELAY_SECONDS", 0.5)
    host = make(tmp_path, share_root, "xp-sp1-x86")
    before = host.boot_time
    assert run_command(host, f"{XP_PACKAGE} /quiet").exit_code == RESTART
    assert host.reboot_scheduled()
    deadline = time.monotonic() + 5
    while host.boot_time == before:
        assert time.monotonic() < deadline
        host.is_up()
        time.sleep(0.05)
    assert host.is_up()
    assert host.file_version("%SystemRoot%\\system32\\drivers\\rdbss.sys") == "5.1.2600.1276 (xpsp2.030926-1738)"


def test_kb828753_on_xp_sp2_is_not_applicable(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp2-x86")
    assert run_command(host, f"{XP_PACKAGE} /quiet /norestart").exit_code == NOT_APPLICABLE
    assert host.file_version("%SystemRoot%\\system32\\drivers\\mrxsmb.sys") == \
        "5.1.2600.2180 (xpsp_sp2_rtm.040803-2158)"


# --- KB253729: NT 4.0 TSE, hotfix.exe -----------------------------------------------------------------------


def test_kb253729_hotfix_exe(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "nt4-tse-sp6-x86")
    assert run_command(host, f"{SHARE}\\Q253729i.exe -m -q -z").exit_code == 0
    key = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\Q253729"
    assert host.registry.get(key, "Installed").data == 1  # type: ignore[union-attr]
    assert host.reboot_pending_indicators() == ["PendingFileRenameOperations"]
    reboot(host)
    assert size(host, "%SystemRoot%\\system32\\mpr.dll") == 60176
    assert modified(host, "C:\\WINNT\\system32\\mpr.dll") == dt.datetime(2000, 2, 8, 19, 27, tzinfo=dt.UTC)
    assert run_command(host, f"{SHARE}\\Q253729i.exe -m -z").exit_code == ALREADY_INSTALLED


def test_kb253729_without_z_restarts(tmp_path: Path, share_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "RESTART_DELAY_SECONDS", 30)
    host = make(tmp_path, share_root, "nt4-tse-sp6-x86")
    assert run_command(host, f"{SHARE}\\Q253729i.exe -m").exit_code == 0
    assert host.reboot_scheduled()


# --- KB977381 on Windows Server 2003 R2 (update.exe) --------------------------------------------------------


def test_kb977381_2003_x86(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2003r2-sp2-x86")
    result = run_command(host, f"{SHARE}\\WindowsServer2003-KB977381-x86-ENU.exe /quiet /norestart")
    assert result.exit_code == RESTART
    # dfsr.exe is the running DFSR service: queued. W03a3409.dll is free: replaced now.
    assert host.file_version("%SystemRoot%\\system32\\w03a3409.dll") == "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)"
    assert host.file_version("%SystemRoot%\\system32\\dfsr.exe") == "5.2.3790.3959 (srv03_sp2_rtm.070216-1710)"
    assert host.registry.open(f"{UPDATES_KEY}\\Windows Server 2003\\SP3\\KB977381") is not None
    assert host.reboot_pending_indicators() == ["PendingFileRenameOperations", "UpdateExeVolatile"]
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\dfsr.exe") == "5.2.3790.4650 (srv03_sp2_qfe.100115-1232)"
    assert (size(host, "%SystemRoot%\\system32\\dfsr.exe"), size(host, "%SystemRoot%\\system32\\w03a3409.dll")) == \
        (1705984, 43520)


def test_kb977381_2003_x64_updates_the_wow64_copy(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2003r2-sp2-x64")
    assert run_command(host, f"{SHARE}\\WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe /quiet /norestart") \
        .exit_code == RESTART
    reboot(host)
    assert (size(host, "%SystemRoot%\\system32\\dfsr.exe"), size(host, "%SystemRoot%\\system32\\w03a3409.dll"),
            size(host, "%SystemRoot%\\SysWOW64\\w03a3409.dll")) == (3594752, 44032, 43520)
    assert host.file_version("%SystemRoot%\\SysWOW64\\w03a3409.dll") == "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)"


@pytest.mark.parametrize(("profile", "package", "code"), [
    ("2003r2-sp2-x86", "WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe", 1),  # x64 package on x86
    ("xp-sp1-x86", "WindowsServer2003-KB977381-x86-ENU.exe", 1),  # another OS
    ("2003r2-sp2-x86", "WindowsXP-KB828753-x86-ENU.exe", 1),
    ("2003r2-sp2-x86", "Windows6.0-KB977381-x86.msu", None),  # wusa does not exist on 2003: runs nothing
])
def test_wrong_platform(tmp_path: Path, share_root: Path, profile: str, package: str, code: int | None) -> None:
    host = make(tmp_path, share_root, profile)
    if package.endswith(".msu"):
        result = run_command(host, f"wusa {SHARE}\\{package} /quiet")
        assert result.exit_code == 1 and "is not recognized" in result.err
        return
    assert run_command(host, f"{SHARE}\\{package} /quiet /norestart").exit_code == code
    assert host.reboot_pending_indicators() == []


def test_kb977381_2003_with_dfsr_stopped_needs_no_restart(tmp_path: Path, share_root: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "RESTART_DELAY_SECONDS", 30)
    host = make(tmp_path, share_root, "2003r2-sp2-x86", services={"DFSR": {"state": "Stopped"}})
    package = f"{SHARE}\\WindowsServer2003-KB977381-x86-ENU.exe"
    assert run_command(host, f"{package} /quiet /norestart").exit_code == 0
    assert host.file_version("%SystemRoot%\\system32\\dfsr.exe") == "5.2.3790.4650 (srv03_sp2_qfe.100115-1232)"
    assert host.reboot_pending_indicators() == [] and not host.reboot_scheduled()
    host = make(tmp_path / "again", share_root, "2003r2-sp2-x86", services={"DFSR": {"state": "Stopped"}})
    assert run_command(host, f"{package} /quiet /forcerestart").exit_code == 0
    assert host.reboot_scheduled()


def test_kb977381_2003_needs_dfsr(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2003r2-sp2-x86", remove_services=["DFSR"])
    assert run_command(host, f"{SHARE}\\WindowsServer2003-KB977381-x86-ENU.exe /quiet /norestart").exit_code == \
        NOT_APPLICABLE
    assert host.fs.entry("C:\\WINDOWS\\system32\\dfsr.exe") is None


# --- KB977381 on Windows Server 2008 / 2008 R2 (wusa, CBS) ----------------------------------------------------

# profile, package, Dfsrs.exe version, size
W2008_CASES = [
    ("2008-sp1-x86", "Windows6.0-KB977381-x86.msu", "6.0.6001.22565 (vistasp1_ldr.091117-0945)", 2245632),
    ("2008-sp1-x64", "Windows6.0-KB977381-x64.msu", "6.0.6001.22565 (vistasp1_ldr.091117-0945)", 3678208),
    ("2008-sp2-x86", "Windows6.0-KB977381-x86.msu", "6.0.6002.22269 (vistasp2_ldr.091117-0945)", 2247680),
    ("2008-sp2-x64", "Windows6.0-KB977381-x64.msu", "6.0.6002.22269 (vistasp2_ldr.091117-0945)", 3680256),
]


@pytest.mark.parametrize(("profile", "package", "version", "length"), W2008_CASES)
def test_kb977381_2008(tmp_path: Path, share_root: Path, profile: str, package: str, version: str,
                       length: int) -> None:
    host = make(tmp_path, share_root, profile)
    assert run_command(host, f"wusa.exe {SHARE}\\{package} /quiet /norestart").exit_code == RESTART
    assert host.reboot_pending_indicators() == ["CBS RebootPending"]
    assert "KB977381" not in hotfix_ids(host)  # CBS lists the update once its reboot has happened
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") != version
    assert run_command(host, f"wusa {SHARE}\\{package} /quiet /norestart").exit_code == ALREADY_INSTALLED
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") == version
    assert size(host, "%SystemRoot%\\system32\\Dfsrs.exe") == length
    resource = "%SystemRoot%\\system32\\Dfsrress.dll"
    assert (host.file_version(resource), size(host, resource)) == (version, 2048)
    assert size(host, "%SystemRoot%\\system32\\wbem\\Dfsrprovs.mof") == 66511
    assert host.file_version("%SystemRoot%\\system32\\en-US\\Dfsrs.exe.mui") == version
    assert "KB977381" in hotfix_ids(host)
    assert host.reboot_pending_indicators() == []


def test_kb977381_2008r2_keeps_the_rtm_resource_dll(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008r2-rtm-x64")
    before = host.fs.entry("C:\\Windows\\system32\\Dfsrress.dll")
    assert run_command(host, f"wusa {SHARE}\\Windows6.1-KB977381-x64.msu /quiet /norestart").exit_code == RESTART
    assert "Dfsrress.dll" not in host.fs.read("C:\\Windows\\WinSxS\\pending.xml").decode()
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") == "6.1.7600.20578 (win7_ldr.091118-1759)"
    assert size(host, "%SystemRoot%\\system32\\Dfsrs.exe") == 4503040
    assert host.fs.entry("C:\\Windows\\system32\\Dfsrress.dll") == before
    key = f"{CBS_KEY}\\Packages\\Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0"
    assert host.registry.get(key, "CurrentState").data == 0x70  # type: ignore[union-attr]


@pytest.mark.parametrize(("profile", "package", "overrides"), [
    ("2008-sp2-x64", "Windows6.0-KB977381-x86.msu", {}),  # wrong architecture
    ("2008-sp2-x64", "Windows6.0-KB977381-x64.msu", {"remove_services": ["DFSR"]}),  # no DFS Replication
    ("2008r2-rtm-x64", "Windows6.0-KB977381-x64.msu", {}),  # a 6.0 package on 6.1
    ("vista-sp1-x64", "Windows6.0-KB977381-x64.msu", {}),  # a client
    ("2008-sp2-x64", "Windows6.0-KB977381-x64.msu", {"installed": ["KB977381"]}),
])
def test_msu_not_applicable(tmp_path: Path, share_root: Path, profile: str, package: str,
                            overrides: dict[str, object]) -> None:
    host = make(tmp_path, share_root, profile, **overrides)
    expected = ALREADY_INSTALLED if overrides.get("installed") else NOT_APPLICABLE
    assert run_command(host, f"wusa {SHARE}\\{package} /quiet /norestart").exit_code == expected
    assert host.reboot_pending_indicators() == []


def test_newer_files_make_an_msu_not_applicable(tmp_path: Path, share_root: Path) -> None:
    newer = {"%SystemRoot%\\system32\\Dfsrs.exe": {"version": "6.0.6002.22300 (vistasp2_ldr.100101-0000)",
                                                    "size": 3690000},
             "%SystemRoot%\\system32\\Dfsrress.dll": {"version": "6.0.6002.22300", "size": 2048},
             "%SystemRoot%\\system32\\en-US\\Dfsrress.dll.mui": {"version": "6.0.6002.22300", "size": 135680},
             "%SystemRoot%\\system32\\en-US\\Dfsrs.exe.mui": {"version": "6.0.6002.22300", "size": 33280}}
    host = make(tmp_path, share_root, "2008-sp2-x64", files=newer)
    assert run_command(host, f"wusa {SHARE}\\Windows6.0-KB977381-x64.msu /quiet /norestart").exit_code == \
        NOT_APPLICABLE


def test_wusa_restarts_without_norestart(tmp_path: Path, share_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "RESTART_DELAY_SECONDS", 30)
    host = make(tmp_path, share_root, "2008-sp1-x64")
    assert run_command(host, f"wusa {SHARE}\\Windows6.0-KB977381-x64.msu /quiet").exit_code == RESTART
    assert host.reboot_scheduled()


def test_wusa_without_quiet_waits_for_a_user(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008-sp1-x64")
    assert run_command(host, f"wusa {SHARE}\\Windows6.0-KB977381-x64.msu /norestart").exit_code is None
    assert host.reboot_pending_indicators() == []


# --- KB938475: Vista RTM --------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["x86", "x64"])
def test_kb938475_vista_rtm(tmp_path: Path, share_root: Path, arch: str) -> None:
    host = make(tmp_path, share_root, f"vista-rtm-{arch}")
    assert run_command(host, f"wusa {SHARE}\\Windows6.0-KB938475-{arch}.msu /quiet /norestart").exit_code == RESTART
    reboot(host)
    for driver in ("mrxsmb.sys", "srv2.sys"):
        assert host.file_version(f"%SystemRoot%\\system32\\drivers\\{driver}") == \
            "6.0.6000.20620 (vista_ldr.070615-1730)"
    # The mini-redirectors are components of their own (smb10-minirdr, smb20-minirdr) that the package does
    # not carry: their RTM builds stay.
    for driver in ("mrxsmb10.sys", "mrxsmb20.sys"):
        assert host.file_version(f"%SystemRoot%\\system32\\drivers\\{driver}") == \
            "6.0.6000.16386 (vista_rtm.061101-2205)"
    assert host.file_version("%SystemRoot%\\system32\\drivers\\srv.sys") == "6.0.6000.16386 (vista_rtm.061101-2205)"
    assert "KB938475" in hotfix_ids(host)


def test_kb938475_on_vista_sp1_is_not_applicable(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "vista-sp1-x86")
    assert run_command(host, f"wusa {SHARE}\\Windows6.0-KB938475-x86.msu /quiet /norestart").exit_code == \
        NOT_APPLICABLE


# --- damaged and missing files, uploads -----------------------------------------------------------------------


def test_corrupt_packages(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008-sp1-x64")
    msu = bytearray(packages.build_package("Windows6.0-KB977381-x64.msu"))
    msu[-100] ^= 0xFF  # one flipped byte in the cabinet's data fails its checksum
    host.fs.write("C:\\Windows\\Temp\\bad.msu", bytes(msu))
    assert run_command(host, "wusa C:\\Windows\\Temp\\bad.msu /quiet /norestart").exit_code == -2147023504
    host.fs.write("C:\\Windows\\Temp\\short.msu", bytes(msu[:300]))
    assert run_command(host, "wusa C:\\Windows\\Temp\\short.msu /quiet /norestart").exit_code == -2147023504
    assert run_command(host, "wusa C:\\Windows\\Temp\\none.msu /quiet /norestart").exit_code == -2147024894

    xp = make(tmp_path, share_root, "xp-sp1-x86")
    exe = packages.build_package("WindowsXP-KB828753-x86-ENU.exe")
    xp.fs.write("C:\\cut.exe", exe[:-40])
    assert run_command(xp, "C:\\cut.exe /quiet /norestart").exit_code == 1392
    xp.fs.write("C:\\head.exe", exe[:200])
    result = run_command(xp, "C:\\head.exe /quiet")
    assert (result.exit_code, result.err) == (1, "C:\\head.exe is not a valid Win32 application.\r\n")
    assert xp.reboot_pending_indicators() == []


def test_unmapped_share(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    result = run_command(host, "\\\\otherserver\\share\\x.exe /quiet")
    assert result.exit_code == 1 and "is not recognized" in result.err
    result = run_command(host, "type \\\\otherserver\\share\\x.txt")
    assert (result.exit_code, result.err) == (1, "The network path was not found.\r\n")


def test_upload_by_echo_and_certutil_then_install(tmp_path: Path, share_root: Path) -> None:
    import base64

    host = make(tmp_path, share_root, "2003r2-sp2-x86")
    data = packages.build_package("WindowsServer2003-KB977381-x86-ENU.exe")
    text = base64.b64encode(data).decode()
    for i in range(0, len(text), 4000):
        assert run_command(host, f"echo {text[i:i + 4000]}>> C:\\WINDOWS\\Temp\\kb.b64").exit_code == 0
    assert run_command(host, "certutil -decode C:\\WINDOWS\\Temp\\kb.b64 C:\\WINDOWS\\Temp\\kb.exe").exit_code == 0
    assert run_command(host, "C:\\WINDOWS\\Temp\\kb.exe /quiet /norestart").exit_code == RESTART


def test_real_size_packages_carry_their_payload_and_install(tmp_path: Path, share_root: Path) -> None:
    """A package built at its real size (0.5-3 MB of incompressible payload in its cabinet) installs like the
    small one; one changed payload byte fails the cabinet's checksum, as in a real self-extractor."""
    name = "WindowsServer2003-KB977381-x86-ENU.exe"
    size = packages.real_size(name)
    data = packages.build_package(name, size)
    assert len(data) == size and packages.REAL_SIZE_RANGE[0] <= size <= packages.REAL_SIZE_RANGE[1]
    assert len(zlib.compress(data)) > size * 0.99  # nothing a compressing transfer could shrink
    assert packages.build_package(name, size) == data  # deterministic
    host = make(tmp_path, share_root, "2003r2-sp2-x86")
    host.fs.write("C:\\WINDOWS\\Temp\\kb.exe", data)
    assert run_command(host, "C:\\WINDOWS\\Temp\\kb.exe /quiet /norestart").exit_code == RESTART
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    other = make(tmp_path / "other", share_root, "2003r2-sp2-x86")
    other.fs.write("C:\\WINDOWS\\Temp\\kb.exe", bytes(damaged))
    assert run_command(other, "C:\\WINDOWS\\Temp\\kb.exe /quiet /norestart").exit_code == 1392


def test_package_found_through_the_path(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    host.fs.write("C:\\WINDOWS\\system32\\q.exe", packages.build_package("WindowsXP-KB828753-x86-ENU.exe"))
    assert run_command(host, "q /quiet /norestart").exit_code == RESTART


# --- removing a hotfix again ----------------------------------------------------------------------------------


def test_spuninst_restores_the_xp_files(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    run_command(host, f"{XP_PACKAGE} /quiet /norestart")
    reboot(host)
    record = f"{UPDATES_KEY}\\Windows XP\\SP2\\KB828753"
    command = host.registry.get(record, "UninstallCommand")
    assert command is not None and command.data == "C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe"
    assert host.wmi_get("root/cimv2", "CIM_DataFile", {"Name": command.data}).properties["FileSize"]
    assert run_command(host, f"{command.data} /quiet /norestart").exit_code == RESTART  # drivers in use
    assert host.registry.open(record) is None and "KB828753" not in hotfix_ids(host)
    assert not host.fs.exists("C:\\WINDOWS\\$NtUninstallKB828753$")
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\drivers\\mrxsmb.sys") == "5.1.2600.1106 (xpsp1.020828-1920)"
    assert size(host, "%SystemRoot%\\system32\\cscdll.dll") == 90624
    assert host.reboot_pending_indicators() == []


def test_no_backup_no_uninstaller(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "xp-sp1-x86")
    run_command(host, f"{XP_PACKAGE} /quiet /norestart /n")
    assert host.fs.entry("C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe") is None
    result = run_command(host, "C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe /quiet")
    assert result.exit_code == 1 and "is not recognized" in result.err


def test_nt4_hotfix_uninstall(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "nt4-tse-sp6-x86")
    run_command(host, f"{SHARE}\\Q253729i.exe -m -q -z")
    reboot(host)
    assert run_command(host, "C:\\WINNT\\$NtUninstallQ253729$\\hotfix.exe -y -m -z").exit_code == 0
    assert host.registry.open("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\Q253729") is None
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\mpr.dll") == "4.0.1381.33361"


def test_wusa_uninstall_on_2008r2(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008r2-rtm-x64", installed=["KB977381"])
    assert "KB977381" in hotfix_ids(host)
    result = run_command(host, "wusa.exe /uninstall /kb:977381 /quiet /norestart")
    assert result.exit_code == RESTART
    key = f"{CBS_KEY}\\Packages\\Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0"
    assert host.registry.get(key, "CurrentState").data == 0x05  # type: ignore[union-attr]
    assert "KB977381" not in hotfix_ids(host) and host.reboot_pending_indicators() == ["CBS RebootPending"]
    reboot(host)
    assert host.registry.open(key) is None
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") == "6.1.7600.16385 (win7_rtm.090713-1255)"
    assert size(host, "%SystemRoot%\\system32\\wbem\\Dfsrprovs.mof") == 75200
    assert run_command(host, "wusa /uninstall /kb:977381 /quiet /norestart").exit_code == 2359303


def test_pkgmgr_removes_packages_on_6_0(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "vista-rtm-x86", installed=["KB938475"])
    names = sorted(n for n in host.registry.open(f"{CBS_KEY}\\Packages").subkeys  # type: ignore[union-attr]
                   if "kb938475" in n)
    assert len(names) == 2
    assert run_command(host, "wusa /uninstall /kb:938475 /quiet /norestart").exit_code is None  # not on 6.0
    for name in names:
        assert run_command(host, f"pkgmgr /up:{name} /quiet /norestart").exit_code == RESTART
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\drivers\\srv2.sys") == "6.0.6000.16386 (vista_rtm.061101-2205)"
    assert "KB938475" not in hotfix_ids(host)
    assert run_command(host, f"pkgmgr /up:{names[0]} /quiet /norestart").exit_code == -2146498555


def test_uninstall_before_the_install_reboot(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008-sp2-x86")
    before = host.file_version("%SystemRoot%\\system32\\Dfsrs.exe")
    run_command(host, f"wusa {SHARE}\\Windows6.0-KB977381-x86.msu /quiet /norestart")
    name = "Package_for_KB977381_server~31bf3856ad364e35~x86~~6.0.1.0"
    assert run_command(host, f"pkgmgr /up:{name} /quiet /norestart").exit_code == RESTART
    reboot(host)
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") == before
    assert size(host, "%SystemRoot%\\system32\\wbem\\Dfsrprovs.mof") == 66498


def test_cbs_writes_the_articles_manifests_and_package_files(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "vista-rtm-x64")
    run_command(host, f"wusa {SHARE}\\Windows6.0-KB938475-x64.msu /quiet /norestart")
    manifests = "C:\\Windows\\winsxs\\Manifests\\"
    server = manifests + "amd64_microsoft-windows-smbserver-v2_31bf3856ad364e35_6.0.6000.20620_none_" \
                         "3498f159cae06e90.manifest"
    assert size(host, server) == 4983  # written while staging, before the reboot
    assert modified(host, server) == dt.datetime(2007, 6, 15, 17, 44, tzinfo=dt.UTC)
    mum = "C:\\Windows\\servicing\\Packages\\Package_2_for_KB938475~31bf3856ad364e35~amd64~~6.0.1.0.mum"
    assert size(host, mum) == 2008
    assert "releaseType=\"Hotfix\"" in host.fs.read(mum).decode()
    staged = "C:\\Windows\\winsxs\\amd64_microsoft-windows-smbserver-v2_31bf3856ad364e35_6.0.6000.20620_none_" \
             "3498f159cae06e90\\srv2.sys"
    assert host.file_version(staged) == "6.0.6000.20620 (vista_ldr.070615-1730)"


def test_2008_writes_the_manifests_of_its_service_pack(tmp_path: Path, share_root: Path) -> None:
    host = make(tmp_path, share_root, "2008-sp1-x86")
    run_command(host, f"wusa {SHARE}\\Windows6.0-KB977381-x86.msu /quiet /norestart")
    names = {ntpath.basename(p) for p in host.fs.listdir("C:\\Windows\\winsxs\\Manifests")}
    assert names == {
        "x86_microsoft-windows-d..erveronly.resources_31bf3856ad364e35_6.0.6001.22565_en-us_5723e9525d423053.manifest",
        "x86_microsoft-windows-dfsr-core-serveronly_31bf3856ad364e35_6.0.6001.22565_none_9dd97743c1110934.manifest"}
    assert size(host, "C:\\Windows\\servicing\\Packages\\Package_for_KB977381_server_0~31bf3856ad364e35~x86~~"
                      "6.0.1.0.mum") == 37637


# --- a package a test describes (an article outside winsim's catalogue) -------------------------------------


def test_a_package_described_by_a_test_installs_without_entering_the_catalogue(tmp_path: Path,
                                                                              share_root: Path) -> None:
    driver = "%SystemRoot%\\system32\\drivers\\kbfixdemo.sys"
    own = packages.Package(
        "WindowsXP-KB900002-x86-ENU.exe", "KB900002", "update", "x86", "A test's own article",
        (packages.Target("5.1.2600", (1,), (
            packages.FileFix(driver, "5.1.2600.1290 (xpsp2.031001-1200)", 20480, "2003-10-01T12:00:00+00:00"),),
            product_types=(1,)),),
        record_product="Windows XP", record_sp="SP2", build_date="2003-10-01")
    path = packages.write_package(own, tmp_path / "own")
    assert path.name == own.filename and "windowsxp-kb900002-x86-enu.exe" not in packages.CATALOGUE
    host = make(tmp_path, share_root, "xp-sp1-x86")
    host.fs.write("C:\\pkg.exe", path.read_bytes())
    assert run_command(host, "C:\\pkg.exe /quiet /norestart").exit_code == 0
    assert host.file_version(driver) == "5.1.2600.1290 (xpsp2.031001-1200)" and size(host, driver) == 20480
    assert "KB900002" in hotfix_ids(host)
    assert packages.read_manifest(path.read_bytes(), path.name) == own
