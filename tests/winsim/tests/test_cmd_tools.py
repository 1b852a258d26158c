"""winsim.cmd tools: reg, wmic, shutdown, certutil, cscript, hostname, whoami -- output and exit codes."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from winsim.cmd import WhereClause, WhereError, run_command
from winsim.machine import REG_DWORD, REG_MULTI_SZ, Host, Instance

PARAMS = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"
NOT_FOUND_VISTA = "ERROR: The system was unable to find the specified registry key or value.\r\n"
NOT_FOUND_XP = "\r\nError:  The system was unable to find the specified registry key or value\r\n"


@pytest.fixture
def xp(tmp_path: Path) -> Host:
    return Host.create("xpbox", "xp-sp1-x86", tmp_path / "xp.json")


@pytest.fixture
def w2008(tmp_path: Path) -> Host:
    return Host.create("srv08", "2008-sp2-x64", tmp_path / "w2008.json", reboot_seconds=0.05)


# --- hostname, whoami -------------------------------------------------------------------------------------


def test_hostname_and_whoami(xp: Host, w2008: Host) -> None:
    assert run_command(xp, "hostname").out == "xpbox\r\n"
    assert run_command(w2008, "whoami").out == "srv08\\administrator\r\n"
    assert run_command(xp, "whoami").exit_code == 1  # not on XP (Support Tools)


# --- reg.exe ----------------------------------------------------------------------------------------------


def test_reg_query_value_formats(xp: Host, w2008: Host) -> None:
    assert run_command(w2008, f"reg query {PARAMS} /v EnableSecuritySignature").out == (
        f"\r\n{PARAMS.replace('HKLM', 'HKEY_LOCAL_MACHINE')}\r\n"
        "    EnableSecuritySignature    REG_DWORD    0x1\r\n\r\n")
    assert run_command(xp, f"reg query {PARAMS} /v EnableSecuritySignature").out == (
        "\r\n! REG.EXE VERSION 3.0\r\n\r\n"
        f"{PARAMS.replace('HKLM', 'HKEY_LOCAL_MACHINE')}\r\n    EnableSecuritySignature\tREG_DWORD\t0x1\r\n\r\n")


def test_reg_query_multi_sz_and_binary(xp: Host, w2008: Host) -> None:
    for host in (xp, w2008):
        host.registry.set(PARAMS, "ReconnectableServers", REG_MULTI_SZ, ["computer-1", "computer-2"])
        host.registry.set(PARAMS, "Blob", 3, b"\x01\xab")
    assert "REG_MULTI_SZ\tcomputer-1\\0computer-2\\0\\0\r\n" in run_command(
        xp, f"reg query {PARAMS} /v ReconnectableServers").out
    assert "REG_MULTI_SZ    computer-1\\0computer-2\r\n" in run_command(
        w2008, f"reg query {PARAMS} /v ReconnectableServers").out
    assert "REG_BINARY    01AB\r\n" in run_command(w2008, f"reg query {PARAMS} /v Blob").out


def test_reg_query_key_lists_values_then_subkeys(w2008: Host) -> None:
    out = run_command(w2008, "reg query HKLM\\SYSTEM\\CurrentControlSet\\Services\\DFSR").out
    lines = out.split("\r\n")
    assert lines[1] == "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\DFSR"
    assert "    ImagePath    REG_EXPAND_SZ    %SystemRoot%\\system32\\DFSRs.exe" in lines
    assert lines[-2] == "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\DFSR\\Parameters"


def test_reg_query_key_without_values(xp: Host, w2008: Host) -> None:
    for host in (xp, w2008):
        run_command(host, "reg add HKLM\\SOFTWARE\\Empty\\Child /f")
    assert run_command(w2008, "reg query HKLM\\SOFTWARE\\Empty").out == \
        "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Empty\\Child\r\n"
    assert run_command(xp, "reg query HKLM\\SOFTWARE\\Empty").out == (
        "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Empty\r\n\r\n"
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Empty\\Child\r\n")


def test_reg_errors(xp: Host, w2008: Host) -> None:
    result = run_command(w2008, "reg query HKLM\\SOFTWARE\\Nothing")
    assert (result.exit_code, result.err) == (1, NOT_FOUND_VISTA)
    assert run_command(xp, "reg query HKLM\\SOFTWARE\\Nothing").err == NOT_FOUND_XP
    assert run_command(w2008, f"reg query {PARAMS} /v Missing").err == NOT_FOUND_VISTA
    result = run_command(w2008, "reg query HKXX\\Software")
    assert result.exit_code == 1 and result.err.startswith("ERROR: Invalid key name.")
    result = run_command(w2008, "reg query HKLM\\SAM\\SAM")
    assert (result.exit_code, result.err) == (1, "ERROR: Access is denied.\r\n")
    result = run_command(w2008, "reg frobnicate HKLM")
    assert result.exit_code == 1 and "Invalid syntax" in result.err


def test_reg_add_types_and_messages(xp: Host, w2008: Host) -> None:
    result = run_command(w2008, f"reg add {PARAMS} /v ReconnectTimeout /t REG_DWORD /d 0x78 /f")
    assert (result.exit_code, result.out) == (0, "The operation completed successfully.\r\n")
    assert w2008.registry.get(PARAMS, "reconnecttimeout").data == 120  # type: ignore[union-attr]
    run_command(w2008, f"reg add {PARAMS} /v ReconnectableServers /t REG_MULTI_SZ /d a\\0b.contoso.com\\010.0.0.1 /f")
    value = w2008.registry.get(PARAMS, "ReconnectableServers")
    assert value is not None and (value.type, value.data) == (REG_MULTI_SZ, ["a", "b.contoso.com", "10.0.0.1"])
    result = run_command(xp, f"reg add {PARAMS} /v X /t REG_DWORD /d 5 /f")
    assert (result.exit_code, result.out) == (0, "\r\nThe operation completed successfully\r\n")
    assert run_command(w2008, f"reg add {PARAMS} /v Y /t REG_DWORD /d banana /f").exit_code == 1
    assert run_command(w2008, "reg add HKLM\\SOFTWARE\\New\\Deep /f").exit_code == 0
    assert w2008.registry.open("HKLM\\SOFTWARE\\New\\Deep") is not None


def test_reg_add_without_force_asks(w2008: Host) -> None:
    w2008.registry.set(PARAMS, "Z", REG_DWORD, 1)
    result = run_command(w2008, f"reg add {PARAMS} /v Z /t REG_DWORD /d 2", stdin=b"No\r\n")
    assert result.out.startswith("Value Z exists, overwrite(Yes/No)? ") and result.exit_code == 1
    assert w2008.registry.get(PARAMS, "Z").data == 1  # type: ignore[union-attr]
    result = run_command(w2008, f"reg add {PARAMS} /v Z /t REG_DWORD /d 2", stdin=b"yes\r\n")
    assert result.exit_code == 0 and w2008.registry.get(PARAMS, "Z").data == 2  # type: ignore[union-attr]
    # No input at all (stdin closed): not confirmed.
    assert run_command(w2008, f"reg add {PARAMS} /v Z /t REG_DWORD /d 3", stdin=b"").exit_code == 1


def test_reg_add_to_a_protected_key_is_denied(w2008: Host) -> None:
    cbs = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
    result = run_command(w2008, f"reg add \"{cbs}\" /v Mine /d 1 /f")
    assert (result.exit_code, result.err) == (1, "ERROR: Access is denied.\r\n")


def test_reg_delete(w2008: Host) -> None:
    run_command(w2008, "reg add HKLM\\SOFTWARE\\Tree\\Branch /v Leaf /d x /f")
    assert run_command(w2008, "reg delete HKLM\\SOFTWARE\\Tree\\Branch /v Leaf /f").exit_code == 0
    assert w2008.registry.get("HKLM\\SOFTWARE\\Tree\\Branch", "Leaf") is None
    assert run_command(w2008, "reg delete HKLM\\SOFTWARE\\Tree\\Branch /v Leaf /f").err == NOT_FOUND_VISTA
    result = run_command(w2008, "reg delete HKLM\\SOFTWARE\\Tree", stdin=b"n\r\n")
    assert result.out.startswith("Permanently delete the registry key HKEY_LOCAL_MACHINE\\SOFTWARE\\Tree (Yes/No)?")
    assert w2008.registry.open("HKLM\\SOFTWARE\\Tree") is not None
    # Unlike StdRegProv's DeleteKey, reg.exe removes the whole subtree.
    assert run_command(w2008, "reg delete HKLM\\SOFTWARE\\Tree /f").exit_code == 0
    assert w2008.registry.open("HKLM\\SOFTWARE\\Tree") is None


# --- wmic -------------------------------------------------------------------------------------------------


def test_wmic_table_on_a_pipe(xp: Host) -> None:
    first = run_command(xp, "wmic qfe get ServicePackInEffect,HotFixID")
    assert first.out == ("Please wait while WMIC is being installed.\r\n"
                         "HotFixID  ServicePackInEffect  \r\r\n"
                         "KB823980  SP2                  \r\r\n"
                         "KB824146  SP2                  \r\r\n")
    again = run_command(xp, "wmic qfe where \"HotFixID='KB824146'\" get HotFixID")
    assert again.out == "HotFixID  \r\r\nKB824146  \r\r\n"  # the install banner only appears once


def test_wmic_datafile_version(w2008: Host) -> None:
    out = run_command(w2008, "wmic datafile where name=\"c:\\\\windows\\\\system32\\\\dfsrs.exe\" get version").out
    assert out == "Version                                 \r\r\n6.0.6002.18005 (lh_sp2rtm.090410-1830)  \r\r\n"
    result = run_command(w2008, "wmic datafile where \"name='c:\\windows\\system32\\dfsrs.exe'\" get version")
    assert result.exit_code == 1 and "Description = Invalid query" in result.err  # backslashes must be doubled
    result = run_command(w2008, "wmic datafile get version")
    assert result.exit_code == 1 and result.err.startswith("Node - SRV08\r\nERROR:")


def test_wmic_no_instances_and_list_format(w2008: Host) -> None:
    result = run_command(w2008, "wmic qfe where \"HotFixID='KB999999'\" get HotFixID")
    assert (result.exit_code, result.out, result.err) == (0, "", "No Instance(s) Available.\r\n")
    out = run_command(w2008, "wmic os get Caption,OSArchitecture /format:list").out
    assert out == "\r\r\n\r\r\nCaption=Microsoftr Windows Serverr 2008 Enterprise\r\r\nOSArchitecture=64-bit\r\r\n" \
        "\r\r\n\r\r\n"
    assert run_command(w2008, "wmic os get NoSuchProperty").exit_code == 1


def test_wmic_redirected_to_a_file_writes_utf16(w2008: Host) -> None:
    run_command(w2008, "wmic os get BuildNumber > C:\\os.txt")
    data = w2008.fs.read("C:\\os.txt")
    assert data.startswith(b"\xff\xfe")
    assert data[2:].decode("utf-16-le") == "BuildNumber  \r\n6002         \r\n"


def test_where_clause() -> None:
    inst = Instance("X", {"Name": "c:\\windows\\dfsrs.exe", "FileSize": 10, "Version": None})
    assert WhereClause("name = 'C:\\\\WINDOWS\\\\DFSRS.EXE'").matches(inst)
    assert WhereClause("Name like '%dfsr%' and FileSize >= 10").matches(inst)
    assert WhereClause("not (FileSize < 5) or Name = 'x'").matches(inst)
    assert WhereClause("Version is null").matches(inst)
    assert not WhereClause("FileSize <> 10").matches(inst)
    for bad in ("Name = 'c:\\windows'", "Name = ", "Name = 'open"):
        with pytest.raises(WhereError):
            WhereClause(bad)


# --- shutdown ---------------------------------------------------------------------------------------------


def test_shutdown_schedules_and_aborts(w2008: Host) -> None:
    assert run_command(w2008, "shutdown /r /t 60").exit_code == 0
    assert w2008.reboot_scheduled() and w2008.is_up()
    result = run_command(w2008, "shutdown -r -t 30")
    assert (result.exit_code, result.err) == (1190, "A system shutdown has already been scheduled.(1190)\r\n")
    assert run_command(w2008, "shutdown /a").exit_code == 0
    result = run_command(w2008, "shutdown /a")
    assert result.exit_code == 1116
    assert result.err == "Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n"
    assert run_command(w2008, "shutdown /t 5").exit_code == 1  # no action: usage


def test_shutdown_now_reboots(w2008: Host) -> None:
    w2008.reboot_seconds = 0.5
    before = w2008.boot_time
    run_command(w2008, "shutdown /r /t 0 /f")
    assert not w2008.is_up()
    deadline = time.monotonic() + 5
    while not w2008.is_up():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert w2008.boot_time > before


def test_shutdown_delay_limit_depends_on_the_version(tmp_path: Path) -> None:
    r2 = Host.create("r2", "2008r2-rtm-x64", tmp_path / "r2.json")
    xp = Host.create("xp", "xp-sp2-x86", tmp_path / "xp.json")
    assert run_command(xp, "shutdown /r /t 601").exit_code == 1
    assert run_command(r2, "shutdown /r /t 601").exit_code == 0


# --- certutil ---------------------------------------------------------------------------------------------


def test_certutil_decode(w2008: Host) -> None:
    payload = bytes(range(256)) * 3
    text = base64.b64encode(payload).decode()
    chunks = [text[i:i + 76] for i in range(0, len(text), 76)]
    for chunk in chunks:
        assert run_command(w2008, f"echo {chunk}>> C:\\Windows\\Temp\\p.b64").exit_code == 0
    result = run_command(w2008, "certutil -decode C:\\Windows\\Temp\\p.b64 C:\\Windows\\Temp\\p.bin")
    assert result.exit_code == 0
    assert result.out.endswith(
        f"Output Length = {len(payload)}\r\nCertUtil: -decode command completed successfully.\r\n")
    assert w2008.fs.read("C:\\Windows\\Temp\\p.bin") == payload


def test_certutil_errors(w2008: Host) -> None:
    run_command(w2008, "echo aGk=> C:\\a.b64 & echo x> C:\\out.bin & echo !!notbase64> C:\\bad.b64")
    result = run_command(w2008, "certutil -decode C:\\a.b64 C:\\out.bin")
    assert (result.exit_code, result.out) == (-2147024816, "CertUtil: -decode command FAILED: 0x80070050 (WIN32: 80)"
                                              "\r\nCertUtil: The file exists.\r\n")
    assert run_command(w2008, "certutil -f -decode C:\\a.b64 C:\\out.bin").exit_code == 0
    assert w2008.fs.read("C:\\out.bin") == b"hi"
    assert run_command(w2008, "certutil -decode C:\\none.b64 C:\\n.bin").exit_code == -2147024894
    assert run_command(w2008, "certutil -decode C:\\bad.b64 C:\\b.bin").out.endswith("CertUtil: Bad Data.\r\n")


def test_certutil_encode_and_hashfile(w2008: Host) -> None:
    run_command(w2008, "echo hello> C:\\h.txt")
    assert run_command(w2008, "certutil -encode C:\\h.txt C:\\h.b64").exit_code == 0
    assert base64.b64decode("".join(w2008.fs.read("C:\\h.b64").decode().splitlines()[1:-1])) == b"hello\r\n"
    out = run_command(w2008, "certutil -hashfile C:\\h.txt SHA1").out
    assert out.split("\r\n")[1] == " ".join(f"{b:02x}" for b in hashlib.sha1(b"hello\r\n").digest())  # noqa: S324


def test_certutil_exists_only_from_2003(tmp_path: Path) -> None:
    for profile, present in (("xp-sp2-x86", False), ("nt4-tse-sp6-x86", False), ("2003r2-sp2-x86", True)):
        host = Host.create("h", profile, tmp_path / f"{profile}.json")
        result = run_command(host, "certutil -decode C:\\a C:\\b")
        assert ("is not recognized" in result.err) != present


# --- cscript ----------------------------------------------------------------------------------------------

DECODER = """Set fso = CreateObject("Scripting.FileSystemObject")
Set doc = CreateObject("Msxml2.DOMDocument")
Set node = doc.createElement("b64")
node.dataType = "bin.base64"
node.Text = fso.OpenTextFile(WScript.Arguments(0), 1).ReadAll
Set stream = CreateObject("ADODB.Stream")
stream.Type = 1
stream.Open
stream.Write node.nodeTypedValue
stream.SaveToFile WScript.Arguments(1), 2
"""


def test_cscript_base64_decoder(xp: Host) -> None:
    xp.fs.write("C:\\WINDOWS\\Temp\\d.vbs", DECODER.replace("\n", "\r\n").encode())
    payload = b"MZ\x90\x00" + bytes(range(200))
    xp.fs.write("C:\\WINDOWS\\Temp\\p.b64", base64.encodebytes(payload))
    temp = "C:\\WINDOWS\\Temp"
    result = run_command(xp, f"cscript //nologo {temp}\\d.vbs {temp}\\p.b64 {temp}\\p.exe")
    assert (result.exit_code, result.out, result.err) == (0, "", "")
    assert xp.fs.read("C:\\WINDOWS\\Temp\\p.exe") == payload
    banner = run_command(xp, "cscript C:\\WINDOWS\\Temp\\d.vbs C:\\WINDOWS\\Temp\\p.b64 C:\\WINDOWS\\Temp\\p.exe")
    assert banner.out.startswith("Microsoft (R) Windows Script Host Version 5.6\r\n")


def test_cscript_refuses_other_scripts_and_reports_errors(xp: Host) -> None:
    xp.fs.write("C:\\other.vbs", b'WScript.Echo "hello"\r\n')
    result = run_command(xp, "cscript //nologo C:\\other.vbs")
    assert result.exit_code == 1 and result.err.startswith("winsim: C:\\other.vbs: cscript only runs")
    assert run_command(xp, "cscript //nologo C:\\missing.vbs").err == \
        "Input Error: Can not find script file \"C:\\missing.vbs\".\r\n"
    xp.fs.write("C:\\d.vbs", DECODER.replace(", 2", "").encode())
    xp.fs.write("C:\\p.b64", b"aGk=")
    xp.fs.write("C:\\exists.bin", b"old")
    result = run_command(xp, "cscript //nologo C:\\d.vbs C:\\p.b64 C:\\exists.bin")
    assert result.exit_code == 1 and "ADODB.Stream: Write to file failed." in result.err
    assert xp.fs.read("C:\\exists.bin") == b"old"
