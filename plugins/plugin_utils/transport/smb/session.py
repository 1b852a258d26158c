# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One authenticated SMB1 session to an NT 4.0 host, its shares and its RPC pipes (impacket).

NT 4.0 speaks only the SMB1 dialect "NT LM 0.12", so that is the only dialect offered. Every SMB request the
session sends is counted (``requests_by_name``: the SMB command, or the RPC operation an SMB write/read
carries), so tests can prove how many round trips an audit costs.

Error mapping (the faults contract the WinRM client follows too, see docs/transport.md):

* the TCP connect fails, or the connection is reset or times out: ``HostUnreachableError``;
* the session setup is rejected (``STATUS_LOGON_FAILURE`` and friends): ``AuthenticationError`` naming the host
  and the user, never the password;
* a share that does not exist: ``NotFoundError``; ``STATUS_ACCESS_DENIED``: ``AccessDeniedError``.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import (
    AccessDeniedError,
    AuthenticationError,
    HostUnreachableError,
    KbfixError,
    NotFoundError,
    TransportError,
)
from ..base import LOG_OPERATIONS, LOG_PAYLOADS, LOG_STEPS, LogFn
from .impacket_lib import IMPACKET, SessionError, SMBConnection, nmb, nt_errors, rpcrt, smb, transport
from .settings import DEFAULT_NETBIOS_NAME, NETBIOS_PORT, SMBSettings

if IMPACKET.available:
    # Tables built from impacket's constants, so only where it imported (nothing reads them before the
    # transport has called IMPACKET.require()).
    _COMMAND_NAMES = {v: k for k, v in vars(smb.SMB).items() if k.startswith("SMB_COM_") and isinstance(v, int)}
    # NTSTATUS codes of a session setup that mean "these credentials are not accepted".
    _AUTH_FAILURES = {
        nt_errors.STATUS_LOGON_FAILURE, nt_errors.STATUS_ACCOUNT_DISABLED, nt_errors.STATUS_ACCOUNT_LOCKED_OUT,
        nt_errors.STATUS_PASSWORD_EXPIRED, nt_errors.STATUS_ACCOUNT_RESTRICTION, nt_errors.STATUS_WRONG_PASSWORD,
        nt_errors.STATUS_NO_SUCH_USER, nt_errors.STATUS_PASSWORD_MUST_CHANGE, nt_errors.STATUS_INVALID_LOGON_HOURS,
        nt_errors.STATUS_ACCOUNT_EXPIRED, nt_errors.STATUS_INVALID_WORKSTATION,
    }
    # What impacket raises when the connection breaks under a request (reset, timeout, closed).
    _BROKEN: tuple[type[BaseException], ...] = (OSError, nmb.NetBIOSError, nmb.NetBIOSTimeout, EOFError)
    _GONE = {nt_errors.STATUS_OBJECT_NAME_NOT_FOUND, nt_errors.STATUS_OBJECT_PATH_NOT_FOUND,
             nt_errors.STATUS_NO_SUCH_FILE, nt_errors.STATUS_NOT_FOUND}


def _no_log(level: int, message: str) -> None:
    del level, message


def status_of(exc: BaseException) -> int | None:
    """The NTSTATUS of an impacket SMB error, None for anything else."""
    if isinstance(exc, SessionError):
        return int(exc.getErrorCode())
    if isinstance(exc, smb.SessionError):
        return int(exc.get_error_code())
    return None


def is_missing(exc: BaseException) -> bool:
    """An SMB error saying the file or one of its directories does not exist."""
    return status_of(exc) in _GONE


def _status_text(code: int) -> str:
    name = nt_errors.ERROR_MESSAGES.get(code, (f"0x{code:08x}", ""))[0]
    return f"{name} (0x{code:08x})"


def connection_broken(exc: BaseException) -> bool:
    """The connection failed under the request (reset, timeout, closed): the host may be down."""
    return isinstance(exc, _BROKEN) and not isinstance(exc, (SessionError, smb.SessionError))


