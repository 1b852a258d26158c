"""The NT 4.0 face against independent clients: Samba's smbclient and net (Debian), impacket's SMB client.

Every write is checked in winsim's machine state (``Endpoint.host()``), not only in what the client prints.
Samba 4.17 talks to an NT 4.0 server only when told to, as it would to a real one: SMB1 (``client min
protocol=NT1``), no SPNEGO (NT 4.0 has no extended security) and, for ``net rpc``, no mandatory IPC signing
(NT 4.0 servers do not sign unless configured to).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from impacket import smb
from impacket.dcerpc.v5 import rrp, scmr, srvs, transport
from impacket.dcerpc.v5.dtypes import NULL
from impacket.smbconnection import SessionError, SMBConnection

from winsim import packages, pe
from winsim.testing import Endpoint, Fleet, HostSpec, running_fleet

pytestmark = pytest.mark.skipif(shutil.which("smbclient") is None or shutil.which("net") is None,
                                reason="Debian smbclient / samba-common-bin not installed (make setup)")

NT1 = ["--option=client min protocol=NT1", "--option=client use spnego=no"]
IPC = [*NT1, "--option=client ipc min protocol=NT1", "--option=client ipc signing=auto"]
CURRENT_VERSION = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
SESSION_MANAGER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
AUTH_DIR = Path(tempfile.mkdtemp(prefix="winsim-nt4-auth-"))


@pytest.fixture(scope="module", autouse=True)
def _remove_auth_files() -> Iterator[None]:
    yield
    shutil.rmtree(AUTH_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hosts = [HostSpec("nt4", "nt4-tse-sp6-x86", {"reboot_seconds": 2})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("nt4fleet")) as running:
        yield running


@pytest.fixture
def ep(fleet: Fleet) -> Iterator[Endpoint]:
    endpoint = fleet.hosts["nt4"]
    endpoint.set_faults()
    endpoint.reset_counters()
    yield endpoint
    endpoint.set_faults()


def run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def auth_file(ep: Endpoint, password: str | None = None) -> str:
    """A Samba authentication file, so that no password is on a command line or in a failure message."""
    path = AUTH_DIR / f"{ep.name}-{abs(hash(password))}.auth"
    path.write_text(f"username = {ep.username}\npassword = {ep.password if password is None else password}\n"
                    "domain = WORKGROUP\n", encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def smbclient(ep: Endpoint, share: str, commands: str, *, password: str | None = None,
              extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return run(["smbclient", f"//127.0.0.1/{share}", "-p", str(ep.smb_port), "-A", auth_file(ep, password), *NT1,
                *extra, "-c", commands])


def net_rpc(ep: Endpoint, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["net", "rpc", *args, "-S", "127.0.0.1", "-p", str(ep.smb_port), "-A", auth_file(ep), *IPC])


def impacket_rpc(ep: Endpoint, pipe: str, interface: bytes) -> Any:
    """A DCE/RPC binding over the named pipe, after impacket's default negotiation (it offers SMB2 as well
    and settles for NT LM 0.12)."""
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=ep.smb_port)
    conn.login(ep.username, ep.password)
    dce = transport.SMBTransport("127.0.0.1", ep.smb_port, pipe, smb_connection=conn).get_dce_rpc()
    dce.connect()
    dce.bind(interface)
    return dce


def by_action(ep: Endpoint) -> dict[str, int]:
    counts: dict[str, int] = ep.counters()["by_action"]
    return counts


def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def refused(port: int | None) -> bool:
    assert port is not None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


# --- files --------------------------------------------------------------------------------------------------


def test_smbclient_lists_and_reads_the_pe_file(ep: Endpoint, tmp_path: Path) -> None:
    local = tmp_path / "mpr.dll"
    # Mixed case on purpose: Windows names are case-insensitive.
    result = smbclient(ep, "ADMIN$", f"ls; cd SYSTEM32; ls mpr.dll; get MPR.DLL {local}")
    assert result.returncode == 0, result.stderr
    assert "system32" in result.stdout and "Temp" in result.stdout
    listing = next(line for line in result.stdout.splitlines() if "mpr.dll" in line)
    assert "59664" in listing and "Nov 23" in listing and "1999" in listing
    machine = ep.host()
    assert local.read_bytes() == machine.fs.read("C:\\WINNT\\system32\\mpr.dll")
    info = pe.read_version_info(local.read_bytes())
    assert info is not None and info.fixed_version == "4.0.1381.33361"
    counts = by_action(ep)
    assert counts["SMB:Negotiate"] == 1 and counts["SMB:SessionSetup"] == 1 and counts["SMB:TreeConnect"] == 1
    assert counts["SMB:Read"] >= 1 and counts["SMB:Trans2.FindFirst2"] >= 2
    assert ep.counters()["auth_requests"] == 1


def test_c_share_is_the_drive(ep: Endpoint) -> None:
    result = smbclient(ep, "C$", "ls WINNT\\system32\\mpr.dll")
    assert result.returncode == 0, result.stderr
    assert "mpr.dll" in result.stdout


def test_ranged_reads_of_the_version_resource(ep: Endpoint) -> None:
    """What a version check does: open, read pieces at offsets, close -- here through impacket's SMB1 client."""
    conn = SMBConnection("*SMBSERVER", "127.0.0.1", sess_port=ep.smb_port, preferredDialect=smb.SMB_DIALECT)
    conn.login(ep.username, ep.password)
    tid = conn.connectTree("ADMIN$")
    # Read access only: a loaded DLL opened for writing is a sharing violation (impacket asks for both).
    fid = conn.openFile(tid, "\\system32\\Mpr.dll", desiredAccess=0x1 | 0x80, shareMode=0x1)
    head = conn.readFile(tid, fid, 0, 64)
    pe_offset = struct.unpack("<L", head[0x3C:0x40])[0]
    assert conn.readFile(tid, fid, pe_offset, 4) == b"PE\x00\x00"
    whole = b"".join(conn.readFile(tid, fid, offset, 4096) for offset in range(0, 59664, 4096))
    conn.closeFile(tid, fid)
    conn.logoff()
    assert whole == ep.host().fs.read("C:\\WINNT\\system32\\mpr.dll")
    assert by_action(ep)["SMB:Read"] >= 16


