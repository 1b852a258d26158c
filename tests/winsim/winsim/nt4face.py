"""The NT 4.0 face of a simulated host: SMB1 with ADMIN$, C$ and IPC$ (``\\pipe\\winreg``, ``\\pipe\\svcctl``).

Windows NT 4.0 has no WinRM; clients reach it over SMB. winsim serves that with impacket's SMB server
(``impacket.smbserver.SMBSERVER``, pinned 0.13.1), driven here, not through its ``serve_forever``:

* **Listeners.** A supervisor thread per host owns two loopback sockets: the SMB port (direct TCP framing, the
  4-byte length header of port 445) and the NetBIOS port (port 139 style: a NetBIOS session request naming
  ``*SMBSERVER`` or the host's name must come first; another name gets a negative response, "called name not
  present"). A real NT 4.0 has only the NetBIOS session service (direct hosting came with Windows 2000); the
  direct port is there because clients expect it. While the host is down (a reboot's window, a power-off) or
  the fault plan has ``port_closed``, both sockets are closed -- a client is refused, as by a host that is
  off -- and every open connection is reset (RST).
* **Dialect and logon.** Only ``NT LM 0.12``, without extended security (NT 4.0 predates SPNEGO in SMB): the
  negotiate reply carries a random 8-byte challenge per connection, and SESSION_SETUP_ANDX checks the
  case-sensitive response against the host's credentials: 24 bytes = NTLMv1 (DES of the challenge under the
  NT hash), longer = NTLMv2 (HMAC-MD5 proof over user and the domain the client sent); an LMv2-only answer is
  checked too. A wrong password, an unknown user, an anonymous logon or an injected ``auth_fail`` gets
  STATUS_LOGON_FAILURE and no session (impacket's own handler lets every standard-security logon in).
* **Shares.** ``ADMIN$`` = ``%SystemRoot%`` (``C:\\WINNT``), ``C$`` = ``C:\\``, ``IPC$``. impacket's file
  commands work on a real directory (``os.open``/``os.stat`` inside its handlers, no file-system hook), so
  the machine's drive C: is *materialised* into ``<state dir>/smb/<host>/C`` and kept in step both ways,
  under the host's lock: before a request on a disk share, files the machine changed since the last sync are
  rewritten there (bytes, size, last write time -- PE files included, so a client reads the version resource
  with ranged reads); after a request that can change files (close, delete, rename, directory and set-info
  calls) the directory is compared with what was last written and the differences go into the machine
  state (``FileSystem.write``/``delete``/``mkdir``/``rmdir``), which saves it atomically. A file being
  written reaches the machine when it is closed. Names are case-insensitive and case-preserving as on
  Windows: impacket's ``normalize_path`` is wrapped (process-wide; the fleet process runs nothing else) so
  every component resolves to the name stored on disk. Opening for write or delete a file the machine
  reports in use (``Host.file_in_use``: a loaded DLL such as Mpr.dll, a running service's image) is
  STATUS_SHARING_VIOLATION, as on Windows; ``C:\\`` creation times are the materialised file's.
* **Pipes.** ``\\pipe\\winreg``, ``\\pipe\\svcctl``, ``\\pipe\\lsarpc`` and ``\\pipe\\srvsvc`` go to
  ``winsim.msrpc`` (see there for the registry and service semantics).
* **Counters and faults.** Every SMB request counts as ``SMB:<Command>`` (``SMB:Negotiate``,
  ``SMB:SessionSetup``, ``SMB:TreeConnect``, ``SMB:NtCreate``, ``SMB:Read``, ``SMB:Write``, ``SMB:Close``,
  ``SMB:Delete``, ``SMB:Trans2.QueryPathInfo``, ``SMB:Transaction`` ...), every RPC call as
  ``RPC:<pipe>.<Call>`` (``RPC:winreg.OpenKey``, ``RPC:svcctl.StartServiceW``), in the host's counters;
  session setups also count as ``auth_requests``. The host's fault plan applies: ``reset_before`` /
  ``reset_after`` (by those names or their family ``SMB`` / ``RPC``: the client's SMB connection is reset
  before the request is applied, or after it was applied instead of the answer), ``auth_fail``,
  ``latency_ms``, ``reboot_after_requests`` (SMB requests), ``port_closed``. ``http_500``, ``quota_fault`` and
  ``timeout_fault`` are WinRM faults and do not apply here. Resets and reboots that took effect are counted
  under ``injected`` (``counters()["injected"]``), as on the WinRM face.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import hmac
import logging
import ntpath
import os
import secrets
import select
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impacket import ntlm, smb, smbserver
from impacket.nt_errors import STATUS_LOGON_FAILURE, STATUS_SHARING_VIOLATION, STATUS_SUCCESS

from . import msrpc

log = logging.getLogger("winsim.nt4face")
# impacket logs every connection and share at INFO; winsim's own log lines say what matters.
logging.getLogger("impacket.smbserver").setLevel(logging.WARNING)

NETBIOS_MESSAGE, NETBIOS_REQUEST, NETBIOS_POSITIVE, NETBIOS_NEGATIVE = 0x00, 0x81, 0x82, 0x83
NETBIOS_KEEPALIVE = 0x85
NETBIOS_CALLED_NAME_NOT_PRESENT = 0x82
MAX_SMB_PACKET = 0x20000
POLL_SECONDS = 0.1

# [MS-CIFS] 2.2.4.52.2: RAW_MODE, UNICODE, LARGE_FILES, NT_SMBS, RPC_REMOTE_APIS, STATUS32, LEVEL_II_OPLOCKS,
# LOCK_AND_READ, NT_FIND -- what an NT 4.0 server offers (no LARGE_READX/WRITEX, no EXTENDED_SECURITY).
NT4_CAPABILITIES = 0x0001 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0080 | 0x0100 | 0x0200
NATIVE_OS = "Windows NT 1381"
NATIVE_LANMAN = "NT LAN Manager 4.0"

# Access bits and dispositions that change a file: FILE_WRITE_DATA, FILE_APPEND_DATA, DELETE, GENERIC_ALL,
# GENERIC_WRITE; FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF; FILE_DELETE_ON_CLOSE.
WRITE_ACCESS = 0x2 | 0x4 | 0x10000 | 0x10000000 | 0x40000000
WRITE_DISPOSITIONS = (0, 4, 5)
DELETE_ON_CLOSE = 0x1000

_COMMAND_NAMES = {
    smb.SMB.SMB_COM_NEGOTIATE: "Negotiate", smb.SMB.SMB_COM_SESSION_SETUP_ANDX: "SessionSetup",
    smb.SMB.SMB_COM_LOGOFF_ANDX: "Logoff", smb.SMB.SMB_COM_TREE_CONNECT_ANDX: "TreeConnect",
    smb.SMB.SMB_COM_TREE_DISCONNECT: "TreeDisconnect", smb.SMB.SMB_COM_NT_CREATE_ANDX: "NtCreate",
    smb.SMB.SMB_COM_OPEN_ANDX: "Open", smb.SMB.SMB_COM_READ_ANDX: "Read", smb.SMB.SMB_COM_READ: "Read",
    smb.SMB.SMB_COM_WRITE_ANDX: "Write", smb.SMB.SMB_COM_WRITE: "Write", smb.SMB.SMB_COM_CLOSE: "Close",
    smb.SMB.SMB_COM_DELETE: "Delete", smb.SMB.SMB_COM_RENAME: "Rename",
    smb.SMB.SMB_COM_CREATE_DIRECTORY: "CreateDirectory", smb.SMB.SMB_COM_DELETE_DIRECTORY: "DeleteDirectory",
    smb.SMB.SMB_COM_TRANSACTION: "Transaction", smb.SMB.SMB_COM_TRANSACTION2: "Trans2",
    smb.SMB.SMB_COM_NT_TRANSACT: "NtTransact", smb.SMB.SMB_COM_ECHO: "Echo", smb.SMB.SMB_COM_FLUSH: "Flush",
    smb.SMB.SMB_COM_QUERY_INFORMATION: "QueryInformation", smb.SMB.SMB_COM_QUERY_INFORMATION2: "QueryInformation2",
    smb.SMB.SMB_COM_QUERY_INFORMATION_DISK: "QueryInformationDisk", smb.SMB.SMB_COM_LOCKING_ANDX: "Locking",
}
_TRANS2_NAMES = {
    smb.SMB.TRANS2_FIND_FIRST2: "FindFirst2", smb.SMB.TRANS2_FIND_NEXT2: "FindNext2",
    smb.SMB.TRANS2_QUERY_FS_INFORMATION: "QueryFsInfo", smb.SMB.TRANS2_QUERY_PATH_INFORMATION: "QueryPathInfo",
    smb.SMB.TRANS2_QUERY_FILE_INFORMATION: "QueryFileInfo", smb.SMB.TRANS2_SET_FILE_INFORMATION: "SetFileInfo",
    smb.SMB.TRANS2_SET_PATH_INFORMATION: "SetPathInfo",
}
# Requests after which the share directory may differ from the machine.
_MUTATING = {"Close", "Delete", "Rename", "CreateDirectory", "DeleteDirectory", "Trans2.SetFileInfo",
             "Trans2.SetPathInfo", "NtCreate", "Open", "TreeDisconnect", "Logoff"}


# --- case-insensitive names inside impacket's handlers --------------------------------------------------

_tls = threading.local()
_original_normalize = smbserver.normalize_path


def _resolve_case(root: str, relative: str) -> str:
    """``relative`` under ``root`` with each existing component spelled as it is on disk."""
    if not relative or relative == ".":
        return relative
    current, parts = root, []
    for part in relative.split("/"):
        if part in ("", ".", ".."):
            parts.append(part)
            current = os.path.join(current, part)
            continue
        candidate = os.path.join(current, part)
        if not os.path.lexists(candidate) and os.path.isdir(current):
            folded = part.casefold()
            match = next((name for name in os.listdir(current) if name.casefold() == folded), None)
            if match is not None:
                part, candidate = match, os.path.join(current, match)
        parts.append(part)
        current = candidate
    return "/".join(parts)


def _normalize_path(file_name: str, path: str | None = None) -> str:
    name: str = _original_normalize(file_name, path)
    root = getattr(_tls, "root", None)
    return _resolve_case(root, name) if root else name


smbserver.normalize_path = _normalize_path


class _Shares(configparser.ConfigParser):
    """Share names are case-insensitive on Windows (``admin$`` is ``ADMIN$``); impacket looks them up by section."""

    def _canon(self, section: str) -> str:
        folded = section.casefold()
        return next((s for s in self.sections() if s.casefold() == folded), section)

    def has_section(self, section: str) -> bool:
        return super().has_section(self._canon(section))

    def items(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (self._canon(args[0]), *args[1:])
        return super().items(*args, **kwargs)


class _PipeNames(dict[str, tuple[str, int]]):
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.casefold())

    def __getitem__(self, name: str) -> tuple[str, int]:
        return super().__getitem__(name.casefold())

    def __setitem__(self, name: str, address: tuple[str, int]) -> None:
        super().__setitem__(name.casefold(), address)


# --- logon ----------------------------------------------------------------------------------------------


def check_response(challenge: bytes, user: str, domain: str, password: str, lm_response: bytes,
                   nt_response: bytes) -> bool:
    """Does the SESSION_SETUP_ANDX answer prove ``password``? NTLMv1, NTLMv2 or LMv2 ([MS-NLMP] 3.3)."""
    nt_hash = ntlm.compute_nthash(password)
    if len(nt_response) == 24:
        return hmac.compare_digest(ntlm.ntlmssp_DES_encrypt(nt_hash, challenge), nt_response)
    key = ntlm.hmac_md5(nt_hash, (user.upper() + domain).encode("utf-16le"))
    if len(nt_response) > 24:
        proof = ntlm.hmac_md5(key, challenge + nt_response[16:])
        return hmac.compare_digest(proof, nt_response[:16])
    if len(lm_response) == 24:
        proof = ntlm.hmac_md5(key, challenge + lm_response[16:])
        return hmac.compare_digest(proof, lm_response[:16])
    return False


def _smb_strings(data: bytes, start: int, unicode: bool, count: int) -> list[str]:
    """``count`` NUL-terminated strings from ``data[start:]`` (UTF-16LE aligned to the SMB header, or OEM)."""
    out: list[str] = []
    pos = start
    for _ in range(count):
        if unicode:
            end = pos
            while end + 1 < len(data) and data[end:end + 2] != b"\x00\x00":
                end += 2
            out.append(data[pos:end].decode("utf-16le", "replace"))
            pos = end + 2
        else:
            end = data.find(b"\x00", pos)
            end = len(data) if end < 0 else end
            out.append(data[pos:end].decode("cp437", "replace"))
            pos = end + 1
    return out


# --- one host's face ------------------------------------------------------------------------------------


class _Reset(Exception):
    """Reset the client's connection (RST) instead of answering."""