class Session:
    """A logged-on SMB1 session. Not thread-safe (impacket's connection is not): the transport uses one session
    from one thread at a time (NT 4.0 hosts are few and slow, and serial requests keep the count exact)."""

    def __init__(self, settings: SMBSettings, counts: Counter[str], log: LogFn = _no_log) -> None:
        self.settings = settings
        self.host = settings.host
        self._counts = counts
        self._log = log
        self._label = threading.local()
        self._trees: dict[str, int] = {}
        self._pipes: dict[str, rpcrt.DCERPC_v5] = {}
        self.conn = self._connect()

    # --- counting ----------------------------------------------------------------------------------

    def _count_sends(self, server: Any) -> None:
        send = server.sendSMB

        def counted(packet: Any) -> Any:
            label = getattr(self._label, "name", None)
            if label is None:  # a plain SMB operation; those inside an RPC call are logged with the call
                label = _COMMAND_NAMES.get(packet["Command"], f"SMB 0x{packet['Command']:02x}")
                self._log(LOG_OPERATIONS, f"{self.host}: {label}")
            self._counts[label] += 1
            return send(packet)

        # Instrumentation, not replacement: impacket's own sendSMB still builds, signs and sends the packet.
        server.sendSMB = counted

    @contextmanager
    def labelled(self, name: str) -> Iterator[None]:
        """Count the SMB requests sent inside under ``name`` (an RPC operation)."""
        previous = getattr(self._label, "name", None)
        self._label.name = name
        try:
            yield
        finally:
            self._label.name = previous

    # --- connecting --------------------------------------------------------------------------------

    def _connect(self) -> SMBConnection:
        s = self.settings
        where = f"{s.host}:{s.port}"
        account = f"{s.domain}\\{s.username}" if s.domain else s.username
        self._log(LOG_STEPS, f"{s.host}: connecting over SMB to port {s.port} as {account}")
        try:
            conn = self._open()
        except (OSError, nmb.NetBIOSError, nmb.NetBIOSTimeout) as exc:
            raise HostUnreachableError(f"{where}: cannot open an SMB session: {self._describe(exc)}") from None
        except (SessionError, smb.SessionError) as exc:
            raise TransportError(f"{where}: SMB negotiation failed: {exc}") from None
        if s.session == "netbios":
            self._counts["NetBIOS session request"] += 1
        self._counts["SMB_COM_NEGOTIATE"] += 1
        self._count_sends(conn.getSMBServer())
        try:
            conn.login(s.username, s.password, s.domain)
        except (SessionError, smb.SessionError) as exc:
            code = status_of(exc)
            conn.close()
            if code in _AUTH_FAILURES:
                raise AuthenticationError(f"{s.host}: the host rejected the credentials of user {s.username!r} "
                                          f"({_status_text(code or 0)})") from None
            raise TransportError(f"{s.host}: SMB session setup failed: {_status_text(code or 0)}") from None
        except (OSError, nmb.NetBIOSError, nmb.NetBIOSTimeout) as exc:
            raise HostUnreachableError(f"{where}: the connection broke during logon: {self._describe(exc)}") from None
        except Exception as exc:
            # impacket raises bare Exceptions from its NTLM code; the text cannot contain the password (it only
            # ever holds hashes), but keep only the class to be sure.
            raise AuthenticationError(f"{s.host}: SMB logon as {s.username!r} failed ({type(exc).__name__})") from None
        self._log(LOG_OPERATIONS, f"{s.host}: logged on, dialect {conn.getDialect()}, server OS {conn.getServerOS()!r}")
        return conn

    def _open(self) -> SMBConnection:
        """A negotiated SMB1 connection. Port 139 opens a NetBIOS session to the called name first, 445 is plain
        TCP: impacket decides that from the port number alone, so a NetBIOS session on another port (a
        forwarded 139, a test server) is requested here before impacket's SMB layer takes the socket over."""
        s = self.settings
        if s.session == "direct" or s.port == NETBIOS_PORT:
            return SMBConnection(self.called_name(), s.host, sess_port=s.port, timeout=int(s.timeout),
                                 preferredDialect=smb.SMB_DIALECT)
        nbt = nmb.NetBIOSTCPSession("", s.netbios_name, s.host, nmb.TYPE_SERVER, s.port, int(s.timeout))
        nbt._request_session(nmb.TYPE_SERVER, nmb.TYPE_WORKSTATION, int(s.timeout))
        return SMBConnection(existingConnection=smb.SMB(s.netbios_name, s.host, "", nmb.TYPE_SERVER, s.port,
                                                        int(s.timeout), session=nbt))

    def called_name(self) -> str:
        """The server name impacket is given. Given ``*SMBSERVER``, impacket asks the host's NetBIOS name
        service for its real name first (UDP 137, four one-second tries when nothing answers) unless the port
        is 445: a direct session on another port (a forwarded 445, winsim) waited 4 s per connection for
        that. A direct session sends no NetBIOS session request, so the name only goes into tree paths, where
        the address serves, as impacket itself does on 445. Port 139 keeps the wildcard (NT 4.0 answers the
        name query), as does a name the inventory chose."""
        s = self.settings
        if s.session == "direct" and s.netbios_name == DEFAULT_NETBIOS_NAME:
            return s.host
        return s.netbios_name

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        # impacket wraps the connect error: socket.error("Connection error (host:port)", <the real error>). Only
        # that exact class is unwrapped: its subclasses (ConnectionRefusedError) are the real error themselves.
        wrapped = type(exc) is OSError  # pylint: disable=unidiomatic-typecheck
        inner = next((a for a in exc.args if isinstance(a, OSError)), None) if wrapped else None
        if isinstance(exc, ConnectionRefusedError) or isinstance(inner, ConnectionRefusedError):
            text = "connection refused"
        elif isinstance(exc, socket.timeout | TimeoutError | nmb.NetBIOSTimeout):
            text = f"timed out after {self.settings.timeout:g} seconds"
        return redact(text, self.settings.password)

    def log_step(self, message: str) -> None:
        self._log(LOG_STEPS, redact(message, self.settings.password))

    def log_payload(self, message: str) -> None:
        self._log(LOG_PAYLOADS, f"{self.host}: {redact(message, self.settings.password)}")

    def close(self) -> None:
        for pipe in self._pipes.values():
            try:
                pipe.disconnect()
            except Exception as exc:
                self._log(LOG_OPERATIONS, f"{self.host}: closing a pipe failed ({type(exc).__name__})")
        self._pipes.clear()
        try:
            self.conn.close()
        except Exception as exc:
            self._log(LOG_OPERATIONS, f"{self.host}: closing the session failed ({type(exc).__name__})")

    # --- shares and pipes --------------------------------------------------------------------------

    def tree(self, share: str) -> int:
        """The tree id of ``share`` (connected once per session)."""
        key = share.upper()
        if key not in self._trees:
            try:
                self._trees[key] = self.conn.connectTree(share)
            except (SessionError, smb.SessionError, *_BROKEN) as exc:
                raise self.error(exc, f"share {share}") from None
        return self._trees[key]

    def pipe(self, name: str, uuid: bytes) -> rpcrt.DCERPC_v5:
        """A bound DCE/RPC connection over ``\\pipe\\<name>`` (opened once per session)."""
        if name not in self._pipes:
            rpc = transport.SMBTransport(self.host, self.settings.port, f"\\{name}", smb_connection=self.conn)
            dce = rpc.get_dce_rpc()
            try:
                with self.labelled(f"{name} open+bind"):
                    dce.connect()
                    dce.bind(uuid)
            except (SessionError, smb.SessionError, *_BROKEN) as exc:
                # A reset while the pipe is opened or bound is a broken connection like any other: impacket
                # raises NetBIOSError for it, which would otherwise escape as a bare "Task failed".
                raise self.error(exc, f"\\pipe\\{name}") from None
            except rpcrt.DCERPCException as exc:
                raise TransportError(f"{self.host}: cannot bind to \\pipe\\{name}: {exc}") from None
            self._pipes[name] = dce
        return self._pipes[name]

    def call(self, dce: rpcrt.DCERPC_v5, request: Any, what: str) -> tuple[int, Any]:
        """One RPC call: (Win32 error code, response). The response of a failed call is impacket's parse of the
        error reply (it carries the out parameters, ``lpcbData`` of ERROR_MORE_DATA for one), or None."""
        return self.invoke(type(request).__name__, what, lambda: dce.request(request))

    def invoke(self, name: str, what: str, send: Callable[[], Any]) -> tuple[int, Any]:
        """Run ``send`` (an impacket RPC helper) counted as ``name``; errors as in ``call``."""
        self._log(LOG_OPERATIONS, f"{self.host}: {name} {redact(what, self.settings.password)}")
        try:
            with self.labelled(name):
                response = send()
        except rpcrt.DCERPCException as exc:
            packet = exc.get_packet()
            code = exc.get_error_code()
            if packet is None:
                # A fault PDU: the server does not implement the operation (nca_s_op_rng_error) or failed it.
                raise TransportError(f"{self.host}: {name} ({what}) failed: {exc}") from None
            return int(code or 0), packet
        except (SessionError, smb.SessionError, *_BROKEN) as exc:
            raise self.error(exc, f"{name} {what}") from None
        return 0, response

    def error(self, exc: BaseException, what: str) -> KbfixError:
        """An impacket SMB error as one of ours, naming the host and what was being done."""
        code = status_of(exc)
        if code is None:
            if connection_broken(exc):
                broken = HostUnreachableError(f"{self.host}: the connection broke ({what}): {self._describe(exc)}")
                broken.lost = True  # this session had logged on: the host answered, then went away
                return broken
            return TransportError(f"{self.host}: {what} failed: {redact(str(exc), self.settings.password)}")
        if code == nt_errors.STATUS_BAD_NETWORK_NAME:
            return NotFoundError(f"{self.host}: the share of {what} does not exist (STATUS_BAD_NETWORK_NAME)")
        if code == nt_errors.STATUS_ACCESS_DENIED:
            return AccessDeniedError(f"{self.host}: access denied ({what})", code=5)  # Win32 ERROR_ACCESS_DENIED
        if code in _GONE:
            return NotFoundError(f"{self.host}: {what} does not exist ({_status_text(code)})")
        return TransportError(f"{self.host}: {what} failed: {_status_text(code)}")


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced (a password must never reach a log or error)."""
    return text.replace(secret, "********") if secret else text