def test_put_mkdir_delete_reach_the_machine(ep: Endpoint, tmp_path: Path) -> None:
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 300)
    result = smbclient(ep, "ADMIN$", f"mkdir Temp\\winsim; put {local} Temp\\winsim\\Payload.bin")
    assert result.returncode == 0, result.stderr
    machine = ep.host()
    entry = machine.fs.entry("C:\\WINNT\\Temp\\winsim\\Payload.bin")
    assert entry is not None and entry.size == 76800 and entry.path.endswith("\\winsim\\Payload.bin")
    assert machine.fs.read(entry.path) == local.read_bytes()
    result = smbclient(ep, "ADMIN$", "del TEMP\\WINSIM\\payload.bin; rmdir Temp\\winsim")
    assert result.returncode == 0, result.stderr
    machine = ep.host()
    assert machine.fs.entry("C:\\WINNT\\Temp\\winsim\\Payload.bin") is None
    assert not machine.fs.is_dir("C:\\WINNT\\Temp\\winsim")
    counts = by_action(ep)
    assert counts["SMB:Write"] >= 1 and counts["SMB:Delete"] == 1 and counts["SMB:DeleteDirectory"] == 1


def test_a_file_in_use_cannot_be_replaced(ep: Endpoint, tmp_path: Path) -> None:
    local = tmp_path / "mpr.dll"
    local.write_bytes(b"not a dll")
    result = smbclient(ep, "ADMIN$", f"put {local} system32\\mpr.dll")
    assert "NT_STATUS_SHARING_VIOLATION" in result.stdout + result.stderr
    assert ep.host().fs.entry("C:\\WINNT\\system32\\mpr.dll").size == 59664


