"""winsim.powershell: powershell.exe as Ansible's winrm connection calls it for raw tasks, and nothing more."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ansible.plugins.loader import shell_loader

from winsim import powershell
from winsim.cmd import run_command
from winsim.machine import Host

SESSION_MANAGER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
PARAMS = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"


@pytest.fixture
def w2008(tmp_path: Path) -> Host:
    return Host.create("srv08", "2008-sp2-x64", tmp_path / "w2008.json", features={"powershell": "2.0"})


def ansible_raw(host: Host, script: str) -> tuple[str, str, int | None]:
    """Start the process exactly as ansible-core's winrm connection does for a raw task."""
    shell = shell_loader.get("powershell")
    parts = shell._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
    process = host.start_process(parts[0], parts[1:], None)
    out, err, code = process.read()
    return out.decode("cp437"), err.decode("cp437"), code


def test_raw_reg_query_gives_what_reg_gives(w2008: Host) -> None:
    direct = run_command(w2008, f'reg query "{PARAMS}" /v EnableSecuritySignature')
    out, err, code = ansible_raw(w2008, f'reg query "{PARAMS}" /v EnableSecuritySignature')
    assert (out, err, code) == (direct.out, direct.err, 0)
    assert "REG_DWORD    0x1" in out


def test_raw_wmic_with_quoted_where_and_property_list(w2008: Host) -> None:
    path = "C:\\\\Windows\\\\system32\\\\drivers\\\\mrxsmb.sys"
    out, _, code = ansible_raw(w2008, f"wmic datafile where \"Name='{path}'\" get \"FileSize,Version\"")
    assert code == 0
    assert out.split()[:2] == ["FileSize", "Version"]


def test_a_bare_comma_list_is_powershell_syntax_not_a_native_argument(w2008: Host) -> None:
    # To PowerShell `get FileSize,Version` is an array argument: winsim refuses rather than guess.
    out, err, code = ansible_raw(w2008, "wmic os get Caption,Version")
    assert (out, code) == ("", 1)
    assert err.startswith("winsim: powershell.exe: PowerShell syntax (',')")


def test_cmd_c_runs_a_whole_cmd_line(w2008: Host) -> None:
    out, _, code = ansible_raw(w2008, 'cmd /c "wmic os get Version /value & wmic computersystem get SystemType /value"')
    assert code == 0
    assert "Version=6.0.6002" in out and "SystemType=x64-based PC" in out


def test_exit_code_is_0_or_1_as_for_powershell_command(w2008: Host) -> None:
    assert ansible_raw(w2008, "cmd /c exit 5")[2] == 1
    assert run_command(w2008, "cmd /c exit 5").exit_code == 5
    _, err, code = ansible_raw(w2008, f'reg query "{SESSION_MANAGER}" /v NoSuchValue')
    assert code == 1
    assert "unable to find" in err


@pytest.mark.parametrize("script", [
    "reg query HKLM | findstr SOFTWARE",
    "$x = 1",
    "reg query HKLM; hostname",
    "& reg query HKLM",
    "reg query HKLM > out.txt",
    'echo "a $env:PATH"',
    "reg query\nhostname",
])
def test_powershell_syntax_is_refused_not_guessed(w2008: Host, script: str) -> None:
    out, err, code = ansible_raw(w2008, script)
    assert (out, code) == ("", 1)
    assert err.startswith("winsim: powershell.exe: ")


def test_cmdlets_are_refused_and_unknown_words_fail_as_powershell_says(w2008: Host) -> None:
    _, err, code = ansible_raw(w2008, "Get-ItemProperty HKLM:\\SOFTWARE")
    assert code == 1
    assert err == "winsim: powershell.exe: cmdlets are not simulated (Get-ItemProperty)\r\n"
    _, err, code = ansible_raw(w2008, "nosuchtool /x")
    assert code == 1
    assert err.startswith("The term 'nosuchtool' is not recognized as the name of a cmdlet")
    assert "CommandNotFoundException" in err


def test_a_script_on_stdin_is_not_simulated(w2008: Host) -> None:
    process = w2008.start_process("PowerShell", ["-NoProfile", "-NonInteractive", "-Command", "-"], None)
    out, err, code = process.read()
    assert out == b""
    assert code == 1
    assert b"-Command -" in err


def test_without_powershell_the_command_is_not_recognized(tmp_path: Path) -> None:
    xp = Host.create("xp", "xp-sp1-x86", tmp_path / "xp.json")
    vista = Host.create("vista", "vista-rtm-x86", tmp_path / "vista.json")
    for host in (xp, vista):
        out, err, code = ansible_raw(host, "hostname")
        assert (out, code) == ("", 1)
        assert err.startswith("'PowerShell' is not recognized as an internal or external command")


def test_2008_r2_has_it_built_in(tmp_path: Path) -> None:
    r2 = Host.create("r2", "2008r2-rtm-x64", tmp_path / "r2.json")
    assert ansible_raw(r2, "hostname") == ("r2\r\n", "", 0)


def test_only_version_2_is_simulated(tmp_path: Path) -> None:
    host = Host.create("v1", "xp-sp2-x86", tmp_path / "v1.json", features={"powershell": "1.0"})
    assert not powershell.installed(host)
    assert ansible_raw(host, "hostname")[2] == 1


def test_tokens_and_the_native_command_line() -> None:
    assert powershell.tokenize("reg query 'HKLM\\A B' /v \"It\"\"s\"") == ["reg", "query", "HKLM\\A B", "/v", 'It"s']
    assert powershell.tokenize("wmic qfe where \"HotFixID='KB1'\" get HotFixID # a comment") == [
        "wmic", "qfe", "where", "HotFixID='KB1'", "get", "HotFixID"]
    assert powershell.native_arguments(["query", "HKLM\\A B", "/v", "x"]) == ' query "HKLM\\A B" /v x'
    assert powershell.native_arguments([""]) == ' ""'


def test_encoded_command_is_utf16le_base64() -> None:
    encoded = base64.b64encode("reg query HKLM".encode("utf-16-le")).decode()
    assert powershell.decode(encoded) == "reg query HKLM"
    with pytest.raises(powershell.NotSimulated):
        powershell.decode("not base64!")
