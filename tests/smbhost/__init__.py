"""A real Samba server standing in for a Windows NT 4.0 TSE host, for the SMB transport's tests.

``running_samba(base, fixed=True)`` starts Debian's ``smbd`` in the foreground on 127.0.0.1 and a free port,
with everything (config, passdb, registry, locks, logs) in ``base``; nothing outside it is touched. The host
offers what the SMB transport uses on NT 4.0:

* SMB1 (``server min protocol = NT1``) with NTLM (``ntlm auth = yes``; LANMAN hashes off), one account
  ``Administrator`` with a known password (a ``tdbsam`` passdb in ``base``; mapped to the Unix root account
  smbd runs as, because Samba's registry only lets Administrators/root write);
* shares ``C$`` (``base/C``) and ``ADMIN$`` (``base/C/WINNT``), laid out as NT 4.0's system root, with a
  real PE ``system32\\Mpr.dll`` (the KB253729 fixed or SP6 file: exact size, date and version);
* the registry, written offline with ``net registry import`` before smbd starts: the NT 4.0 identity values,
  ``PROCESSOR_ARCHITECTURE``, the ``Hotfix\\Q253729`` record on the fixed host.

What Samba 4.17 really returns (``SAMBA_SYNTHESISED``): smbd serves ``HKLM\\SOFTWARE\\Microsoft\\Windows
NT\\CurrentVersion`` and ``HKLM\\SYSTEM\\CurrentControlSet\\Control\\ProductOptions`` from built-in backends.
Their *values* are Samba's own (CurrentVersion "6.1", SystemRoot "c:\\Windows", ProductType "ServerNT" for a
standalone server) and the values written there are hidden; their *subkeys* (``Hotfix\\Q253729``) come from the
registry database and are visible. NetrServerStatisticsGet is not implemented (a fault), svcctl cannot create
services, and BaseInitiateSystemShutdown runs the ``shutdown script`` (here: one that records its arguments).
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winsim.pe import pe_bytes

SMBD = shutil.which("smbd") or "/usr/sbin/smbd"
NET = shutil.which("net") or "/usr/bin/net"
PDBEDIT = shutil.which("pdbedit") or "/usr/bin/pdbedit"
USER = "Administrator"
PASSWORD = "Kbfix-Samba-2026!"
NETBIOS_NAME = "NT4TSE"

# What smbd returns for the values it synthesises (found by reading them back, test_smb_samba_facts.py).
SAMBA_SYNTHESISED = {
    ("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion", "CurrentVersion"): "6.1",
    ("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion", "SystemRoot"): "c:\\Windows",
    ("HKLM\\SYSTEM\\CurrentControlSet\\Control\\ProductOptions", "ProductType"): "ServerNT",
}


@dataclass(frozen=True)
class MprFile:
    version: str
    size: int
    modified: datetime.datetime


# KB253729 (seed 001): the fixed Mpr.dll is 60,176 bytes dated 02/08/2000 19:27 (no version in the article;
# 4.0.1381.33418 is inferred, the same as winsim's package). NT 4.0 TSE SP6's own: 59,664 bytes, 4.0.1381.33361.
MPR_FIXED = MprFile("4.0.1381.33418", 60176, datetime.datetime(2000, 2, 8, 19, 27, tzinfo=datetime.UTC))
MPR_SP6 = MprFile("4.0.1381.33361", 59664, datetime.datetime(1999, 11, 23, 12, 0, tzinfo=datetime.UTC))


@dataclass
class SambaHost:
    host: str
    port: int
    base: Path
    conf: Path
    fixed: bool
    mpr: MprFile
    username: str = USER
    password: str = field(default=PASSWORD, repr=False)

    @property
    def c_drive(self) -> Path:
        return self.base / "C"

    @property
    def system_root(self) -> Path:
        return self.c_drive / "WINNT"

    @property
    def shutdown_log(self) -> Path:
        return self.base / "shutdown.log"

    def inventory_vars(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "inventory_hostname": "nt4tse", "ansible_host": self.host, "ansible_user": self.username,
            "ansible_password": self.password, "kbfix_smb_port": self.port, "kbfix_smb_timeout": 20,
            # Given, so impacket does not ask UDP 137 for the name (it does for *SMBSERVER on ports but 445).
            "kbfix_smb_netbios_name": NETBIOS_NAME,
        }
        values.update(overrides)
        return values

    def net_registry(self, *args: str) -> str:
        """Run ``net registry`` against this host's registry (smbd sees changes at once: same tdb)."""
        return subprocess.run([NET, "-s", str(self.conf), "registry", *args], check=True, capture_output=True,
                              text=True, timeout=60).stdout


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _reg_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _utf16(text: str, terminators: int) -> bytes:
    return (text + "\0" * terminators).encode("utf-16-le")