# --- logon ----------------------------------------------------------------------------------------------


def test_ntlmv1_and_ntlmv2_logons(ep: Endpoint) -> None:
    v2 = smbclient(ep, "IPC$", "exit")
    v1 = smbclient(ep, "IPC$", "exit", extra=("--option=client ntlmv2 auth=no",))
    assert v2.returncode == 0, v2.stderr
    assert v1.returncode == 0, v1.stderr
    assert ep.counters()["auth_requests"] == 2


def test_wrong_password_is_a_logon_failure(ep: Endpoint) -> None:
    for extra in ((), ("--option=client ntlmv2 auth=no",)):
        result = smbclient(ep, "ADMIN$", "ls", password="not-the-password", extra=extra)
        assert result.returncode != 0
        assert "NT_STATUS_LOGON_FAILURE" in result.stdout + result.stderr
    with pytest.raises(SessionError) as failure:
        SMBConnection("*SMBSERVER", "127.0.0.1", sess_port=ep.smb_port).login("nobody", ep.password)
    assert failure.value.getErrorCode() == 0xC000006D
    assert by_action(ep).get("SMB:TreeConnect", 0) == 0


def test_auth_fail_fault(ep: Endpoint) -> None:
    ep.set_faults(auth_fail=1)
    refused_once = smbclient(ep, "IPC$", "exit")
    assert "NT_STATUS_LOGON_FAILURE" in refused_once.stdout + refused_once.stderr
    assert smbclient(ep, "IPC$", "exit").returncode == 0


# --- winreg ---------------------------------------------------------------------------------------------


def test_net_rpc_registry_reads(ep: Endpoint) -> None:
    result = net_rpc(ep, "registry", "enumerate", CURRENT_VERSION)
    assert result.returncode == 0, result.stderr
    assert "Keyname   = Hotfix" in result.stdout
    assert 'Valuename  = CurrentBuildNumber\nType       = REG_SZ\nValue      = "1381"' in result.stdout
    result = net_rpc(ep, "registry", "getvalue", CURRENT_VERSION, "CSDVersion")
    assert result.returncode == 0 and "Service Pack 6" in result.stdout
    counts = by_action(ep)
    assert counts["RPC:winreg.OpenLocalMachine"] >= 2 and counts["RPC:winreg.OpenKey"] >= 2
    assert counts["RPC:winreg.EnumKey"] >= 1 and counts["RPC:winreg.EnumValue"] >= 14
    assert counts["RPC:winreg.QueryValue"] >= 1 and counts["RPC:winreg.QueryInfoKey"] >= 1


def test_net_rpc_registry_writes_reach_the_machine(ep: Endpoint) -> None:
    key = "HKLM\\SOFTWARE\\WinsimTest"
    assert net_rpc(ep, "registry", "createkey", key).returncode == 0
    assert net_rpc(ep, "registry", "setvalue", key, "Level", "dword", "7").returncode == 0
    assert net_rpc(ep, "registry", "setvalue", key, "Name", "sz", "Q253729").returncode == 0
    machine = ep.host()
    assert machine.registry.get(key, "Level").data == 7
    assert machine.registry.get(key, "Name").data == "Q253729"
    assert net_rpc(ep, "registry", "deletevalue", key, "Name").returncode == 0
    assert ep.host().registry.get(key, "Name") is None
    missing = net_rpc(ep, "registry", "getvalue", key, "Name")
    assert missing.returncode != 0 and "registry_queryvalue failed" in missing.stderr
    counts = by_action(ep)
    assert counts["RPC:winreg.CreateKey"] == 1 and counts["RPC:winreg.SetValue"] == 2
    assert counts["RPC:winreg.DeleteValue"] == 1


