"""winsim.machine: profiles, registry semantics, files, overrides, reboot and persistence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from winsim import packages
from winsim.cmd import KILLED, run_command
from winsim.machine import (
    CBS_KEY,
    REG_DWORD,
    REG_MULTI_SZ,
    REG_QWORD,
    REG_SZ,
    SESSION_MANAGER,
    Host,
    Registry,
    load_profile,
    profile_names,
)

PROFILES = ["nt4-tse-sp6-x86", "xp-sp1-x86", "xp-sp2-x86", "2003r2-sp2-x86", "2003r2-sp2-x64", "2008-sp1-x86",
            "2008-sp1-x64", "2008-sp2-x86", "2008-sp2-x64", "2008r2-rtm-x64", "vista-rtm-x86", "vista-rtm-x64",
            "vista-sp1-x86", "vista-sp1-x64"]


def make(tmp_path: Path, profile: str, name: str = "host1", **overrides: object) -> Host:
    return Host.create(name, profile, tmp_path / f"{name}.json", **overrides)


def test_the_profile_names_are_the_agreed_ones() -> None:
    assert profile_names() == sorted(PROFILES)


# (version, SP, arch, product type, R2, winrm_version, listener, system root)
IDENTITY = {
    "nt4-tse-sp6-x86": ("4.0.1381", 6, "x86", 3, False, "", False, "C:\\WINNT"),
    "xp-sp1-x86": ("5.1.2600", 1, "x86", 1, False, "1.1", True, "C:\\WINDOWS"),
    "xp-sp2-x86": ("5.1.2600", 2, "x86", 1, False, "2.0", True, "C:\\WINDOWS"),
    "2003r2-sp2-x86": ("5.2.3790", 2, "x86", 3, True, "1.1", True, "C:\\WINDOWS"),
    "2003r2-sp2-x64": ("5.2.3790", 2, "x64", 3, True, "1.1", True, "C:\\WINDOWS"),
    "2008-sp1-x86": ("6.0.6001", 1, "x86", 3, False, "2.0", True, "C:\\Windows"),
    "2008-sp1-x64": ("6.0.6001", 1, "x64", 3, False, "2.0", True, "C:\\Windows"),
    "2008-sp2-x86": ("6.0.6002", 2, "x86", 3, False, "2.0", True, "C:\\Windows"),
    "2008-sp2-x64": ("6.0.6002", 2, "x64", 3, False, "2.0", True, "C:\\Windows"),
    "2008r2-rtm-x64": ("6.1.7600", 0, "x64", 3, False, "2.0", True, "C:\\Windows"),
    "vista-rtm-x86": ("6.0.6000", 0, "x86", 1, False, "1.1", True, "C:\\Windows"),
    "vista-rtm-x64": ("6.0.6000", 0, "x64", 1, False, "1.1", True, "C:\\Windows"),
    "vista-sp1-x86": ("6.0.6001", 1, "x86", 1, False, "2.0", True, "C:\\Windows"),
    "vista-sp1-x64": ("6.0.6001", 1, "x64", 1, False, "2.0", True, "C:\\Windows"),
}


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_identity(tmp_path: Path, profile: str) -> None:
    host = make(tmp_path, profile)
    version, sp, arch, product_type, r2, winrm, listener, root = IDENTITY[profile]
    assert (host.os.version, host.os.sp_major, host.os.architecture, host.os.product_type) == \
        (version, sp, arch, product_type)
    assert (host.os.other_type_description == "R2") == r2
    assert (host.winrm_version, host.listener, host.os.system_root) == (winrm, listener, root)
    assert host.credentials == {"Administrator": "W1nsim!Pass"}
    assert host.reboot_seconds == 2
    cv = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
    assert host.registry.get(cv, "CurrentBuildNumber").data == version.split(".")[2]  # type: ignore[union-attr]
    env = host.environment()
    assert env["PROCESSOR_ARCHITECTURE"] == {"x86": "x86", "x64": "AMD64"}[arch]
    assert env["SystemRoot"] == root
    assert host.is_up()


def test_captions_follow_the_articles(tmp_path: Path) -> None:
    captions = {p: make(tmp_path, p, name=p.replace(".", "")).os.caption for p in
                ("xp-sp1-x86", "2003r2-sp2-x64", "2008-sp2-x86", "2008r2-rtm-x64")}
    assert captions == {
        "xp-sp1-x86": "Microsoft Windows XP Professional",
        "2003r2-sp2-x64": "Microsoft(R) Windows(R) Server 2003 Standard x64 Edition",
        "2008-sp2-x86": "Microsoftr Windows Serverr 2008 Enterprise",
        "2008r2-rtm-x64": "Microsoft Windows Server 2008 R2 Enterprise ",
    }


@pytest.mark.parametrize(("profile", "path", "version"), [
    ("xp-sp1-x86", "%SystemRoot%\\system32\\drivers\\mrxsmb.sys", "5.1.2600.1106 (xpsp1.020828-1920)"),
    ("xp-sp1-x86", "%SystemRoot%\\system32\\cscdll.dll", "5.1.2600.1106 (xpsp1.020828-1920)"),
    ("xp-sp2-x86", "%SystemRoot%\\system32\\drivers\\rdbss.sys", "5.1.2600.2180 (xpsp_sp2_rtm.040803-2158)"),
    ("2003r2-sp2-x86", "%SystemRoot%\\system32\\dfsr.exe", "5.2.3790.3959 (srv03_sp2_rtm.070216-1710)"),
    ("2008-sp1-x64", "%SystemRoot%\\system32\\Dfsrs.exe", "6.0.6001.18000 (longhorn_rtm.080118-1840)"),
    ("2008-sp2-x86", "%SystemRoot%\\system32\\dfsrs.exe", "6.0.6002.18005 (lh_sp2rtm.090410-1830)"),
    ("2008r2-rtm-x64", "%SystemRoot%\\system32\\Dfsrs.exe", "6.1.7600.16385 (win7_rtm.090713-1255)"),
    ("2008r2-rtm-x64", "%SystemRoot%\\system32\\Dfsrress.dll", "6.1.7600.16385 (win7_rtm.090713-1255)"),
    ("vista-rtm-x64", "%SystemRoot%\\system32\\drivers\\srv2.sys", "6.0.6000.16386 (vista_rtm.061101-2205)"),
    ("nt4-tse-sp6-x86", "%SystemRoot%\\system32\\mpr.dll", "4.0.1381.33361"),
])
def test_pre_fix_file_versions(tmp_path: Path, profile: str, path: str, version: str) -> None:
    host = make(tmp_path, profile)
    assert host.file_version(path) == version


def test_dfsr_is_a_service_on_server_profiles_only(tmp_path: Path) -> None:
    def services(profile: str) -> set[str]:
        return {s["name"] for s in make(tmp_path, profile, name=profile.replace(".", "")).services()}

    for profile in ("2003r2-sp2-x86", "2003r2-sp2-x64", "2008-sp1-x86", "2008-sp2-x64", "2008r2-rtm-x64"):
        assert "DFSR" in services(profile)
    for profile in ("xp-sp1-x86", "vista-rtm-x86"):
        assert "DFSR" not in services(profile)


def test_remove_services_removes_the_service_and_its_files(tmp_path: Path) -> None:
    host = make(tmp_path, "2008-sp2-x64", remove_services=["DFSR"])
    assert "DFSR" not in {s["name"] for s in host.services()}
    assert host.registry.open("HKLM\\SYSTEM\\CurrentControlSet\\Services\\DFSR") is None
    assert host.fs.entry("C:\\Windows\\system32\\Dfsrs.exe") is None
    assert host.fs.entry("C:\\Windows\\system32\\drivers\\srv2.sys") is not None


def test_unknown_profile_and_override_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown winsim profile"):
        make(tmp_path, "xp-sp3-x86")
    with pytest.raises(ValueError, match="unknown override"):
        make(tmp_path, "xp-sp1-x86", winrm_verison="1.0")


def test_simple_overrides(tmp_path: Path) -> None:
    host = make(tmp_path, "2003r2-sp2-x86", winrm_version="1.0", reboot_seconds=0.5,
                credentials={"ops": "secret"}, domain="CONTOSO.LOCAL",
                registry={"HKLM\\SOFTWARE\\Contoso": {"Level": ["dword", 7], "Tags": ["multistring", ["a", "b"]]}},
                files={"%SystemRoot%\\system32\\extra.dll": {"version": "5.2.3790.1830", "size": 4096}})
    assert (host.winrm_version, host.reboot_seconds, host.credentials) == ("1.0", 0.5, {"ops": "secret"})
    assert host.user == "ops"
    assert host.registry.get("HKLM\\SOFTWARE\\Contoso", "level").data == 7  # type: ignore[union-attr]
    assert host.registry.get("HKLM\\SOFTWARE\\Contoso", "Tags").type == REG_MULTI_SZ  # type: ignore[union-attr]
    assert host.file_version("C:\\WINDOWS\\system32\\EXTRA.DLL") == "5.2.3790.1830"
    assert host.fs.entry("C:\\WINDOWS\\system32\\extra.dll").size == 4096  # type: ignore[union-attr]


def test_profile_inheritance_merges_mappings() -> None:
    profile = load_profile("2003r2-sp2-x64")
    assert profile["os"]["architecture"] == "x64"  # from the leaf
    assert profile["os"]["other_type_description"] == "R2"  # from _2003r2
    assert profile["credentials"] == {"Administrator": "W1nsim!Pass"}  # from _base
    assert "LanmanServer" in profile["services"] and "DFSR" in profile["services"]  # _nt5 + _2003r2


# --- registry -----------------------------------------------------------------------------------------


def test_registry_is_case_insensitive_and_case_preserving() -> None:
    reg = Registry()
    reg.set("HKLM\\SOFTWARE\\Contoso\\App", "Mode", REG_SZ, "fast")
    assert reg.get("hkey_local_machine\\software\\CONTOSO\\app", "MODE").data == "fast"  # type: ignore[union-attr]
    reg.set("HKLM\\software\\contoso\\APP", "MODE", REG_DWORD, 3)
    value = reg.get("HKLM\\SOFTWARE\\Contoso\\App", "mode")
    assert value is not None and (value.name, value.type, value.data) == ("Mode", REG_DWORD, 3)
    assert reg.display_path("hklm\\software\\contoso\\app") == "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\App"


def test_registry_views_and_bad_paths() -> None:
    reg = Registry()
    reg.set("HKCR\\.txt", "", REG_SZ, "txtfile")
    assert reg.get("HKLM\\SOFTWARE\\Classes\\.TXT", "").data == "txtfile"  # type: ignore[union-attr]
    reg.set("HKCU\\Environment", "TEMP", REG_SZ, "x")
    assert reg.open(f"HKU\\{reg.user_sid}\\Environment") is not None
    for bad in ("HKXX\\Software", "HKLM\\\\Software", "\\HKLM\\Software"):
        assert reg.open(bad) is None


@pytest.mark.parametrize(("type_", "data"), [(REG_DWORD, 2**32), (REG_DWORD, -1), (REG_QWORD, 2**64),
                                             (REG_SZ, 5), (REG_MULTI_SZ, "a")])
def test_registry_rejects_data_of_the_wrong_shape(type_: int, data: object) -> None:
    with pytest.raises(ValueError):
        Registry().set("HKLM\\SOFTWARE\\X", "v", type_, data)


def test_delete_key_refuses_a_key_with_subkeys() -> None:
    reg = Registry()
    reg.create("HKLM\\SOFTWARE\\A\\B")
    assert reg.delete_key("HKLM\\SOFTWARE\\A") == 5
    assert reg.delete_key("HKLM\\SOFTWARE\\Nope") == 2
    assert reg.delete_key("HKLM\\SOFTWARE\\A\\B") == 0
    assert reg.delete_key("HKLM\\SOFTWARE\\A") == 0
    assert reg.open("HKLM\\SOFTWARE\\A") is None


def test_protected_keys(tmp_path: Path) -> None:
    xp, w2008 = make(tmp_path, "xp-sp1-x86", "xp"), make(tmp_path, "2008-sp2-x86", "w2008")
    assert xp.registry.access("HKLM\\SAM\\SAM\\Domains") == "none"
    assert xp.registry.access("HKLM\\SECURITY") == "none"
    assert xp.registry.access("HKLM\\SAM") == "full"
    assert w2008.registry.access(CBS_KEY + "\\Packages") == "read"
    assert xp.registry.access(CBS_KEY) == "full"


# --- persistence ------------------------------------------------------------------------------------------


def test_reload_gives_the_same_machine(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86", share_root=str(tmp_path / "shares"))
    run_command(host, "echo hello> C:\\WINDOWS\\Temp\\note.txt& echo again>> C:\\WINDOWS\\Temp\\note.txt")
    host.registry.set("HKLM\\SOFTWARE\\Contoso", "Bin", 3, b"\x00\xff")
    host.save()
    again = Host.load(host.state_path)
    assert again.to_state() == host.to_state()
    assert again.fs.read("c:\\windows\\temp\\NOTE.TXT") == b"hello\r\nagain\r\n"
    assert again.registry.get("HKLM\\SOFTWARE\\Contoso", "Bin").data == b"\x00\xff"  # type: ignore[union-attr]
    assert again.file_version("C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys") == "5.1.2600.1106 (xpsp1.020828-1920)"


def test_state_is_one_json_file_written_atomically(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-rtm-x86")
    for i in range(5):
        run_command(host, f"reg add HKLM\\SOFTWARE\\T /v n{i} /t REG_DWORD /d {i} /f")
    state = json.loads(host.state_path.read_text())
    assert state["format"] == 1 and state["name"] == "host1"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert Host.load(host.state_path).registry.get("HKLM\\SOFTWARE\\T", "n4").data == 4  # type: ignore[union-attr]


def test_hosts_of_a_state_dir_share_file_blobs(tmp_path: Path) -> None:
    first, second = make(tmp_path, "2008-sp2-x64", "a"), make(tmp_path, "2008-sp2-x64", "b")
    path = "C:\\Windows\\system32\\Dfsrs.exe"
    assert first.fs.entry(path).ref == second.fs.entry(path).ref  # type: ignore[union-attr]
    assert len(list((tmp_path / "blobs").iterdir())) < 20


# --- reboot -----------------------------------------------------------------------------------------------


def wait_until_up(host: Host, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not host.is_up():
        assert time.monotonic() < deadline, "host did not come back"
        time.sleep(0.02)


def test_reboot_has_a_down_window_then_moves_the_boot_time(tmp_path: Path) -> None:
    host = make(tmp_path, "2008r2-rtm-x64", reboot_seconds=1.0)
    before, boot_id = host.boot_time, host.boot_id
    host.reboot()
    assert not host.is_up()
    time.sleep(0.1)
    assert not host.is_up()
    wait_until_up(host)
    assert host.boot_time > before and host.boot_id == boot_id + 1
    assert Host.load(host.state_path).boot_time == host.boot_time


def test_reboot_applies_pending_renames_and_clears_indicators(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86", reboot_seconds=0.05, pending=["KB828753"])
    mrxsmb = "C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys"
    assert host.file_version(mrxsmb) == "5.1.2600.1106 (xpsp1.020828-1920)"
    assert host.reboot_pending_indicators() == ["PendingFileRenameOperations", "UpdateExeVolatile"]
    host.reboot()
    wait_until_up(host)
    assert host.file_version(mrxsmb) == "5.1.2600.1276 (xpsp2.030926-1738)"
    assert host.fs.entry(mrxsmb).size == 414976  # type: ignore[union-attr]
    assert host.fs.entry("C:\\WINDOWS\\system32\\drivers\\SET1.tmp") is None
    assert host.reboot_pending_indicators() == []
    assert host.registry.get(SESSION_MANAGER, "PendingFileRenameOperations") is None


def test_reboot_finishes_cbs_installs(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-rtm-x64", reboot_seconds=0.05, pending=["KB938475"])
    key = f"{CBS_KEY}\\Packages\\Package_1_for_KB938475~31bf3856ad364e35~amd64~~6.0.1.0"
    assert host.registry.get(key, "CurrentState").data == 0x60  # type: ignore[union-attr]
    assert host.reboot_pending_indicators() == ["CBS RebootPending"]
    host.reboot()
    wait_until_up(host)
    assert host.registry.get(key, "CurrentState").data == 0x70  # type: ignore[union-attr]
    assert host.file_version("%SystemRoot%\\system32\\drivers\\srv2.sys") == "6.0.6000.20620 (vista_ldr.070615-1730)"
    assert host.fs.entry("C:\\Windows\\WinSxS\\pending.xml") is None
    assert host.reboot_pending_indicators() == []


def test_a_reboot_kills_running_processes(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86", reboot_seconds=0.05)
    waiting = host.start_process("cmd", [], None)  # an interactive cmd waits for stdin
    assert waiting.read()[2] is None
    host.reboot()
    assert waiting.read()[2] == KILLED


def test_a_scheduled_reboot_can_be_cancelled_before_it_starts(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-sp1-x86")
    host.reboot(delay_seconds=30)
    assert host.reboot_scheduled() and host.is_up()
    assert host.cancel_reboot()
    assert not host.reboot_scheduled() and not host.cancel_reboot()


def test_power_off_stays_down_until_power_on(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-sp1-x86", reboot_seconds=0.01)
    host.power_off()
    time.sleep(0.05)
    assert not host.is_up()
    host.power_on()
    assert host.is_up()


# --- overrides that start a host patched ------------------------------------------------------------------


def test_installed_override_starts_the_host_patched(tmp_path: Path) -> None:
    host = make(tmp_path, "2008-sp1-x86", installed=["KB977381"])
    assert host.file_version("%SystemRoot%\\system32\\Dfsrs.exe") == "6.0.6001.22565 (vistasp1_ldr.091117-0945)"
    assert host.reboot_pending_indicators() == []
    hotfixes = {i.properties["HotFixID"] for i in host.wmi_enumerate("root/cimv2", "Win32_QuickFixEngineering")}
    assert "KB977381" in hotfixes


def test_installed_override_must_fit_the_host(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no catalogue package"):
        make(tmp_path, "xp-sp2-x86", installed=["KB828753"])


def test_every_catalogue_package_is_a_valid_file() -> None:
    for name in packages.package_names():
        package = packages.read_manifest(packages.build_package(name), name)
        assert package == packages.catalogue_package(name)


def test_writes_refuse_a_missing_directory_and_in_use_files(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86")
    result = run_command(host, "echo x > C:\\nodir\\f.txt")
    assert (result.exit_code, result.err) == (1, "The system cannot find the path specified.\r\n")
    result = run_command(host, "echo x > C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys")
    assert result.exit_code == 1 and "being used by another process" in result.err
    assert host.file_version("C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys") is not None