def registry_file(fixed: bool) -> str:
    """The .reg file (version 5 syntax: strings and hex(7) in UTF-16) imported before smbd starts."""
    cv = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    suite = _hex(_utf16("Terminal Server", 2))
    lines = [
        "Windows Registry Editor Version 5.00", "",
        f"[{cv}]",
        f'"CurrentVersion"={_reg_text("4.0")}',
        f'"CurrentBuildNumber"={_reg_text("1381")}',
        f'"CSDVersion"={_reg_text("Service Pack 6")}',
        f'"SystemRoot"={_reg_text("C:" + chr(92) + "WINNT")}', "",
        r"[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\ProductOptions]",
        f'"ProductType"={_reg_text("ServerNT")}',
        f'"ProductSuite"=hex(7):{suite}', "",
        r"[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Session Manager\Environment]",
        f'"PROCESSOR_ARCHITECTURE"={_reg_text("x86")}', "",
        f"[{cv}\\Hotfix]", "",
        r"[HKEY_LOCAL_MACHINE\SOFTWARE\kbfix-test]",
        f'"Text"={_reg_text("Hello, NT")}',
        f'"Path"=hex(2):{_hex(_utf16("%SystemRoot%" + chr(92) + "system32", 1))}',
        f'"List"=hex(7):{_hex(_utf16("one" + chr(0) + "two", 2))}',
        '"Number"=dword:0000003c',
        '"Blob"=hex:00,01,fe,ff', "",
    ]
    if fixed:
        lines += [f"[{cv}\\Hotfix\\Q253729]", '"Installed"=dword:00000001', ""]
    return "\r\n".join(lines)


def _config(base: Path, address: str, port: int, shares: dict[str, Path]) -> str:
    state = {name: base / name for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log")}
    for path in state.values():
        path.mkdir(parents=True, exist_ok=True)
    script = base / "shutdown.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{base / "shutdown.log"}"\n')
    script.chmod(0o755)
    lines = [
        "[global]",
        f"  netbios name = {NETBIOS_NAME}", "  workgroup = KBFIX", "  server role = standalone server",
        f"  smb ports = {port}", f"  interfaces = {address}", "  bind interfaces only = yes",
        "  server min protocol = NT1", "  ntlm auth = yes", "  lanman auth = no",
        f"  passdb backend = tdbsam:{state['private'] / 'passdb.tdb'}",
        f"  private dir = {state['private']}", f"  lock directory = {state['lock']}",
        f"  state directory = {state['state']}", f"  cache directory = {state['cache']}",
        f"  pid directory = {state['pid']}", f"  ncalrpc dir = {state['ncalrpc']}",
        f"  log file = {state['log'] / 'log.%m'}", "  log level = 1",
        f"  username map = {base / 'users.map'}",
        f'  shutdown script = {script} "%z" %t %r %f',
        "  load printers = no", "  printcap name = /dev/null", "  disable spoolss = yes",
        "  disable netbios = yes", "  smb encrypt = off",
    ]
    for name, path in shares.items():
        lines += [f"[{name}]", f"  path = {path}", "  read only = no", "  browseable = no"]
    (base / "users.map").write_text(f"root = {USER}\n")
    return "\n".join(lines) + "\n"


def _lay_out(base: Path, mpr: MprFile) -> Path:
    c_drive = base / "C"
    system32 = c_drive / "WINNT" / "system32"
    system32.mkdir(parents=True, exist_ok=True)
    (c_drive / "WINNT" / "Temp").mkdir(exist_ok=True)
    target = system32 / "Mpr.dll"
    target.write_bytes(pe_bytes("Mpr.dll", mpr.version, mpr.size))
    stamp = mpr.modified.timestamp()
    os.utime(target, (stamp, stamp))
    return c_drive


def _wait_listening(address: str, port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
                    ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smbd exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"smbd did not listen on {address}:{port} within {timeout:g}s")


@contextmanager
def running_samba(base: Path | None = None, *, fixed: bool = True, with_admin_share: bool = True,
                  address: str = "127.0.0.1", port: int | None = None) -> Iterator[SambaHost]:
    """A started smbd (stopped and its directory removed afterwards when ``base`` is None). Port 139 makes
    smbd expect a NetBIOS session request first, as NT 4.0 does."""
    if os.geteuid() != 0:
        raise RuntimeError("smbd must run as root (it switches to the connecting user's uid)")
    owned = base is None
    base = Path(tempfile.mkdtemp(prefix="kbfix-smb-")) if base is None else base
    base.mkdir(parents=True, exist_ok=True)
    mpr = MPR_FIXED if fixed else MPR_SP6
    c_drive = _lay_out(base, mpr)
    shares = {"C$": c_drive}
    if with_admin_share:
        shares["ADMIN$"] = c_drive / "WINNT"
    port = port or free_port(address)
    conf = base / "smb.conf"
    conf.write_text(_config(base, address, port, shares))
    host = SambaHost(address, port, base, conf, fixed, mpr)
    reg = base / "nt4.reg"
    reg.write_text(registry_file(fixed), encoding="utf-8")
    host.net_registry("import", str(reg))
    subprocess.run([PDBEDIT, "-s", str(conf), "-a", "-u", "root", "-t"], input=f"{PASSWORD}\n{PASSWORD}\n",
                   check=True, capture_output=True, text=True, timeout=60)
    log = base / "smbd.out"
    # A session of its own: smbd signals its whole process group when it stops, which must not be pytest.
    with open(log, "wb") as out:
        process = subprocess.Popen([SMBD, "-s", str(conf), "--foreground", "--no-process-group", "--debug-stdout"],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_listening(address, port, process, log)
        yield host
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        if owned:
            shutil.rmtree(base, ignore_errors=True)