def test_every_value_type_round_trips_through_impacket_rrp(ep: Endpoint) -> None:
    """net cannot write REG_MULTI_SZ and friends ("not implemented"); impacket's MS-RRP client can."""
    dce = impacket_rpc(ep, r"\winreg", rrp.MSRPC_UUID_RRP)
    hklm = rrp.hOpenLocalMachine(dce)["phKey"]
    key = rrp.hBaseRegCreateKey(dce, hklm, "SOFTWARE\\WinsimTypes")["phkResult"]
    values: list[tuple[str, int, object, object]] = [
        ("Sz", rrp.REG_SZ, "text\x00", "text"), ("Expand", rrp.REG_EXPAND_SZ, "%SystemRoot%\x00", "%SystemRoot%"),
        ("Multi", rrp.REG_MULTI_SZ, "a\x00b\x00\x00", ["a", "b"]), ("Dword", rrp.REG_DWORD, 0x12345678, 0x12345678),
        ("Qword", rrp.REG_QWORD, 2**40 + 1, 2**40 + 1), ("Binary", rrp.REG_BINARY, b"\x00\x01\xff", b"\x00\x01\xff"),
        ("None", rrp.REG_NONE, b"", b""),
    ]
    for name, type_, data, _ in values:
        rrp.hBaseRegSetValue(dce, key, name, type_, data)
    assert rrp.hBaseRegQueryValue(dce, key, "Multi")[1] == "a\x00b\x00\x00"
    assert rrp.hBaseRegQueryValue(dce, key, "Qword") == (rrp.REG_QWORD, 2**40 + 1)
    assert rrp.hBaseRegEnumValue(dce, key, 2)["lpValueNameOut"] == "Multi\x00"
    request = rrp.BaseRegQueryValue()
    request["hKey"], request["lpValueName"] = key, "Sz\x00"
    request["lpData"], request["lpcbData"], request["lpcbLen"] = b" " * 4, 4, 0
    with pytest.raises(rrp.DCERPCSessionError) as too_small:
        dce.request(request)
    assert too_small.value.get_error_code() == 234  # ERROR_MORE_DATA, with the size needed
    assert too_small.value.get_packet()["lpcbData"] == len("text\x00".encode("utf-16le"))
    with pytest.raises(rrp.DCERPCSessionError) as bad_type:
        rrp.hBaseRegSetValue(dce, key, "Link", 6, b"x\x00")
    assert bad_type.value.get_error_code() == 87  # REG_LINK is not modelled
    rrp.hBaseRegCloseKey(dce, key)
    dce.disconnect()
    registry = ep.host().registry
    for name, type_, _, stored in values:
        value = registry.get("HKLM\\SOFTWARE\\WinsimTypes", name)
        assert value is not None and (value.type, value.data) == (type_, stored), name
    assert by_action(ep)["RPC:winreg.SetValue"] == len(values) + 1


def test_query_info_key_gives_each_keys_last_write_time(ep: Endpoint) -> None:
    """Windows keeps a write time per key (RegQueryInfoKey's lpftLastWriteTime): keys the host was set up
    with predate its boot; a key whose value changes gets the time of the change."""
    def written(dce: Any, key: Any) -> float:
        stamp = rrp.hBaseRegQueryInfoKey(dce, key)["lpftLastWriteTime"]
        ticks = (stamp["dwHighDateTime"] << 32) | stamp["dwLowDateTime"]
        return ticks / 10_000_000 - 11644473600  # FILETIME -> Unix time

    boot = ep.host().boot_time.timestamp()
    dce = impacket_rpc(ep, r"\winreg", rrp.MSRPC_UUID_RRP)
    hklm = rrp.hOpenLocalMachine(dce)["phKey"]
    parameters = rrp.hBaseRegOpenKey(dce, hklm, "SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters",
                                     samDesired=rrp.MAXIMUM_ALLOWED)["phkResult"]
    assert written(dce, parameters) <= boot
    before = time.time()
    rrp.hBaseRegSetValue(dce, parameters, "KbfixStamp", rrp.REG_DWORD, 1)
    assert before - 1 <= written(dce, parameters) <= time.time() + 1
    assert written(dce, parameters) > boot
    rrp.hBaseRegCloseKey(dce, parameters)
    dce.disconnect()


