"""One simulated host's WinRM listener: HTTP/1.1 keep-alive, authentication, encryption, WS-Man dispatch.

Everything runs on one asyncio event loop per fleet; the machine half (registry, WMI, processes) is called in
a worker thread under a per-host lock because it may do real work (files, fsync, building PE files).

Request path, in the order Windows applies it: listener up? -> authenticate (401 + challenges) -> open the
body (sealed over HTTP, AllowUnencrypted=false) -> size limit (HTTP 413, like HTTP.sys) -> parse SOAP ->
injected faults -> operation quota -> dispatch -> seal the reply.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import http
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import auth, faults, soap, wql
from . import shell as shells
from .soap import Elem, Request

log = logging.getLogger("winsim.server")
T = TypeVar("T")

ACTION_ENUMERATE = f"{soap.NS_ENUMERATION}/Enumerate"
ACTION_PULL = f"{soap.NS_ENUMERATION}/Pull"
ACTION_RELEASE = f"{soap.NS_ENUMERATION}/Release"
ACTION_GET = f"{soap.NS_TRANSFER}/Get"
ACTION_PUT = f"{soap.NS_TRANSFER}/Put"
ACTION_CREATE = f"{soap.NS_TRANSFER}/Create"
ACTION_DELETE = f"{soap.NS_TRANSFER}/Delete"
ACTION_COMMAND = f"{soap.NS_SHELL}/Command"
ACTION_SEND = f"{soap.NS_SHELL}/Send"
ACTION_RECEIVE = f"{soap.NS_SHELL}/Receive"
ACTION_SIGNAL = f"{soap.NS_SHELL}/Signal"
WQL_DIALECT = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
SELECTOR_DIALECT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
# An unauthenticated Identify learns the protocol and the stack version, never the OS (Test-WSMan output).
ANONYMOUS_OS_VERSION = "OS: 0.0.0 SP: 0.0"
PROVIDER_FAILURE = 2150858755

_SHORT_NAMES = {
    ACTION_ENUMERATE: "Enumerate",
    ACTION_PULL: "Pull",
    ACTION_RELEASE: "Release",
    ACTION_GET: "Get",
    ACTION_PUT: "Put",
    ACTION_CREATE: "Create",
    ACTION_DELETE: "Delete",
    ACTION_COMMAND: "Command",
    ACTION_SEND: "Send",
    ACTION_RECEIVE: "Receive",
    ACTION_SIGNAL: "Signal",
}

MAX_HTTP_BODY = 16 * 1024 * 1024  # beyond this the connection is dropped unread
DEFAULT_OPERATION_TIMEOUT = 60.0
ENVELOPE_OVERHEAD = 2048  # room for header and wrappers when filling a reply up to MaxEnvelopeSize


@dataclass(frozen=True)
class Limits:
    """Service defaults of one WinRM version (winrm get winrm/config on a fresh install)."""

    max_operations: int  # MaxConcurrentOperationsPerUser (1.x: MaxConcurrentOperations)
    max_shells: int  # Winrs MaxShellsPerUser
    max_envelope: int  # MaxEnvelopeSizekb * 1024
    enumeration_timeout: float  # EnumerationTimeoutms
    shell_idle_timeout: float  # Winrs IdleTimeout
    filter_supported: bool  # WinRM 1.0 (2003 R2 hardware management) has no WQL filter
    detailed_create: bool  # 2.0+ describe the new shell (rsp:Shell) in the Create reply
    identify: bool = True  # WinRM 1.0 speaks the 2005 WS-Management draft, which has no Identify


def limits_for(version: str) -> Limits:
    try:
        number = float(version)
    except ValueError:
        number = 2.0
    if number >= 3.0:
        return Limits(1500, 30, 500 * 1024, 240.0, 7200.0, True, True)
    if number >= 2.0:
        return Limits(15, 5, 150 * 1024, 60.0, 180.0, True, True)
    if number >= 1.1:
        return Limits(100, 5, 150 * 1024, 60.0, 180.0, True, False)
    return Limits(100, 5, 150 * 1024, 60.0, 180.0, False, False, identify=False)


def action_name(req: Request) -> str:
    """The counter name of a request: ``Enumerate``, ``Receive``, ``Invoke:GetDWORDValue``, ..."""
    if not req.action:
        return "Identify"
    if req.action in _SHORT_NAMES:
        return _SHORT_NAMES[req.action]
    method = invoked_method(req)
    if method:
        return f"Invoke:{method}"
    return req.action.rstrip("/").rsplit("/", 1)[-1] or "Unknown"


def invoked_method(req: Request) -> str | None:
    """A WMI method invocation's action is the resource URI + ``/Method``."""
    resource = req.resource_uri.rstrip("/")
    if resource and req.action.lower().startswith(resource.lower() + "/"):
        method = req.action[len(resource) + 1:]
        return method if method and "/" not in method else None
    return None