class _Connection:
    def __init__(self, sock: socket.socket, netbios: bool) -> None:
        self.sock = sock
        self.netbios = netbios
        self.doomed = False
        self.id = f"smb-{secrets.token_hex(6)}"


class Nt4Face:
    """SMB1 listeners of one NT 4.0 host. ``runtime`` is its ``HostRuntime`` (counters, fault plan, host)."""

    def __init__(self, runtime: Any, share_root: Path, port: int = 0, netbios_port: int = 0) -> None:
        self.runtime = runtime
        self.host = runtime.host
        self.name: str = self.host.name
        self.port = port
        self.netbios_port = netbios_port
        self.root = share_root
        self._stats_lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._connections: dict[str, _Connection] = {}
        self._pipe_peers: dict[tuple[str, int], str] = {}
        self._synced: dict[str, tuple[int, int]] = {}  # disk path -> (size, mtime_ns) last agreed with machine
        self._machine_stamp: dict[str, tuple[str, int, str]] = {}  # machine key -> (ref, size, modified)
        self._pending_doom: dict[tuple[str, int], _Connection] = {}
        self._listeners_opened_before = False
        self._dirs_seen: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server = self._make_server()
        self._pipes = [msrpc.PipeServer(interface(self.host), self._before_rpc, self._after_rpc)
                       for interface in (msrpc.WinReg, msrpc.SvcCtl, msrpc.Lsa, msrpc.Srvsvc)]
        # impacket joins the IPC$ path ("") with the name opened: "\\winreg" -> "winreg", "\\PIPE\\winreg" ->
        # "PIPE/winreg"; Windows matches pipe names case-insensitively.
        pipes = _PipeNames()
        for pipe in self._pipes:
            pipes[pipe.interface.name] = pipe.address
            pipes[f"PIPE/{pipe.interface.name}"] = pipe.address
        self._server._SMBSERVER__registeredNamedPipes = pipes

    # --- set-up ---------------------------------------------------------------------------------

    def _make_server(self) -> smbserver.SMBSERVER:
        config = _Shares()
        config.add_section("global")
        for key, value in {"server_name": self.name.upper(), "server_os": NATIVE_OS,
                           "server_domain": str(getattr(self.host, "domain", "WORKGROUP")).upper(),
                           "log_file": "None", "credentials_file": "", "rpc_apis": "yes"}.items():
            config.set("global", key, value)
        system_root = self.host.system_root
        places = {"ADMIN$": (str(self._disk_path(system_root)), system_root), "C$": (str(self.root), "C:\\"),
                  "IPC$": ("", "")}
        for share, type_, comment in msrpc.NT4_SHARES:
            path, machine_root = places[share]
            kind = str(type_ & 0xFF)  # impacket's RAP share list wants the base type
            config.add_section(share)
            for key, value in {"comment": comment, "read only": "no", "share type": kind, "path": path,
                               "winsim root": machine_root}.items():
                config.set(share, key, value)
        # SMBSERVER binds and listens in its constructor; that socket is closed at once: the supervisor
        # accepts connections itself so it can refuse them while the host is down.
        server = smbserver.SMBSERVER(("127.0.0.1", 0), config_parser=config)
        server.socket.close()
        server.processConfigFile()
        commands: dict[int, Callable[..., Any]] = server._SMBSERVER__smbCommands
        for code, handler in list(commands.items()):
            if code == smb.SMB.SMB_COM_NEGOTIATE:
                server.hookSmbCommand(code, self._wrap(code, self._negotiate(handler)))
            elif code == smb.SMB.SMB_COM_SESSION_SETUP_ANDX:
                server.hookSmbCommand(code, self._wrap(code, self._session_setup))
            elif code in (smb.SMB.SMB_COM_NT_CREATE_ANDX, smb.SMB.SMB_COM_DELETE, smb.SMB.SMB_COM_RENAME):
                server.hookSmbCommand(code, self._wrap(code, self._refuse_in_use(code, handler)))
            else:
                server.hookSmbCommand(code, self._wrap(code, handler))
        return server

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.host.lock:
            self._sync_from_machine()
        for pipe in self._pipes:
            pipe.start()
        self._open_listeners()
        self._thread = threading.Thread(target=self._supervise, name=f"winsim-smb-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_listeners()
        self._reset_all()
        for pipe in self._pipes:
            pipe.stop()

    # --- listeners ------------------------------------------------------------------------------

    def _open_listeners(self) -> None:
        sockets = []
        for wanted in (self.port, self.netbios_port):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", wanted))
            except OSError:
                if wanted == 0 or self._listeners_opened_before:
                    raise  # the port a client knows about is taken: do not move it while the fleet runs
                sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sockets.append(sock)
        self.port = sockets[0].getsockname()[1]
        self.netbios_port = sockets[1].getsockname()[1]
        self._listeners = sockets
        self._listeners_opened_before = True

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            sock.close()
        self._listeners = []

    def _reachable(self) -> bool:
        return bool(self.host.is_up()) and not getattr(self.runtime.faults, "port_closed", False)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                reachable = self._reachable()
            except Exception:
                log.exception("%s: state check failed", self.name)
                reachable = False
            if reachable and not self._listeners:
                try:
                    self._open_listeners()
                    log.info("%s: SMB listeners open", self.name)
                except OSError as exc:
                    log.warning("%s: cannot listen on port %s again (%s); retrying", self.name, self.port, exc)
            elif not reachable and self._listeners:
                log.info("%s: host down or port closed: SMB listeners closed, connections reset", self.name)
                self._close_listeners()
                self._reset_all()
            if not self._listeners:
                self._stop.wait(POLL_SECONDS)
                continue
            ready, _, _ = select.select(self._listeners, [], [], POLL_SECONDS)
            for listener in ready:
                with contextlib.suppress(OSError):
                    sock, address = listener.accept()
                    netbios = listener is self._listeners[1]
                    threading.Thread(target=self._serve, args=(sock, address, netbios), daemon=True,
                                     name=f"winsim-smb-{self.name}-conn").start()

    def _reset_all(self) -> None:
        for conn in list(self._connections.values()):
            conn.doomed = True
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RD)  # wakes its thread, which resets the connection itself

    # --- one connection -------------------------------------------------------------------------

    def _serve(self, sock: socket.socket, address: tuple[str, int], netbios: bool) -> None:
        conn = _Connection(sock, netbios)
        self._connections[conn.id] = conn
        threading.current_thread().name = conn.id  # impacket keys its connection data by the thread name
        self._server.addConnection(conn.id, address[0], address[1])
        session_ok = not netbios
        try:
            while not conn.doomed:
                frame = self._read_frame(sock)
                if frame is None or conn.doomed:
                    break
                kind, payload = frame
                if kind == NETBIOS_KEEPALIVE:
                    continue
                if kind == NETBIOS_REQUEST:
                    session_ok = self._session_request(sock, payload)
                    if not session_ok:
                        break
                    continue
                if kind != NETBIOS_MESSAGE or not session_ok:
                    break  # SMB before the session request on the NetBIOS port: the server hangs up
                replies = self._process(conn, payload)
                for reply in replies:
                    data = reply.getData() if hasattr(reply, "getData") else reply
                    sock.sendall(struct.pack(">BBH", NETBIOS_MESSAGE, (len(data) >> 16) & 1, len(data) & 0xFFFF)
                                 + data)
                self._after_reply()
        except _Reset:
            conn.doomed = True
        except OSError:
            pass
        except Exception:
            log.exception("%s: SMB connection failed", self.name)
            conn.doomed = True
        finally:
            self._server.removeConnection(conn.id)
            self._connections.pop(conn.id, None)
            for peer, owner in list(self._pipe_peers.items()):
                if owner == conn.id:
                    self._pipe_peers.pop(peer, None)
            self._close(conn)

    @staticmethod
    def _close(conn: _Connection) -> None:
        if conn.doomed:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            conn.sock.close()

    @staticmethod
    def _read_frame(sock: socket.socket) -> tuple[int, bytes] | None:
        head = msrpc._recv_exact(sock, 4)
        if head is None:
            return None
        kind, flags, length = struct.unpack(">BBH", head)
        length |= (flags & 1) << 16
        if length > MAX_SMB_PACKET:
            return None
        payload = msrpc._recv_exact(sock, length) if length else b""
        return None if payload is None else (kind, payload)

    def _session_request(self, sock: socket.socket, payload: bytes) -> bool:
        called = _netbios_name(payload)
        if called is not None and called.upper() in ("*SMBSERVER", self.name.upper()):
            sock.sendall(struct.pack(">BBH", NETBIOS_POSITIVE, 0, 0))
            return True
        sock.sendall(struct.pack(">BBHB", NETBIOS_NEGATIVE, 0, 1, NETBIOS_CALLED_NAME_NOT_PRESENT))
        return False

    def _process(self, conn: _Connection, payload: bytes) -> list[Any]:
        latency = self.runtime.faults.latency_ms
        if latency is None:
            latency = getattr(self.runtime, "latency_ms", 0.0)
        if latency:
            time.sleep(latency / 1000)
        _tls.conn = conn
        try:
            replies: list[Any] = self._server.processRequest(conn.id, payload)
        finally:
            _tls.conn = None
        return replies

    def _after_reply(self) -> None:
        if self.runtime.faults.count_request_for_reboot():
            log.info("%s: injected unexpected reboot", self.name)
            with self._stats_lock:
                self.runtime.counters.count_injected("reboot")
            self.host.reboot(0)

    # --- counting and faults --------------------------------------------------------------------

    def count(self, name: str, auth: bool = False) -> set[str]:
        with self._stats_lock:
            counters = self.runtime.counters
            counters.count(name)
            if auth:
                counters.auth_requests += 1
            fired: set[str] = self.runtime.faults.fire(name)
            # As the WinRM face does: the injected counter says which faults took effect (the earlier stage
            # wins when both fire on one request), so a campaign can report them.
            for kind in ("reset_before", "reset_after"):
                if kind in fired:
                    counters.count_injected(kind)
                    break
            return fired

    def _wrap(self, code: int, handler: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(conn_id: str, server: Any, command: Any, packet: Any, *extra: Any) -> Any:
            conn: _Connection | None = getattr(_tls, "conn", None)
            name = _COMMAND_NAMES.get(code, f"0x{code:02x}")
            if code == smb.SMB.SMB_COM_TRANSACTION2:
                setup = smb.SMBTransaction2_Parameters(command["Parameters"])["Setup"]
                sub = struct.unpack("<H", setup[:2])[0] if len(setup) >= 2 else -1
                name = f"Trans2.{_TRANS2_NAMES.get(sub, f'0x{sub:02x}')}"
            fired = self.count(f"SMB:{name}", auth=code == smb.SMB.SMB_COM_SESSION_SETUP_ANDX)
            if conn is not None and not conn.doomed and not self._reachable():
                # The host went down after this request's connection was accepted: a real host's TCP stack is
                # gone with it. The supervisor resets every connection too, but only at its next poll, and a
                # request that slips in before that must not be answered by a host that is down.
                conn.doomed = True
            if "reset_before" in fired or (conn is not None and conn.doomed):
                raise _Reset
            result = self._on_share(conn_id, packet, name, lambda: handler(conn_id, server, command, packet, *extra))
            if code in (smb.SMB.SMB_COM_NT_CREATE_ANDX, smb.SMB.SMB_COM_OPEN_ANDX):
                self._register_pipes(conn_id)
            if "reset_after" in fired or (conn is not None and conn.doomed):
                raise _Reset
            return result

        return wrapped

    def _share(self, conn_id: str, packet: Any) -> dict[str, Any] | None:
        data = self._server.getConnectionData(conn_id, checkStatus=False)
        share: dict[str, Any] | None = data.get("ConnectedShares", {}).get(packet["Tid"])
        return share if share and share.get("path") else None

    def _on_share(self, conn_id: str, packet: Any, name: str, call: Callable[[], Any]) -> Any:
        """Run an SMB handler; on a disk share with the machine and the share directory in step around it."""
        share = self._share(conn_id, packet)
        if share is None:
            return call()
        with self.host.lock:
            self._sync_from_machine()
            _tls.root = share["path"]
            try:
                result = call()
            finally:
                _tls.root = None
            if name in _MUTATING:
                self._sync_to_machine()
            return result

    def _register_pipes(self, conn_id: str) -> None:
        data = self._server.getConnectionData(conn_id, checkStatus=False)
        for opened in data.get("OpenedFiles", {}).values():
            sock = opened.get("Socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    self._pipe_peers[sock.getsockname()[:2]] = conn_id

    def _before_rpc(self, peer: tuple[str, int], name: str) -> bool:
        fired = self.count(f"RPC:{name}")
        if "reset_before" in fired:
            self._doom(peer)
            return False
        if "reset_after" in fired:
            self._doom(peer, later=True)
        return True

    def _after_rpc(self, peer: tuple[str, int], name: str) -> None:
        conn = self._pending_doom.pop(peer, None)
        if conn is not None:
            conn.doomed = True

    def _doom(self, peer: tuple[str, int], later: bool = False) -> None:
        conn = self._connections.get(self._pipe_peers.get(peer, ""))
        if conn is None:
            return
        if later:
            self._pending_doom[peer] = conn
        else:
            conn.doomed = True

    # --- SMB handlers winsim replaces -----------------------------------------------------------

    def _negotiate(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def negotiate(conn_id: str, server: Any, command: Any, packet: Any) -> Any:
            data = server.getConnectionData(conn_id, checkStatus=False)
            data["EncryptionKey"] = secrets.token_bytes(8)  # a fresh challenge per connection
            server.setConnectionData(conn_id, data)
            packet["Flags2"] &= ~smb.SMB.FLAGS2_EXTENDED_SECURITY  # NT 4.0 answers without extended security
            commands, packets, status = original(conn_id, server, command, packet)
            for reply in packets or []:
                for answer in reply["Data"]:
                    parameters = answer["Parameters"]
                    if isinstance(parameters, smb.SMBNTLMDialect_Parameters):
                        parameters["Capabilities"] = NT4_CAPABILITIES
                        parameters["MaxMpxCount"] = 50
                        parameters["MaxBufferSize"] = 16644  # NT 4.0 Server's default SizReqBuf
                        now = int((time.time() + 11644473600) * 10_000_000)
                        parameters["LowDateTime"], parameters["HighDateTime"] = now & 0xFFFFFFFF, now >> 32
            return commands, packets, status

        return negotiate

    def _session_setup(self, conn_id: str, server: Any, command: Any, packet: Any) -> Any:
        data = server.getConnectionData(conn_id, checkStatus=False)
        reply = smb.SMBCommand(smb.SMB.SMB_COM_SESSION_SETUP_ANDX)
        if command["WordCount"] != 13 or "EncryptionKey" not in data:
            # Extended security was never offered; anything else is not what NT 4.0 accepts.
            reply["Parameters"], reply["Data"] = b"", b""
            return [reply], None, STATUS_LOGON_FAILURE
        parameters = smb.SMBSessionSetupAndX_Parameters(command["Parameters"])
        raw = command["Data"]
        lm_len, nt_len = parameters["AnsiPwdLength"], parameters["UnicodePwdLength"]
        lm_response, nt_response = raw[:lm_len], raw[lm_len:lm_len + nt_len]
        unicode = bool(packet["Flags2"] & smb.SMB.FLAGS2_UNICODE)
        start = lm_len + nt_len
        # Unicode strings are aligned to 2 bytes from the SMB header: Data begins at 32 + 1 + 26 + 2 = 61.
        if unicode and (61 + start) % 2:
            start += 1
        account, domain = _smb_strings(raw, start, unicode, 2)
        password = next((p for u, p in self.host.credentials.items() if u.casefold() == account.casefold()), None)
        ok = (password is not None and bool(account)
              and check_response(data["EncryptionKey"], account, domain, password, lm_response, nt_response)
              and not self.runtime.faults.take_auth_fail())
        response_parameters = smb.SMBSessionSetupAndXResponse_Parameters()
        response_parameters["Action"] = 0
        response_data = smb.SMBSessionSetupAndXResponse_Data(flags=packet["Flags2"])
        response_data["NativeOS"] = smbserver.encodeSMBString(packet["Flags2"], NATIVE_OS)
        response_data["NativeLanMan"] = smbserver.encodeSMBString(packet["Flags2"], NATIVE_LANMAN)
        response_data["PrimaryDomain"] = smbserver.encodeSMBString(packet["Flags2"], self.name.upper())
        reply["Parameters"], reply["Data"] = response_parameters, response_data
        if not ok:
            log.info("%s: SMB logon of %r refused", self.name, account)
            data["Authenticated"], data["Uid"] = False, 0
            server.setConnectionData(conn_id, data)
            reply["Parameters"], reply["Data"] = b"", b""
            return [reply], None, STATUS_LOGON_FAILURE
        data["Authenticated"] = True
        data["Uid"] = 0x800 + secrets.randbelow(0x7000)
        data["user_name"] = account
        data["Capabilities"] = parameters["Capabilities"]
        server.setConnectionData(conn_id, data)
        return [reply], None, STATUS_SUCCESS

    def _refuse_in_use(self, code: int, original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(conn_id: str, server: Any, command: Any, packet: Any) -> Any:
            share = self._share(conn_id, packet)
            target = self._request_target(code, command, packet) if share else None
            if share is not None and target is not None:
                path = ntpath.join(share["winsim root"], target.lstrip("\\"))
                if self.host.fs.entry(path) is not None and self.host.file_in_use(path):
                    reply = smb.SMBCommand(code)
                    reply["Parameters"], reply["Data"] = b"", b""
                    return [reply], None, STATUS_SHARING_VIOLATION
            return original(conn_id, server, command, packet)

        return guarded

    @staticmethod
    def _request_target(code: int, command: Any, packet: Any) -> str | None:
        """The file a create (for write or delete), delete or rename request would change."""
        flags = packet["Flags2"]
        if code == smb.SMB.SMB_COM_NT_CREATE_ANDX:
            parameters = smb.SMBNtCreateAndX_Parameters(command["Parameters"])
            writes = (parameters["AccessMask"] & WRITE_ACCESS or parameters["Disposition"] in WRITE_DISPOSITIONS
                      or parameters["CreateOptions"] & DELETE_ON_CLOSE)
            if not writes or parameters["RootFid"]:
                return None
            name = smb.SMBNtCreateAndX_Data(flags=flags, data=command["Data"])["FileName"]
        elif code == smb.SMB.SMB_COM_DELETE:
            name = smb.SMBDelete_Data(flags=flags, data=command["Data"])["FileName"]
        else:
            name = smb.SMBRename_Data(flags=flags, data=command["Data"])["OldFileName"]
        text = smbserver.decodeSMBString(flags, name)
        return str(text).rstrip("\x00").replace("/", "\\")

    # --- machine <-> share directory ------------------------------------------------------------

    def _disk_path(self, machine_path: str) -> Path:
        """Where a machine path (``C:\\WINNT\\system32\\mpr.dll``) lives under the share root, each directory
        spelled as the machine stores it."""
        fs = self.host.fs
        norm = ntpath.normpath(machine_path)
        parts = [p for p in norm[3:].split("\\") if p]
        out, prefix = self.root, norm[:2]
        for index, part in enumerate(parts):
            prefix = f"{prefix}\\{part}"
            stored = fs.dirs.get(prefix.casefold()) if index < len(parts) - 1 else None
            out = out / (ntpath.basename(stored) if stored else part)
        return out

    def _machine_path(self, disk: Path) -> str:
        relative = disk.relative_to(self.root)
        return "C:\\" + "\\".join(relative.parts)

    def _sync_from_machine(self) -> None:
        """Write what changed in the machine's drive C: into the share directory (caller holds the lock)."""
        fs = self.host.fs
        dirs_now = frozenset(fs.dirs)
        if dirs_now != self._dirs_seen:
            for stored in sorted(fs.dirs.values()):
                self._disk_path(stored + "\\x").parent.mkdir(parents=True, exist_ok=True)
        seen = set()
        for key, entry in fs.files.items():
            seen.add(key)
            stamp = (entry.ref, entry.size, entry.modified.isoformat())
            disk = self._disk_path(entry.path)
            if self._machine_stamp.get(key) == stamp and str(disk) in self._synced:
                continue
            disk.parent.mkdir(parents=True, exist_ok=True)
            tmp = disk.with_name(f".{disk.name}.winsim-tmp")
            tmp.write_bytes(fs.read(entry.path))
            modified = entry.modified.timestamp()
            os.utime(tmp, (modified, modified))
            os.replace(tmp, disk)
            st = disk.stat()
            self._synced[str(disk)] = (st.st_size, st.st_mtime_ns)
            self._machine_stamp[key] = stamp
        for key in list(self._machine_stamp):
            if key not in seen:
                # Gone from the machine (deleted by a command, moved by a boot's pending renames).
                disk_name = next((d for d in self._synced if self._machine_path(Path(d)).casefold() == key), None)
                self._machine_stamp.pop(key, None)
                if disk_name is not None:
                    self._synced.pop(disk_name, None)
                    Path(disk_name).unlink(missing_ok=True)
        if dirs_now != self._dirs_seen:
            known_dirs = {self._disk_path(d + "\\x").parent for d in fs.dirs.values()}
            for directory in sorted((p for p in self.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if directory not in known_dirs and not any(directory.iterdir()):
                    directory.rmdir()
            self._dirs_seen = dirs_now

    def _sync_to_machine(self) -> None:
        """Put what SMB clients changed in the share directory into the machine (caller holds the lock)."""
        fs = self.host.fs
        on_disk: set[str] = set()
        for current, dirnames, filenames in os.walk(self.root):
            base = Path(current)
            for dirname in dirnames:
                machine = self._machine_path(base / dirname)
                if not fs.is_dir(machine):
                    fs.mkdir(machine)
            for filename in filenames:
                if filename.endswith(".winsim-tmp"):
                    continue
                disk = base / filename
                on_disk.add(str(disk))
                st = disk.stat()
                if self._synced.get(str(disk)) == (st.st_size, st.st_mtime_ns):
                    continue
                machine = self._machine_path(disk)
                moment = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).replace(microsecond=0)
                try:
                    entry = fs.write(machine, disk.read_bytes(), now=moment)
                except Exception as exc:  # FileSystemError from the machine: put its version back
                    log.info("%s: SMB change of %s refused by the machine: %s", self.name, machine, exc)
                    self._machine_stamp.pop(fs.key(machine), None)
                    continue
                self._synced[str(disk)] = (st.st_size, st.st_mtime_ns)
                self._machine_stamp[fs.key(machine)] = (entry.ref, entry.size, entry.modified.isoformat())
        for disk_name in [d for d in self._synced if d not in on_disk]:
            machine = self._machine_path(Path(disk_name))
            self._synced.pop(disk_name, None)
            self._machine_stamp.pop(fs.key(machine), None)
            if fs.entry(machine) is not None:
                fs.delete(machine)
        disk_dirs = {self._machine_path(Path(c)).casefold() for c, _, _ in os.walk(self.root)}
        for folded, stored in sorted(fs.dirs.items(), key=lambda kv: -len(kv[0])):
            if folded not in disk_dirs and not fs.listdir(stored):
                fs.rmdir(stored)
        self._dirs_seen = frozenset(fs.dirs)
        self.host.save()


def _netbios_name(payload: bytes) -> str | None:
    """The called name of a NetBIOS session request (RFC 1002 first-level encoding, the type byte dropped)."""
    if len(payload) < 34 or payload[0] != 32:
        return None
    encoded = payload[1:33]
    try:
        raw = bytes(((encoded[i] - 0x41) << 4) | (encoded[i + 1] - 0x41) for i in range(0, 32, 2))
    except ValueError:
        return None
    return raw[:15].decode("cp437", "replace").rstrip(" ")


def face_dir(state_dir: Path, name: str) -> Path:
    return state_dir / "smb" / name / "C"


def clear_face_dir(state_dir: Path, name: str) -> None:
    """The share directory is a cache of machine state: a fleet start rebuilds it from the machine."""
    shutil.rmtree(state_dir / "smb" / name, ignore_errors=True)