def test_reset_after_a_registry_write_keeps_the_write(ep: Endpoint) -> None:
    key = "HKLM\\SOFTWARE\\WinsimReset"
    assert net_rpc(ep, "registry", "createkey", key).returncode == 0
    ep.set_faults(reset_after={"action": "RPC:winreg.SetValue"})
    result = net_rpc(ep, "registry", "setvalue", key, "Applied", "dword", "1")
    assert "NT_STATUS_CONNECTION_DISCONNECTED" in result.stderr  # net still exits 0 after a failed setvalue
    assert ep.host().registry.get(key, "Applied").data == 1
    ep.set_faults(reset_before={"action": "RPC:winreg.SetValue"})
    assert "registry_setvalue failed" in net_rpc(ep, "registry", "setvalue", key, "NotApplied", "dword", "1").stderr
    assert ep.host().registry.get(key, "NotApplied") is None


def test_reset_before_tree_connect(ep: Endpoint) -> None:
    ep.set_faults(reset_before={"action": "SMB:TreeConnect"})
    result = smbclient(ep, "ADMIN$", "ls")
    assert result.returncode != 0
    assert smbclient(ep, "ADMIN$", "ls").returncode == 0  # the rule fired once


# --- svcctl and the hotfix ------------------------------------------------------------------------------


def test_service_runs_a_batch_file(ep: Endpoint, tmp_path: Path) -> None:
    """The collection's way of running a command: a batch file in ADMIN$\\Temp, run by a service as
    ``%COMSPEC% /C``, records the exit code with an ``if errorlevel`` ladder."""
    batch = tmp_path / "run.bat"
    batch.write_bytes(b"@echo off\r\nfind\r\nif errorlevel 2 goto two\r\nif errorlevel 1 goto one\r\n"
                      b"echo rc=0> %SystemRoot%\\Temp\\run.out\r\ngoto end\r\n"
                      b":two\r\necho rc=2> %SystemRoot%\\Temp\\run.out\r\ngoto end\r\n"
                      b":one\r\necho rc=1> %SystemRoot%\\Temp\\run.out\r\n:end\r\n")
    assert smbclient(ep, "ADMIN$", f"put {batch} Temp\\run.bat").returncode == 0
    created = net_rpc(ep, "service", "create", "WinsimRun", "winsim run",
                      "%COMSPEC% /C %SystemRoot%\\Temp\\run.bat")
    assert created.returncode == 0, created.stdout + created.stderr
    key = ep.host().registry.open("HKLM\\SYSTEM\\CurrentControlSet\\Services\\WinsimRun")
    assert key is not None and key.values["imagepath"].type == 2
    started = net_rpc(ep, "service", "start", "WinsimRun")
    assert started.returncode != 0
    assert "WERR_SERVICE_REQUEST_TIMEOUT" in started.stdout + started.stderr
    assert ep.host().fs.read("C:\\WINNT\\Temp\\run.out") == b"rc=2\r\n"
    # The client reads the result file back over ADMIN$ and deletes it, with the batch file.
    fetched = tmp_path / "run.out"
    assert smbclient(ep, "ADMIN$", f"get Temp\\run.out {fetched}; del Temp\\run.out; del Temp\\run.bat").returncode == 0
    assert fetched.read_bytes() == b"rc=2\r\n"
    assert ep.host().fs.entry("C:\\WINNT\\Temp\\run.out") is None
    deleted = net_rpc(ep, "service", "delete", "WinsimRun")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert ep.host().registry.open("HKLM\\SYSTEM\\CurrentControlSet\\Services\\WinsimRun") is None
    counts = by_action(ep)
    assert counts["RPC:svcctl.CreateServiceW"] == 1 and counts["RPC:svcctl.StartServiceW"] == 1
    assert counts["RPC:svcctl.DeleteService"] == 1 and counts["RPC:svcctl.OpenSCManagerW"] >= 3