@dataclass
class HostOptions:
    """Listener settings that are not part of the machine: the WinRM service configuration."""

    allow_unencrypted: bool = False  # winrm/config/service AllowUnencrypted
    allow_basic: bool = True  # Basic auth enabled; over plain HTTP it still needs AllowUnencrypted


@dataclass
class Counters:
    requests: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    auth_requests: int = 0
    # Injected faults that took effect, by kind (reset_before, quota_fault, ..., reboot): a campaign reports
    # what it did to the fleet from the fleet's own record, not from what the client noticed.
    injected: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> None:
        self.requests += 1
        self.by_action[name] = self.by_action.get(name, 0) + 1

    def count_injected(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1


@dataclass
class Enumeration:
    owner: str
    items: list[str]
    expires: float


class ResetConnection(Exception):
    """Drop the TCP connection with a reset, the way a crashed or rebooting host does."""


class Challenge(Exception):
    """Answer 401 with these WWW-Authenticate values."""

    def __init__(self, challenges: list[str]) -> None:
        super().__init__("authentication required")
        self.challenges = challenges


class HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    def wants_close(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        return connection == "close" or (self.version == "HTTP/1.0" and connection != "keep-alive")


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reboot: bool = False

    def encode(self) -> bytes:
        reason = http.HTTPStatus(self.status).phrase
        lines = [f"HTTP/1.1 {self.status} {reason}", "Server: Microsoft-HTTPAPI/2.0",
                 f"Date: {email.utils.formatdate(usegmt=True)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400) from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise HttpError(431) from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as exc:
        raise HttpError(400) from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400)
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    body = await _read_body(reader, headers)
    return HttpRequest(method, target, version, headers, body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise HttpError(400) from exc
    if length < 0 or length > MAX_HTTP_BODY:
        raise HttpError(413)
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HttpError(400) from exc
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent by WinRM clients
            return bytes(body)
        if len(body) + size > MAX_HTTP_BODY:
            raise HttpError(413)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: what a client sees when the host dies under it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def wmi_error_kind(exc: BaseException) -> str | None:
    """The kind of a machine-half ``WmiError`` (duck-typed: winsim.machine is not imported here)."""
    kind = getattr(exc, "kind", None)
    return kind if type(exc).__name__ == "WmiError" and isinstance(kind, str) else None


class Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.acceptor: auth.NegotiateAcceptor | None = None
        self.user: str | None = None  # set once Negotiate/NTLM completed: HTTP.sys binds it to the connection


class HostRuntime:
    """The WinRM service of one simulated host."""

    def __init__(
        self,
        host: Any,
        *,
        port: int,
        scheme: str,
        user_file: Path,
        options: HostOptions,
        executor: Executor,
        latency_ms: float = 0.0,
    ) -> None:
        self.host = host
        self.name: str = host.name
        self.port = port
        self.scheme = scheme
        self.user_file = user_file
        self.options = options
        self.executor = executor
        self.latency_ms = latency_ms
        self.limits = limits_for(str(host.winrm_version))
        self.faults = faults.FaultPlan()
        self.counters = Counters()
        self.shells = shells.ShellManager(self.limits.shell_idle_timeout)
        self.enumerations: dict[str, Enumeration] = {}
        self.in_flight: dict[str, int] = {}
        self.connections: set[Connection] = set()
        self.lock = asyncio.Lock()
        self.server: asyncio.Server | None = None
        self._placeholder: socket.socket | None = None
        self._was_up = True
        self._boot_id = getattr(host, "boot_id", None)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, ssl_context: ssl.SSLContext | None) -> None:
        auth.write_user_file(self.user_file, self.name, self.host.credentials)
        if not self.host.listener:
            self._reserve_port()
            return
        self.server = await asyncio.start_server(
            self._on_connect, "127.0.0.1", self.port, ssl=ssl_context, backlog=256, reuse_address=True,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def _reserve_port(self) -> None:
        # No WinRM on this host (NT 4.0): the port is bound but never listened on, so connecting to it is
        # refused, as it is for a real host without a listener, and no other listener can take the port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._placeholder = sock

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.writer.transport.abort()
        if self.server is not None:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        if self._placeholder is not None:
            self._placeholder.close()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a machine-half call in a worker thread; one call at a time per host."""
        async with self.lock:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run(self, fn: Callable[[], T]) -> T:
        return await self.call(fn)

    async def is_up(self) -> bool:
        up = bool(await self.call(self.host.is_up))
        # A reboot nobody asked about during its down window still shows as a new boot_id.
        boot_id = getattr(self.host, "boot_id", None)
        if (not up and self._was_up) or boot_id != self._boot_id:
            self._forget_sessions()
        self._was_up = up
        self._boot_id = boot_id
        return up

    def _forget_sessions(self) -> None:
        # A reboot ends every shell, enumeration and operation; clients find out on their next request.
        self.shells.clear()
        self.enumerations.clear()
        self.in_flight.clear()

    def counters_json(self) -> dict[str, Any]:
        return {
            "requests": self.counters.requests,
            "by_action": dict(self.counters.by_action),
            "auth_requests": self.counters.auth_requests,
            "shells_open": len(self.shells.shells),
            "injected": dict(self.counters.injected),
        }

    # --- connections -------------------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer)
        self.connections.add(conn)
        try:
            if not await self.is_up():
                reset(writer)
                return
            await self._serve(conn, reader, writer)
        except ResetConnection:
            reset(writer)
        except HttpError as exc:
            with suppress(ConnectionError):
                writer.write(Reply(exc.status, [("Connection", "close")]).encode())
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except Exception:
            log.exception("%s: connection handler failed", self.name)
            reset(writer)
        finally:
            self.connections.discard(conn)
            await _close(writer)

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            reply = await self.serve_request(conn, request)
            if request.wants_close():
                reply.headers.append(("Connection", "close"))
            writer.write(reply.encode())
            await writer.drain()
            if reply.reboot:
                await self._reboot_now(conn)
                return
            if request.wants_close():
                return

    async def _reboot_now(self, current: Connection) -> None:
        # The reply that triggered it is already on its way; every other connection dies with the host.
        log.info("%s: injected unexpected reboot", self.name)
        self.counters.count_injected("reboot")
        await self.call(self.host.reboot, 0)
        self._forget_sessions()
        self._was_up = False
        for other in list(self.connections):
            if other is not current:
                reset(other.writer)

    async def serve_request(self, conn: Connection, request: HttpRequest) -> Reply:
        await self._delay()
        if not await self.is_up():
            raise ResetConnection
        if request.target.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            return Reply(404)
        if request.method != "POST":
            return Reply(405, [("Allow", "POST")])
        anonymous = self._unauthenticated_identify(request)
        if anonymous is not None:
            return anonymous
        try:
            user, final_token, scheme = self._authenticate(conn, request)
        except Challenge as challenge:
            self.counters.auth_requests += 1
            return Reply(401, [("WWW-Authenticate", value) for value in challenge.challenges])
        token_headers = []
        if final_token:
            # The last SPNEGO leg (mechListMIC) rides on the 200; strict clients fail the MIC check without it.
            token_headers.append(("WWW-Authenticate", f"{scheme} {base64.b64encode(final_token).decode()}"))
        return await self._serve_authenticated(conn, request, user, token_headers)

    async def _serve_authenticated(self, conn: Connection, request: HttpRequest, user: str,
                                   token_headers: list[tuple[str, str]]) -> Reply:
        encrypted = auth.is_encrypted(request.headers.get("content-type", ""))
        try:
            message = self._open_body(conn, request, encrypted)
        except auth.EncryptionError as exc:
            log.warning("%s: %s", self.name, exc)
            return Reply(400, token_headers)
        except Challenge as challenge:
            self.counters.auth_requests += 1
            return Reply(401, [("WWW-Authenticate", value) for value in challenge.challenges])
        if not message.strip():
            # The empty POST clients send to finish authentication before sealing anything.
            self.counters.auth_requests += 1
            return Reply(200, token_headers)
        if len(message) > self.limits.max_envelope:
            return Reply(413, token_headers)  # HTTP.sys refuses it; clients report 2150859025
        status, body, reboot = await self._wsman(message, user)
        headers = list(token_headers)
        if not body:
            return Reply(status, headers, reboot=reboot)
        if encrypted and conn.acceptor is not None:
            body = conn.acceptor.seal(body)
            headers.append(("Content-Type", auth.ENCRYPTED_CONTENT_TYPE))
        else:
            headers.append(("Content-Type", SOAP_CONTENT_TYPE))
        return Reply(status, headers, body, reboot=reboot)

    def _unauthenticated_identify(self, request: HttpRequest) -> Reply | None:
        """``WSMANIDENTIFY: unauthenticated`` with an Identify body (Test-WSMan without -Authentication,
        WSManFlagUseNoAuthentication): answered before authentication, in plain text even over HTTP with
        AllowUnencrypted=false, with the OS part of ProductVersion zeroed. Anything else carrying the header
        goes through authentication as usual (None)."""
        if request.headers.get("wsmanidentify", "").strip().lower() != "unauthenticated":
            return None
        if not self.limits.identify or auth.is_encrypted(request.headers.get("content-type", "")):
            return None
        try:
            req = soap.parse_request(request.body)
        except faults.WsmanFault:
            return None
        if not soap.is_identify(req):
            return None
        self.counters.count(action_name(req))
        return Reply(200, [("Content-Type", SOAP_CONTENT_TYPE)], self._identify_reply(ANONYMOUS_OS_VERSION))

    async def _delay(self) -> None:
        latency = self.faults.latency_ms if self.faults.latency_ms is not None else self.latency_ms
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)

    # --- authentication ----------------------------------------------------------------------------

    def _challenges(self) -> list[str]:
        values = ["Negotiate", "Kerberos"]
        if self._basic_allowed():
            values.append('Basic realm="WSMAN"')
        return values

    def _basic_allowed(self) -> bool:
        return self.options.allow_basic and (self.scheme == "https" or self.options.allow_unencrypted)

    def _authenticate(self, conn: Connection, request: HttpRequest) -> tuple[str, bytes | None, str]:
        header = request.headers.get("authorization")
        if not header:
            if conn.user is not None:
                return conn.user, None, "Negotiate"
            raise Challenge(self._challenges())
        scheme, token = auth.parse_authorization(header)
        if scheme in ("negotiate", "ntlm"):
            return self._negotiate(conn, "NTLM" if scheme == "ntlm" else "Negotiate", token)
        if scheme == "basic" and self._basic_allowed():
            try:
                user = auth.check_basic(token, self.host.credentials)
            except auth.AuthError as exc:
                raise Challenge(self._challenges()) from exc
            if self.faults.take_auth_fail():
                raise Challenge(self._challenges())
            return user, None, "Basic"
        raise Challenge(self._challenges())

    def _negotiate(self, conn: Connection, scheme: str, token: str) -> tuple[str, bytes | None, str]:
        conn.user = None
        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error as exc:
            raise Challenge(self._challenges()) from exc
        if conn.acceptor is None:
            conn.acceptor = auth.NegotiateAcceptor(self.user_file)
        try:
            out = conn.acceptor.step(raw)
        except auth.AuthError as exc:
            conn.acceptor = None
            raise Challenge(self._challenges()) from exc
        if not conn.acceptor.complete:
            raise Challenge([f"{scheme} {base64.b64encode(out or b'').decode()}"])
        account = auth.find_account(self.host.credentials, conn.acceptor.username)
        if account is None or self.faults.take_auth_fail():
            conn.acceptor = None
            raise Challenge(self._challenges())
        conn.user = account
        return account, out, scheme

    def _open_body(self, conn: Connection, request: HttpRequest, encrypted: bool) -> bytes:
        if encrypted:
            if conn.acceptor is None or conn.user is None:
                raise auth.EncryptionError("sealed body on a connection without a Negotiate context")
            return conn.acceptor.unseal(request.body)
        if request.body.strip() and self.scheme == "http" and not self.options.allow_unencrypted:
            # AllowUnencrypted=false: Windows answers a plain-text body over HTTP with 401.
            conn.user = None
            conn.acceptor = None
            raise Challenge(self._challenges())
        return request.body

    # --- WS-Management -----------------------------------------------------------------------------

    async def _wsman(self, message: bytes, user: str) -> tuple[int, bytes, bool]:
        try:
            req = soap.parse_request(message)
        except faults.WsmanFault as fault:
            self.counters.count("Invalid")
            return 500, soap.fault_envelope(fault, None, self.name), False
        name = action_name(req)
        self.counters.count(name)
        reboot = self.faults.count_request_for_reboot()
        # Every rule sees every request (its skip/count are its own); the earliest stage that fires wins.
        fired = self.faults.fire(name)
        reboot = reboot or "reboot_after" in fired  # an unexpected restart right after this request
        injected = self._injected_fault(fired, name, req.message_id)
        if injected is not None:
            return injected[0], injected[1], reboot
        if "corrupt_stdin" in fired:
            self.counters.count_injected("corrupt_stdin")
            req.corrupt_stdin = True
        status, body = await self._operate(req, user)
        if "reset_after" in fired:
            log.info("%s: injected reset after %s", self.name, name)
            self.counters.count_injected("reset_after")
            raise ResetConnection
        return status, body, reboot

    def _injected_fault(self, fired: set[str], name: str, relates_to: str | None) -> tuple[int, bytes] | None:
        kind = next((k for k in faults.RULE_KINDS if k in fired and k not in faults.NOT_ANSWERS), None)
        if kind is None:
            return None
        self.counters.count_injected(kind)
        if kind == "reset_before":
            log.info("%s: injected reset before %s", self.name, name)
            raise ResetConnection
        if kind == "http_500":
            return 500, b""
        if kind == "quota_fault":
            fault = faults.quota_operations(self.limits.max_operations)
        elif kind == "quota_wmi_fault":
            fault = faults.quota_operations_wmi_error(self.limits.max_operations)
        else:
            fault = faults.operation_timed_out()
        return 500, soap.fault_envelope(fault, relates_to, self.name)

    async def _operate(self, req: Request, user: str) -> tuple[int, bytes]:
        try:
            # Pull and Release continue an enumeration that is already counted; they must get through.
            if req.action not in (ACTION_PULL, ACTION_RELEASE):
                self._check_operation_quota(user)
        except faults.WsmanFault as fault:
            return 500, soap.fault_envelope(fault, req.message_id, self.name)
        self.in_flight[user] = self.in_flight.get(user, 0) + 1
        try:
            return 200, await self._dispatch(req, user)
        except faults.WsmanFault as fault:
            return 500, soap.fault_envelope(fault, req.message_id, self.name)
        except Exception:
            log.exception("%s: %s failed inside the simulator", self.name, action_name(req))
            failure = faults.WsmanFault(PROVIDER_FAILURE, "w:InternalError", "The WS-Management service cannot "
                                        "process the request. A provider failed; see the simulator log.",
                                        sender=False)
            return 500, soap.fault_envelope(failure, req.message_id, self.name)
        finally:
            # A reboot may have cleared the table while this operation ran.
            remaining = self.in_flight.get(user, 1) - 1
            if remaining > 0:
                self.in_flight[user] = remaining
            else:
                self.in_flight.pop(user, None)

    def _check_operation_quota(self, user: str) -> None:
        self._expire_enumerations()
        # Windows counts requests in progress and enumerations left open against the same quota.
        open_enumerations = sum(1 for e in self.enumerations.values() if e.owner == user)
        if self.in_flight.get(user, 0) + open_enumerations >= self.limits.max_operations:
            raise faults.quota_operations(self.limits.max_operations)

    def _expire_enumerations(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self.enumerations.items() if e.expires < now]:
            del self.enumerations[key]

    async def _dispatch(self, req: Request, user: str) -> bytes:
        if not req.action:
            return await self._identify()
        action = req.action
        if action in (ACTION_ENUMERATE, ACTION_PULL, ACTION_RELEASE):
            return await self._enumeration(req, user)
        if req.resource_uri.lower() == shells.CMD_SHELL_URI:
            return await self._shell(req, user)
        if action == ACTION_GET:
            return await self._get(req)
        if invoked_method(req):
            return await self._invoke(req)
        raise faults.action_not_supported(action)

    def _reply(self, req: Request, action: str, body: list[Elem | str]) -> bytes:
        return soap.envelope(action, req.message_id, body)

    def _reply_budget(self, req: Request) -> int:
        limit = min(req.max_envelope_size or self.limits.max_envelope, self.limits.max_envelope)
        return max(limit - ENVELOPE_OVERHEAD, 0)

    async def _machine(self, fn: Callable[..., T], *args: Any, invalid_class: faults.WsmanFault | None = None) -> T:
        try:
            return await self.call(fn, *args)
        except Exception as exc:
            kind = wmi_error_kind(exc)
            if kind is None:
                raise
            if kind == "invalid_class" and invalid_class is not None:
                raise invalid_class from exc
            raise faults.from_wmi_error(kind, str(getattr(exc, "message", exc))) from exc

    # --- enumeration -------------------------------------------------------------------------------

    async def _enumeration(self, req: Request, user: str) -> bytes:
        if req.action == ACTION_PULL:
            return self._pull(req, user)
        if req.action == ACTION_RELEASE:
            context = soap.child_text(req.body, soap.NS_ENUMERATION, "EnumerationContext") or ""
            if self.enumerations.pop(context, None) is None:
                raise faults.invalid_enumeration_context()
            return self._reply(req, f"{soap.NS_ENUMERATION}/ReleaseResponse", [])
        return await self._enumerate(req, user)

    async def _enumerate(self, req: Request, user: str) -> bytes:
        body = req.body
        if body is None or body.tag != soap.q(soap.NS_ENUMERATION, "Enumerate"):
            raise faults.schema_validation("Enumerate needs an n:Enumerate body")
        items = await self._enumeration_items(req, body)
        response = f"{soap.NS_ENUMERATION}/EnumerateResponse"
        if soap.child(body, soap.NS_WSMAN, "OptimizeEnumeration") is None:
            context = self._store_enumeration(user, items)
            return self._reply(req, response, [Elem("n:EnumerateResponse", children=[
                Elem("n:EnumerationContext", text=context)])])
        max_elements = self._max_elements(soap.child_text(body, soap.NS_WSMAN, "MaxElements"))
        batch, rest = take_items(items, max_elements, self._reply_budget(req))
        # With everything inline the context is empty: there is nothing left to Pull.
        context = self._store_enumeration(user, rest) if rest else ""
        children: list[Elem | str] = [Elem("n:EnumerationContext", text=context)]
        children.append(Elem("w:Items", children=batch))
        if not rest:
            children.append(Elem("w:EndOfSequence"))
        return self._reply(req, response, [Elem("n:EnumerateResponse", children=children)])

    def _pull(self, req: Request, user: str) -> bytes:
        self._expire_enumerations()
        context = soap.child_text(req.body, soap.NS_ENUMERATION, "EnumerationContext") or ""
        enumeration = self.enumerations.get(context)
        if enumeration is None or enumeration.owner != user:
            raise faults.invalid_enumeration_context()
        max_elements = self._max_elements(soap.child_text(req.body, soap.NS_ENUMERATION, "MaxElements"))
        batch, rest = take_items(enumeration.items, max_elements, self._reply_budget(req))
        children: list[Elem | str] = []
        if rest:
            enumeration.items = rest
            enumeration.expires = time.monotonic() + self.limits.enumeration_timeout
            children.append(Elem("n:EnumerationContext", text=context))
        else:
            del self.enumerations[context]
        children.append(Elem("n:Items", children=batch))
        if not rest:
            children.append(Elem("n:EndOfSequence"))
        return self._reply(req, f"{soap.NS_ENUMERATION}/PullResponse", [Elem("n:PullResponse", children=children)])

    @staticmethod
    def _max_elements(text: str | None) -> int:
        # DSP0226: without MaxElements the service behaves as if 1 was asked for.
        if not text:
            return 1
        try:
            return max(int(text), 1)
        except ValueError as exc:
            raise faults.schema_validation(f"MaxElements {text!r} is not a number") from exc

    def _store_enumeration(self, user: str, items: list[str]) -> str:
        context = soap.new_message_id()
        self.enumerations[context] = Enumeration(user, items, time.monotonic() + self.limits.enumeration_timeout)
        return context

    async def _enumeration_items(self, req: Request, body: Any) -> list[str]:
        filter_el = soap.child(body, soap.NS_WSMAN, "Filter")
        if filter_el is None:
            filter_el = soap.child(body, soap.NS_ENUMERATION, "Filter")
        if filter_el is not None:
            if not self.limits.filter_supported:
                raise faults.cannot_process_filter("this version of the WS-Management service does not support "
                                                   "filters")
            dialect = filter_el.get("Dialect") or WQL_DIALECT
            if dialect == WQL_DIALECT:
                return await self._wql_items(req, (filter_el.text or "").strip())
            if dialect != SELECTOR_DIALECT:
                raise faults.filter_dialect_unavailable(dialect)
        location = soap.wmi_location(req.resource_uri)
        if location is None or location[1] == "*":
            raise faults.resource_not_found()
        namespace, class_name = location
        instances = await self._machine(self.host.wmi_enumerate, namespace, class_name, filter_el is not None)
        if filter_el is not None:
            instances = self._selector_filter(filter_el, instances)
        return [_typed_item(namespace, inst) for inst in instances]

    @staticmethod
    def _selector_filter(filter_el: Any, instances: list[Any]) -> list[Any]:
        selector_set = soap.child(filter_el, soap.NS_WSMAN, "SelectorSet")
        wanted = {} if selector_set is None else {
            (s.get("Name") or ""): (s.text or "") for s in selector_set.findall(soap.q(soap.NS_WSMAN, "Selector"))}
        return [inst for inst in instances if all(_selector_matches(inst, n, v) for n, v in wanted.items())]

    async def _wql_items(self, req: Request, text: str) -> list[str]:
        location = soap.wmi_location(req.resource_uri)
        if location is None:
            raise faults.resource_not_found()
        namespace = location[0]
        try:
            query = wql.parse(text)
        except wql.WqlError as exc:
            raise exc.to_fault() from exc
        # filtered=True tells the machine a WHERE clause narrows the result (CIM_DataFile refuses otherwise).
        # An unknown class fails WMI's ExecQuery (WBEM_E_INVALID_CLASS), which WinRM reports as a filter it
        # cannot process, not as the missing resource a Get or plain Enumerate of that class gets.
        instances = await self._machine(self.host.wmi_enumerate, namespace, query.class_name,
                                        query.where is not None, invalid_class=faults.class_not_in_namespace(text))
        try:
            return [_wql_item(namespace, query, inst) for inst in instances if query.matches(inst.properties)]
        except wql.WqlError as exc:
            raise exc.to_fault() from exc

    # --- transfer and methods ----------------------------------------------------------------------

    async def _get(self, req: Request) -> bytes:
        response = f"{soap.NS_TRANSFER}/GetResponse"
        if req.resource_uri.rstrip("/").lower() == CONFIG_URI:
            return self._reply(req, response, [self._config()])
        location = soap.wmi_location(req.resource_uri)
        if location is None or location[1] == "*":
            raise faults.resource_not_found()
        namespace, class_name = location
        inst = await self._machine(self.host.wmi_get, namespace, class_name, dict(req.selectors))
        return self._reply(req, response, [_typed_item(namespace, inst)])

    async def _invoke(self, req: Request) -> bytes:
        method = invoked_method(req) or ""
        location = soap.wmi_location(req.resource_uri)
        if location is None:
            raise faults.action_not_supported(req.action)
        body = req.body
        if body is not None and soap.local_name(body.tag).lower() != f"{method}_input".lower():
            raise faults.schema_validation(f"the body of {method} must be {method}_INPUT")
        params = soap.parse_method_input(body)
        namespace, class_name = location
        out = await self._machine(self.host.wmi_invoke, namespace, class_name, method, dict(req.selectors), params)
        return self._reply(req, req.action + "Response", [soap.method_output(req.resource_uri, method, out)])

    def _config(self) -> Elem:
        limits = self.limits

        def flag(value: bool) -> str:
            return "true" if value else "false"

        service = Elem("cfg:Service", children=[
            Elem("cfg:MaxConcurrentOperationsPerUser", text=str(limits.max_operations)),
            Elem("cfg:EnumerationTimeoutms", text=str(int(limits.enumeration_timeout * 1000))),
            Elem("cfg:AllowUnencrypted", text=flag(self.options.allow_unencrypted)),
            Elem("cfg:Auth", children=[
                Elem("cfg:Basic", text=flag(self.options.allow_basic)),
                Elem("cfg:Kerberos", text="true"),
                Elem("cfg:Negotiate", text="true"),
                Elem("cfg:Certificate", text="false"),
                Elem("cfg:CredSSP", text="false"),
            ]),
        ])
        winrs = Elem("cfg:Winrs", children=[
            Elem("cfg:IdleTimeout", text=str(int(limits.shell_idle_timeout * 1000))),
            Elem("cfg:MaxShellsPerUser", text=str(limits.max_shells)),
        ])
        return Elem("cfg:Config", [("xmlns:cfg", soap.NS_CONFIG)], [
            Elem("cfg:MaxEnvelopeSizekb", text=str(limits.max_envelope // 1024)),
            Elem("cfg:MaxTimeoutms", text="60000"),
            Elem("cfg:MaxBatchItems", text="32000"),
            Elem("cfg:MaxProviderRequests", text="4294967295"),
            service,
            winrs,
        ])

    async def _identify(self) -> bytes:
        if not self.limits.identify:
            # The 2005 draft WinRM 1.0 implements has no Identify: to it this is an envelope without a:Action.
            raise faults.header_required("a:Action")
        version = ANONYMOUS_OS_VERSION
        with suppress(Exception):
            os_instances = await self.call(self.host.wmi_enumerate, "root/cimv2", "Win32_OperatingSystem")
            props = os_instances[0].properties
            version = (f"OS: {props.get('Version', '0.0.0')} SP: {props.get('ServicePackMajorVersion', 0)}."
                       f"{props.get('ServicePackMinorVersion', 0)}")
        return self._identify_reply(version)

    def _identify_reply(self, os_version: str) -> bytes:
        """IdentifyResponse in DSP0226's namespace: no WS-Addressing headers, just the body."""
        body = Elem("wsmid:IdentifyResponse", [("xmlns:wsmid", soap.NS_IDENTITY)], [
            Elem("wsmid:ProtocolVersion", text=soap.NS_WSMAN),
            Elem("wsmid:ProductVendor", text="Microsoft Corporation"),
            Elem("wsmid:ProductVersion", text=f"{os_version} Stack: {self.host.winrm_version}"),
        ])
        env = Elem("s:Envelope", [("xml:lang", "en-US"), ("xmlns:s", soap.NS_SOAP)],
                   [Elem("s:Header"), Elem("s:Body", children=[body])])
        return env.to_xml().encode("utf-8")

    # --- the cmd shell -----------------------------------------------------------------------------

    async def _shell(self, req: Request, user: str) -> bytes:
        action = req.action
        if action == ACTION_CREATE:
            await self.shells.expire_idle(self.run)
            created = self.shells.create(user, req.body, req.options, self.limits.max_shells)
            address = req.to or f"{self.scheme}://127.0.0.1:{self.port}/wsman"
            return self._reply(req, f"{soap.NS_TRANSFER}/CreateResponse",
                               list(shells.create_response(created, address, self.limits.detailed_create)))
        shell = self.shells.get(req.selectors.get("ShellId"))
        if action == ACTION_DELETE:
            await self.shells.delete(shell.shell_id, self.run)
            return self._reply(req, f"{soap.NS_TRANSFER}/DeleteResponse", [])
        if action == ACTION_COMMAND:
            command_id = await self.shells.command(shell, req.body, self.host.start_process, self.run)
            return self._reply(req, f"{soap.NS_SHELL}/CommandResponse", [shells.command_response(command_id)])
        if action == ACTION_SEND:
            await self.shells.send(shell, req.body, self.run, corrupt=req.corrupt_stdin)
            return self._reply(req, f"{soap.NS_SHELL}/SendResponse",
                               [Elem("rsp:SendResponse", [("xmlns:rsp", soap.NS_SHELL)])])
        if action == ACTION_RECEIVE:
            timeout = req.operation_timeout if req.operation_timeout is not None else DEFAULT_OPERATION_TIMEOUT
            # base64 grows the output by a third; always let some through so a command can make progress.
            max_bytes = max(self._reply_budget(req) * 3 // 4, 1024)
            received = await self.shells.receive(shell, req.body, timeout, max_bytes, self.run)
            return self._reply(req, f"{soap.NS_SHELL}/ReceiveResponse", [received])
        if action == ACTION_SIGNAL:
            await self.shells.signal(shell, req.body, self.run)
            return self._reply(req, f"{soap.NS_SHELL}/SignalResponse",
                               [Elem("rsp:SignalResponse", [("xmlns:rsp", soap.NS_SHELL)])])
        raise faults.action_not_supported(action)


def _typed_item(namespace: str, inst: Any) -> str:
    uri = soap.class_resource_uri(namespace, inst.class_name)
    return soap.instance_element(inst.class_name, uri, inst.properties, inst.cim_types).to_xml()


def _wql_item(namespace: str, query: wql.Query, inst: Any) -> str:
    if query.properties is None:
        return _typed_item(namespace, inst)
    values = [(name, value, inst.cim_types.get(name)) for name, value in wql.select(query, inst.properties)]
    return soap.fragment_element(values).to_xml()


def _selector_matches(inst: Any, name: str, value: str) -> bool:
    try:
        return str(wql.lookup(inst.properties, name)).lower() == value.lower()
    except wql.WqlError:
        return False


def take_items(items: list[str], max_elements: int, budget: int) -> tuple[list[str], list[str]]:
    """As many items as MaxElements and the reply's envelope size allow; at least one or a fault."""
    taken: list[str] = []
    size = 0
    for item in items[:max_elements]:
        item_size = len(item.encode("utf-8"))
        if size + item_size > budget:
            if not taken:
                raise faults.response_too_large()
            break
        taken.append(item)
        size += item_size
    return taken, items[len(taken):]


async def _close(writer: asyncio.StreamWriter) -> None:
    if writer.transport.is_closing():
        return
    writer.close()
    with suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