def test_kb253729_through_admin_share_service_and_remote_restart(ep: Endpoint, tmp_path: Path) -> None:
    package = packages.write_package("Q253729i.exe", tmp_path)
    assert smbclient(ep, "ADMIN$", f"put {package} Temp\\Q253729i.exe").returncode == 0
    assert net_rpc(ep, "service", "create", "Q253729", "Q253729",
                   "%SystemRoot%\\Temp\\Q253729i.exe -m -q -z").returncode == 0
    started = net_rpc(ep, "service", "start", "Q253729")
    assert "WERR_SERVICE_REQUEST_TIMEOUT" in started.stdout + started.stderr
    assert net_rpc(ep, "service", "delete", "Q253729").returncode == 0
    machine = ep.host()
    hotfix = machine.registry.open("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\Q253729")
    assert hotfix is not None
    pending = machine.registry.get(SESSION_MANAGER, "PendingFileRenameOperations")
    assert pending is not None and any("mpr.dll" in item.casefold() for item in pending.data)
    assert machine.fs.is_dir("C:\\WINNT\\$NtUninstallQ253729$")
    assert machine.file_version("%SystemRoot%\\system32\\mpr.dll") == "4.0.1381.33361"  # in use until the boot
    boot_id = machine.boot_id

    restart = net_rpc(ep, "shutdown", "-r", "-t", "1", "-C", "KB253729")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    wait_until(lambda: refused(ep.smb_port))
    assert refused(ep.smb_netbios_port)
    wait_until(lambda: not refused(ep.smb_port))
    machine = ep.host()
    assert machine.boot_id == boot_id + 1
    assert machine.registry.get(SESSION_MANAGER, "PendingFileRenameOperations") is None
    assert machine.file_version("%SystemRoot%\\system32\\mpr.dll") == "4.0.1381.33418"
    result = smbclient(ep, "ADMIN$", "ls system32\\mpr.dll")
    assert "60176" in result.stdout and "Feb  8" in result.stdout
    assert by_action(ep)["RPC:winreg.InitiateSystemShutdown"] == 1


# --- listeners ------------------------------------------------------------------------------------------


def test_port_closed_fault_refuses_connections(ep: Endpoint) -> None:
    ep.set_faults(port_closed=True)
    wait_until(lambda: refused(ep.smb_port))
    ep.set_faults()
    wait_until(lambda: not refused(ep.smb_port))
    assert smbclient(ep, "IPC$", "exit").returncode == 0


def _session_request(port: int, called: str) -> tuple[socket.socket, bytes]:
    def encode(name: str) -> bytes:
        padded = name.ljust(15)[:15].encode() + b"\x20"
        return b"\x20" + bytes(b for c in padded for b in (0x41 + (c >> 4), 0x41 + (c & 0xF))) + b"\x00"

    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    trailer = encode(called) + encode("CLIENT")
    sock.sendall(struct.pack(">BBH", 0x81, 0, len(trailer)) + trailer)
    return sock, sock.recv(16)


def test_netbios_session_service(ep: Endpoint) -> None:
    port = ep.smb_netbios_port
    assert port is not None
    sock, answer = _session_request(port, "WRONGNAME")
    assert answer == b"\x83\x00\x00\x01\x82"  # negative response: called name not present
    sock.close()
    for called in ("*SMBSERVER", "NT4"):
        sock, answer = _session_request(port, called)
        assert answer == b"\x82\x00\x00\x00"
        negotiate = smb.NewSMBPacket()
        command = smb.SMBCommand(smb.SMB.SMB_COM_NEGOTIATE)
        command["Data"] = b"\x02NT LM 0.12\x00"
        negotiate.addCommand(command)
        data = negotiate.getData()
        sock.sendall(struct.pack(">BBH", 0, 0, len(data)) + data)
        header = sock.recv(4)
        assert header[0] == 0
        reply = sock.recv(struct.unpack(">H", header[2:])[0])
        assert reply[:4] == b"\xffSMB" and reply[4] == smb.SMB.SMB_COM_NEGOTIATE
        sock.close()


def test_inventory_describes_the_smb_host(fleet: Fleet, tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(fleet.inventory(tmp_path / "inventory.yml").read_text(encoding="utf-8"))
    host_vars = data["all"]["children"]["winsim_nt4_tse_sp6_x86"]["hosts"]["nt4"]
    ep = fleet.hosts["nt4"]
    assert host_vars == {
        "ansible_host": "127.0.0.1", "ansible_user": ep.username, "ansible_password": ep.password,
        "kbfix_transport": "smb", "kbfix_smb_port": ep.smb_port, "kbfix_smb_session": "direct",
        "winsim_profile": "nt4-tse-sp6-x86",
    }
    assert ep.transport == "smb"


def test_reboot_after_requests_takes_the_host_down(ep: Endpoint) -> None:
    boot_id = ep.host().boot_id
    ep.set_faults(reboot_after_requests=1)
    smbclient(ep, "IPC$", "exit")  # its first request (Negotiate) is answered, then the host restarts
    wait_until(lambda: refused(ep.smb_port))
    assert not ep.run_control("is_up")["up"]
    wait_until(lambda: not refused(ep.smb_port))
    assert ep.host().boot_id == boot_id + 1
    assert smbclient(ep, "IPC$", "exit").returncode == 0


def test_a_connection_open_when_the_host_goes_down_is_not_answered_again(ep: Endpoint) -> None:
    """The request right after the host went down is reset, on a connection that was logged on before: the
    face must not answer from a host that is down while its supervisor has yet to notice (it polls)."""
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=ep.smb_port, preferredDialect=smb.SMB_DIALECT)
    conn.login(ep.username, ep.password)
    answered = by_action(ep)
    try:
        ep.run_control("reboot")
        with pytest.raises(Exception) as info:  # what impacket raises on a reset varies
            conn.connectTree("IPC$")
        assert not isinstance(info.value, (smb.SessionError, SessionError))  # a reset, not an SMB answer
        assert by_action(ep).get("SMB:TreeConnect", 0) <= answered.get("SMB:TreeConnect", 0) + 1
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    wait_until(lambda: bool(ep.run_control("is_up")["up"]))


def test_restart_keeps_ports_and_files(tmp_path: Path) -> None:
    state = tmp_path / "fleet"
    local = tmp_path / "note.txt"
    local.write_bytes(b"kept across restarts\r\n")
    with running_fleet([HostSpec("nt4", "nt4-tse-sp6-x86")], state_dir=state) as first:
        ep = first.hosts["nt4"]
        ports = (ep.smb_port, ep.smb_netbios_port)
        assert smbclient(ep, "C$", f"put {local} note.txt").returncode == 0
    with running_fleet(None, state_dir=state) as second:
        ep = second.hosts["nt4"]
        assert (ep.smb_port, ep.smb_netbios_port) == ports
        fetched = tmp_path / "fetched.txt"
        assert smbclient(ep, "C$", f"get NOTE.TXT {fetched}").returncode == 0
        assert fetched.read_bytes() == b"kept across restarts\r\n"
        assert ep.host().fs.read("C:\\note.txt") == b"kept across restarts\r\n"


def test_service_states_through_impacket_scmr(ep: Endpoint) -> None:
    dce = impacket_rpc(ep, r"\svcctl", scmr.MSRPC_UUID_SCMR)
    manager = scmr.hROpenSCManagerW(dce)["lpScHandle"]
    server = scmr.hROpenServiceW(dce, manager, "LanmanServer\x00")["lpServiceHandle"]
    assert scmr.hRQueryServiceStatus(dce, server)["lpServiceStatus"]["dwCurrentState"] == scmr.SERVICE_RUNNING
    with pytest.raises(scmr.DCERPCSessionError) as running:
        scmr.hRStartServiceW(dce, server)
    assert running.value.get_error_code() == 1056  # ERROR_SERVICE_ALREADY_RUNNING
    missing = scmr.hRCreateServiceW(dce, manager, "WinsimMissing\x00", "missing\x00",
                                    lpBinaryPathName="C:\\WINNT\\Temp\\nothere.exe\x00")["lpServiceHandle"]
    with pytest.raises(scmr.DCERPCSessionError) as not_found:
        scmr.hRStartServiceW(dce, missing)
    assert not_found.value.get_error_code() == 2  # ERROR_FILE_NOT_FOUND: CreateProcess finds no image
    echo = scmr.hRCreateServiceW(dce, manager, "WinsimEcho\x00", "echo\x00",
                                 lpBinaryPathName="%COMSPEC% /C echo hi> %SystemRoot%\\Temp\\echo.txt\x00")
    handle = echo["lpServiceHandle"]
    with pytest.raises(scmr.DCERPCSessionError) as timeout:
        scmr.hRStartServiceW(dce, handle)
    assert timeout.value.get_error_code() == 1053  # ERROR_SERVICE_REQUEST_TIMEOUT, after the program ran
    assert scmr.hRQueryServiceStatus(dce, handle)["lpServiceStatus"]["dwCurrentState"] == scmr.SERVICE_STOPPED
    for service in (missing, handle):
        scmr.hRDeleteService(dce, service)
        scmr.hRCloseServiceHandle(dce, service)
    with pytest.raises(scmr.DCERPCSessionError) as gone:
        scmr.hROpenServiceW(dce, manager, "WinsimEcho\x00")
    assert gone.value.get_error_code() == 1060  # ERROR_SERVICE_DOES_NOT_EXIST
    scmr.hRCloseServiceHandle(dce, manager)
    dce.disconnect()
    assert ep.host().fs.read("C:\\WINNT\\Temp\\echo.txt") == b"hi\r\n"
    counts = by_action(ep)
    assert counts["RPC:svcctl.QueryServiceStatus"] == 2 and counts["RPC:svcctl.StartServiceW"] == 3


def test_share_list(ep: Endpoint) -> None:
    result = run(["smbclient", "-L", "127.0.0.1", "-p", str(ep.smb_port), "-A", auth_file(ep), *IPC])
    rows = {tuple(line.split(None, 2)) for line in result.stdout.splitlines() if line.startswith("\t")}
    assert {("ADMIN$", "Disk", "Remote Admin"), ("C$", "Disk", "Default share"), ("IPC$", "IPC", "Remote IPC")} <= rows
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=ep.smb_port)
    conn.login(ep.username, ep.password)
    shares = {(s["shi1_netname"].rstrip("\x00"), s["shi1_type"]) for s in conn.listShares()}
    assert shares == {("ADMIN$", 0x80000000), ("C$", 0x80000000), ("IPC$", 0x80000003)}
    assert by_action(ep)["RPC:srvsvc.NetrShareEnum"] == 2


def test_server_statistics_start_is_the_boot_time(ep: Endpoint) -> None:
    # `net statistics server` on NT 4.0 shows this as "Statistics since": when the Server service started.
    dce = impacket_rpc(ep, r"\srvsvc", srvs.MSRPC_UUID_SRVS)
    try:
        reply = srvs.hNetrServerStatisticsGet(dce, NULL, 0, 0)
        start = int(reply["InfoStruct"]["sts0_start"])
        with pytest.raises(srvs.DCERPCSessionError, match="ERROR_INVALID_LEVEL"):
            srvs.hNetrServerStatisticsGet(dce, NULL, 1, 0)
    finally:
        dce.disconnect()
    assert start == int(ep.host().boot_time.timestamp())
    assert by_action(ep)["RPC:srvsvc.NetrServerStatisticsGet"] == 2


def test_product_options_name_the_edition(ep: Endpoint) -> None:
    result = net_rpc(ep, "registry", "enumerate", r"HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions")
    assert result.returncode == 0, result.stderr
    assert 'Valuename  = ProductType\nType       = REG_SZ\nValue      = "ServerNT"' in result.stdout
    assert 'Valuename  = ProductSuite\nType       = REG_MULTI_SZ\nValue[000] = "Terminal Server"\n\n' in result.stdout
