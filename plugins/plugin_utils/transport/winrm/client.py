# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A WinRM client that sends any WS-Man envelope and never runs PowerShell.

Built on pywinrm's ``winrm.protocol.Protocol``: its transport does the HTTP, the authentication (Basic,
NTLM, Kerberos, CredSSP, certificate) and, over HTTP, the per-message encryption Windows insists on when
``AllowUnencrypted`` is false. We only use ``Protocol.send_message``; envelopes come from ``wsman``. The one
exception is NTLM over plain HTTP with sealed messages, the common case, which goes through ``ntlm_http``: one
HTTP request of authentication per connection where pywinrm needs three (``use_own_ntlm``).

Settings come from Ansible's own ``winrm`` connection plugin (``settings_from_connection``) so an inventory
written for Ansible works unchanged, without ever opening the PowerShell-bound shell that plugin opens.

Retry policy (see docs/transport.md):

* connection refused / DNS failure / connect timeout: the request was never sent, so any request is retried
  with exponential backoff and jitter, a bounded number of times, then ``HostUnreachableError``;
* connection reset or read timeout after sending: the host may have applied it. Reads are retried; writes
  raise ``AmbiguousWriteError`` so the caller reads back before deciding (wmi.set_value does);
* WSManFault 2150858793 (operation timed out): retried for reads and Pull; Receive hands it to its loop;
* WSManFault 2150859174 / 2150859173 (quota), also when only an MSFT_WmiError detail carries the code
  (Server 2012): the service refused before doing anything: back off, retry.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from ..requirement import Requirement
from ..retry import RetryBudget, RetryPolicy

try:
    import requests.exceptions
    import urllib3.exceptions
    from winrm import exceptions as winrm_exc
    from winrm.protocol import Protocol
except ImportError as _error:  # requests and urllib3 come with pywinrm; WinRMClient() says what is missing
    PYWINRM = Requirement.missing("pywinrm", "WinRM", _error)
else:
    PYWINRM = Requirement.present("pywinrm", "WinRM")

from ...errors import (
    AmbiguousWriteError,
    ArgumentError,
    AuthenticationError,
    HostUnreachableError,
    KbfixError,
    OperationTimeoutError,
    QuotaExceededError,
    TransportError,
    WSManFaultError,
)
from ..base import LOG_OPERATIONS, LOG_PAYLOADS, LOG_STEPS, LogFn
from . import ntlm_http, wsman

# Verbosity levels of the log hook (the -v count Ansible users know from ansible.windows).

TRANSPORTS = ("basic", "plaintext", "ssl", "ntlm", "kerberos", "credssp", "certificate")
# WinRM 2.0's default MaxConcurrentOperationsPerUser is 15; stay well below it so one controller never
# trips the quota on its own, and leave room for a person's session on the same account.
DEFAULT_MAX_IN_FLIGHT = 5
WINRM2_MAX_OPERATIONS = 15


def require_packages() -> None:
    """``MissingRequirementError`` unless pywinrm and defusedxml imported. Called where WinRM use starts, before
    any request: building settings (Ansible's own winrm plugin needs pywinrm for that) and building a client."""
    PYWINRM.require()
    wsman.DEFUSEDXML.require()


def _no_log(level: int, message: str) -> None:
    del level, message


@dataclass(frozen=True)
class WinRMSettings:
    """Everything needed to talk to one host. ``password`` never appears in ``repr``."""

    host: str
    port: int = 5985
    scheme: str = "http"
    path: str = "/wsman"
    transports: tuple[str, ...] = ("ntlm",)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cert_validation: str = "validate"  # "validate" | "ignore"
    ca_trust_path: str | None = None
    message_encryption: str = "auto"  # "auto" | "always" | "never"
    read_timeout: int = 30
    operation_timeout: int = 20
    connection_timeout: float = 10.0  # TCP connect only; a dead host fails fast during reboot waits
    kerberos_delegation: bool = False
    kerberos_hostname_override: str | None = None
    service: str = "HTTP"
    cert_pem: str | None = None
    cert_key_pem: str | None = field(default=None, repr=False)
    extra: tuple[tuple[str, Any], ...] = ()  # further pywinrm Protocol keywords (proxy, send_cbt, ...)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 8.0
    max_elements: int = 32000
    # Opt-ins for weakening the security defaults (see ``_validate_security``); inventory variables
    # ``kbfix_allow_basic_over_http`` and ``kbfix_allow_unencrypted_http`` set them.
    allow_basic_over_http: bool = False
    allow_unencrypted_http: bool = False
    # The inventory name, for messages: in a fleet behind one address (NAT, a jump host, a simulator) the
    # address alone does not say which host failed.
    name: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"{self.scheme}://{host}:{self.port}{path}"


def _validate(s: WinRMSettings) -> None:
    if not s.host:
        raise ArgumentError("host", "a host name or address is required")
    if s.scheme not in ("http", "https"):
        raise ArgumentError("scheme", f"must be http or https, not {s.scheme!r}")
    if not 0 < s.port < 65536:
        raise ArgumentError("port", f"{s.port} is not a TCP port")
    if not s.transports or any(t not in TRANSPORTS for t in s.transports):
        raise ArgumentError("transport", f"each transport must be one of {', '.join(TRANSPORTS)}: {s.transports}")
    if s.cert_validation not in ("validate", "ignore"):
        raise ArgumentError("server_cert_validation", "must be validate or ignore")
    if s.message_encryption not in ("auto", "always", "never"):
        raise ArgumentError("message_encryption", "must be auto, always or never")
    if not 0 < s.operation_timeout < s.read_timeout:
        # pywinrm's rule too: the service may hold a request for the whole operation timeout.
        raise ArgumentError("read_timeout", "must be greater than operation_timeout, both positive")
    if not 1 <= s.max_in_flight < WINRM2_MAX_OPERATIONS:
        raise ArgumentError("max_in_flight", f"must be between 1 and {WINRM2_MAX_OPERATIONS - 1}")
    if s.retries < 0 or s.backoff < 0:
        raise ArgumentError("retries", "retries and backoff cannot be negative")
    _validate_security(s)


# Transports that send the password itself in the Authorization header (Base64 is not encryption):
# pywinrm's "plaintext" and "ssl" are Basic too, "ssl" adding only a client certificate.
BASIC_TRANSPORTS = frozenset({"basic", "plaintext", "ssl"})
# Transports pywinrm can seal messages with over HTTP (message_encryption auto/always).
SEALING_TRANSPORTS = frozenset({"ntlm", "kerberos", "credssp"})
ALLOW_BASIC_VARIABLE = "kbfix_allow_basic_over_http"
ALLOW_UNENCRYPTED_VARIABLE = "kbfix_allow_unencrypted_http"


def _validate_security(s: WinRMSettings) -> None:
    """Refuse, before anything is sent, settings that would put credentials or data on the wire in clear.

    Checked as a pair (scheme and transport together), because each is harmless alone: Basic is fine over
    HTTPS, HTTP is fine with a sealing transport. The errors say which variable opts in."""
    if s.scheme != "http":
        return
    basic = sorted(BASIC_TRANSPORTS.intersection(s.transports))
    if basic and not s.allow_basic_over_http:
        raise ArgumentError(
            "ansible_winrm_transport",
            f"{'/'.join(basic)} sends the password in clear over HTTP; use ansible_winrm_scheme: https, or "
            f"ntlm/kerberos (which encrypt every message), or set {ALLOW_BASIC_VARIABLE}: true for this host "
            "to accept the risk (the listener must also have AllowUnencrypted=true)")
    if s.message_encryption == "never" and not s.allow_unencrypted_http:
        raise ArgumentError(
            "ansible_winrm_message_encryption",
            f"'never' over HTTP sends every message in clear; use auto or always (or HTTPS), or set "
            f"{ALLOW_UNENCRYPTED_VARIABLE}: true for this host to accept the risk")


def use_own_ntlm(s: WinRMSettings, transport: str) -> bool:
    """Whether ``transport`` goes through ``ntlm_http`` (two HTTP requests per new connection) instead of
    pywinrm: NTLM with a password over plain HTTP with every message sealed, and no proxy in the way (a
    configured one, or one pywinrm's default ``legacy_requests`` would take from the environment).
    HTTPS, Kerberos, CredSSP, Basic, certificates, ``message_encryption: never`` keep pywinrm."""
    if transport != "ntlm" or s.scheme != "http" or effective_encryption(s, transport) != "always":
        return False
    if not (s.username and s.password) or not ntlm_http.PYSPNEGO.available:
        return False  # no password: pywinrm's path (SSPI-style credentials) and its errors stay
    proxy = dict(s.extra).get("proxy", "legacy_requests")
    if proxy == "legacy_requests":
        return "http" not in urllib.request.getproxies_environment() or bool(
            urllib.request.proxy_bypass(s.host))
    return proxy is None


def effective_encryption(s: WinRMSettings, transport: str) -> str:
    """The message_encryption value handed to pywinrm for one transport.

    Over HTTP a sealing transport gets ``always``: pywinrm then raises instead of silently sending in
    clear should it be unable to seal. Everything else keeps the inventory's value (Basic over HTTP only
    gets here with its opt-in, and cannot be sealed)."""
    if s.scheme == "http" and transport in SEALING_TRANSPORTS and s.message_encryption == "auto":
        return "always"
    return s.message_encryption


# ---------------------------------------------------------------------------------------------------
# Settings from Ansible's winrm connection plugin

_KNOWN_KWARGS = {
    "server_cert_validation", "ca_trust_path", "message_encryption", "read_timeout_sec",
    "operation_timeout_sec", "kerberos_delegation", "kerberos_hostname_override", "service",
    "cert_pem", "cert_key_pem", "username", "password",
}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on")


def settings_from_connection(connection: Any, **overrides: Any) -> WinRMSettings:
    """Settings from an ``ansible.plugins.connection.winrm.Connection`` whose options are set.

    Calls only ``_build_winrm_kwargs()`` (pure option processing) and reads the private attributes it
    fills; never ``_connect()`` or ``exec_command()``, which open a shell and wrap everything in
    PowerShell. The attribute names are pinned by a unit test against the installed ansible-core."""
    require_packages()  # _build_winrm_kwargs itself fails with a NameError when pywinrm is missing
    connection._build_winrm_kwargs()
    kwargs: dict[str, Any] = dict(connection._winrm_kwargs)
    values: dict[str, Any] = {
        "host": str(connection._winrm_host),
        "port": int(connection._winrm_port),
        "scheme": str(connection._winrm_scheme),
        "path": str(connection._winrm_path),
        "transports": tuple(str(t) for t in connection._winrm_transport),
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "cert_validation": str(kwargs.get("server_cert_validation") or "validate"),
        "message_encryption": str(kwargs.get("message_encryption") or "auto"),
        "kerberos_delegation": _as_bool(kwargs.get("kerberos_delegation", False)),
        "kerberos_hostname_override": kwargs.get("kerberos_hostname_override"),
        "service": str(kwargs.get("service") or "HTTP"),
        "cert_pem": kwargs.get("cert_pem"),
        "cert_key_pem": kwargs.get("cert_key_pem"),
        "ca_trust_path": kwargs.get("ca_trust_path"),
        "extra": tuple(sorted((k, v) for k, v in kwargs.items() if k not in _KNOWN_KWARGS)),
    }
    timeout = connection._winrm_connection_timeout
    if timeout:
        # Same mapping as the connection plugin's _winrm_connect.
        values["operation_timeout"] = int(timeout)
        values["read_timeout"] = int(timeout) + 10
    else:
        if "operation_timeout_sec" in kwargs:
            values["operation_timeout"] = int(kwargs["operation_timeout_sec"])
        if "read_timeout_sec" in kwargs:
            values["read_timeout"] = int(kwargs["read_timeout_sec"])
    values.update(overrides)
    return WinRMSettings(**values)


# ---------------------------------------------------------------------------------------------------
# The protocol pool: the in-flight bound and connection reuse in one place


# What the pool hands out: our own NTLM-over-HTTP session where it applies (``use_own_ntlm``), else a
# pywinrm protocol. Both carry one request at a time.
_Channel: TypeAlias = "Protocol | ntlm_http.NtlmHttpSession"


class _Lease:
    def __init__(self, protocol: _Channel, fresh: bool) -> None:
        self.protocol = protocol
        self.fresh = fresh
        self.broken = False


# When a request finds every connection busy, does it queue or open its own? With NTLM over HTTP through
# ntlm_http a new connection costs the TCP handshake and one HTTP round trip (the challenge) before its
# first request; a request queued on a ready (authenticated) connection waits one round trip per request
# ahead of it. So:
# * while every open connection is still in its handshake, a request opens its own: it would wait for that
#   handshake anyway, and its own runs in parallel (one HTTP request more, no time lost);
# * once a connection is ready, another is opened only when more than WAITING_PER_CONNECTION requests wait
#   per ready connection: TCP plus one round trip is about 2.5 round trips on a WAN (bench/proxy.py models
#   the TCP handshake as 1.5), worth it only for the third request waiting.
# Both costs scale with the round trip, so the rule holds at 0 ms as at 25 ms (docs/performance.md has the
# measurement that chose it). A request that has waited CONNECT_PATIENCE seconds opens one anyway: a slow
# enumeration or a Receive long-poll (up to the operation timeout) must not hold up the others.
WAITING_PER_CONNECTION = 2
CONNECT_PATIENCE = 1.0


class _ProtocolPool:
    """Up to ``size`` pywinrm protocols for one host, each used by one thread at a time, opened lazily.

    NTLM (and Kerberos/CredSSP) authenticate a TCP connection and number the sealed messages on it, so
    one protocol cannot carry two requests at once; concurrency needs one protocol per in-flight request.
    Idle protocols are reused, so a serial caller does exactly one handshake, and concurrent requests open
    a new one only while no open one is ready yet, or when the queue for the ready ones is long enough to
    be worth a handshake (above). A protocol counts as opening until its first request (which carries the
    handshake) comes back. The semaphore is the per-host in-flight bound."""

    def __init__(self, factory: Callable[[], _Channel], size: int, *,
                 waiting_per_connection: int = WAITING_PER_CONNECTION, patience: float = CONNECT_PATIENCE) -> None:
        self._factory = factory
        self._size = size
        self._waiting_per_connection = waiting_per_connection
        self._patience = patience
        self._sem = threading.BoundedSemaphore(size)
        self._cond = threading.Condition()
        self._idle: list[_Channel] = []
        self._open = 0  # protocols handed out or idle, not yet closed
        self._opening = 0  # of those, protocols still on their first request (the handshake)
        self._waiting = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.opened = 0  # protocols created: each one authenticates its own connection
        self.peak_wanted = 0  # most requests wanting a connection at once (queued or on the wire)

    @contextmanager
    def lease(self) -> Iterator[_Lease]:
        # A caller counts as waiting from its arrival, also while the in-flight bound holds it back: that
        # queue is the demand that may justify another connection.
        with self._cond:
            self._waiting += 1
            self.peak_wanted = max(self.peak_wanted, self._waiting + self.in_flight)
            self._cond.notify()  # a queued caller looks again: the queue may now be worth a connection
        try:
            self._sem.acquire()
        except BaseException:
            with self._cond:
                self._waiting -= 1
            raise
        try:
            lease = self._take()
            try:
                yield lease
            finally:
                self._give_back(lease)
        finally:
            self._sem.release()

    def _take(self) -> _Lease:
        with self._cond:
            try:
                protocol = self._wait_for_protocol()
            finally:
                self._waiting -= 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if protocol is not None:
            return _Lease(protocol, False)
        try:
            return _Lease(self._factory(), True)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._opening -= 1
                self.in_flight -= 1
                self._cond.notify()
            raise

    def _wait_for_protocol(self) -> _Channel | None:
        """An idle protocol, or None when the caller is to open a new one (counted as open already).
        Called with ``_cond`` held."""
        deadline: float | None = None
        while True:
            if self._idle:
                return self._idle.pop()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._patience
            ready = self._open - self._opening
            if self._open < self._size and (
                    ready == 0 or self._waiting > self._waiting_per_connection * ready or now >= deadline):
                self._open += 1
                self._opening += 1
                self.opened += 1
                return None
            # Past the deadline with every connection open: wait for one to come back.
            self._cond.wait(deadline - now if deadline > now else None)

    def _give_back(self, lease: _Lease) -> None:
        with self._cond:
            self.in_flight -= 1
            if lease.fresh:
                self._opening -= 1
            if lease.broken:
                self._open -= 1
            else:
                self._idle.append(lease.protocol)
            self._cond.notify()
        if lease.broken:
            _close_protocol(lease.protocol)

    def clear(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for protocol in idle:
            _close_protocol(protocol)


def _close_protocol(protocol: _Channel) -> None:
    # Closing a dead connection must never mask the error that killed it.
    with suppress(Exception):
        if isinstance(protocol, ntlm_http.NtlmHttpSession):
            protocol.close()
        else:
            protocol.transport.close_session()


# ---------------------------------------------------------------------------------------------------
# Error classification


class _NotSent(Exception):
    """The request never left (connect failure): safe to repeat anything."""


class _StaleSession(_NotSent):
    """HTTP 400 to a sealed message on a connection we had authenticated before: the service no longer
    knows our security context (WinRM restarted, or the host rebooted) and could not even decrypt the
    request, so nothing was done. A new handshake is needed; safe to repeat anything."""


class _MaybeSent(Exception):
    """The connection broke after the request went out."""


class _ServerError(_MaybeSent):
    """The service answered 5xx without a fault: like a broken connection, it may or may not have acted."""


def _in_chain(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or anything it wraps (requests and urllib3 nest their causes) is one of ``kinds``."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kinds):
            return True
        if isinstance(item, BaseException):
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
            stack.extend(a for a in item.args if isinstance(a, BaseException))
    return False


def _connect_phase(exc: BaseException) -> bool:
    # NewConnectionError and NameResolutionError derive from ConnectTimeoutError in urllib3 2.x.
    return _in_chain(exc, (urllib3.exceptions.ConnectTimeoutError, requests.exceptions.ConnectTimeout,
                           ConnectionRefusedError))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out",
                   "Temporary failure in name resolution", "RemoteDisconnected", "Connection aborted"):
        if marker in text:
            return marker.lower()
    return text if len(text) < 200 else text[:200] + "..."


# ---------------------------------------------------------------------------------------------------
# The client


class WinRMClient:
    """Sends WS-Man requests to one host with the retry policy and the in-flight bound.

    ``request_count`` counts every request put on the wire (retries included, authentication
    handshakes excluded); ``requests_by_name`` splits it by operation (``Enumerate``, ``Invoke:GetDWORDValue``)."""

    def __init__(self, settings: WinRMSettings, log: LogFn | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        require_packages()
        self.settings = settings
        self.log: LogFn = log or _no_log
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._transport_index = 0
        # The NTLM hashes of the password for ntlm_http sessions, computed on the first connection (ntlm_credential).
        self._ntlm_credential: Any = None
        self._pool = _ProtocolPool(self._new_protocol, settings.max_in_flight)
        # None until learned: WinRM 1.0 (2003 R2 Hardware Management) rejects w:Filter.
        self.supports_filter: bool | None = None
        # The host's WinRM version once Identify told it (facts.identify): bounds the request size.
        self.stack_version: str | None = None
        # Whether the host has answered this client at all: a failure after that is a host lost, not absent.
        self.answered = False

    def __repr__(self) -> str:
        return f"WinRMClient({self.settings!r})"

    @property
    def host(self) -> str:
        """The host as messages name it: the inventory name and the address, or the address alone."""
        name, address = self.settings.name, self.settings.host
        return f"{name} ({address})" if name and name != address else address

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    @property
    def peak_in_flight(self) -> int:
        return self._pool.peak_in_flight

    @property
    def peak_wanted(self) -> int:
        """The most requests that wanted to go out at once (queued for a connection or on the wire)."""
        return self._pool.peak_wanted

    @property
    def connections_opened(self) -> int:
        """How many connections this client has opened (each one authenticated) since it was created."""
        return self._pool.opened

    @property
    def transport(self) -> str:
        return self.settings.transports[self._transport_index]

    @property
    def own_ntlm(self) -> bool:
        """Whether the current transport goes through ``ntlm_http`` (one HTTP request of authentication per
        connection) rather than pywinrm."""
        return use_own_ntlm(self.settings, self.transport)

    @property
    def request_count(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def requests_by_name(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counters(self) -> None:
        with self._lock:
            self._counts.clear()

    def close(self) -> None:
        self._pool.clear()

    # --- protocol objects ------------------------------------------------------------------------

    def _new_protocol(self) -> _Channel:
        s = self.settings
        if use_own_ntlm(s, self.transport):
            # The session connects on its first message; nothing here can fail on the network.
            path = s.path if s.path.startswith("/") else "/" + s.path
            endpoint = ntlm_http.Endpoint(s.host.strip("[]"), s.port, path, s.connection_timeout,
                                          float(s.read_timeout))
            with self._lock:
                if self._ntlm_credential is None:
                    self._ntlm_credential = ntlm_http.ntlm_credential(s.username or "", s.password or "")
                credential = self._ntlm_credential
            return ntlm_http.NtlmHttpSession(endpoint, s.username or "", s.password or "", credential)
        kwargs: dict[str, Any] = dict(s.extra)
        kwargs.update(
            transport=self.transport, username=s.username, password=s.password,
            server_cert_validation=s.cert_validation, message_encryption=effective_encryption(s, self.transport),
            read_timeout_sec=s.read_timeout, operation_timeout_sec=s.operation_timeout,
            kerberos_delegation=s.kerberos_delegation, kerberos_hostname_override=s.kerberos_hostname_override,
            service=s.service, cert_pem=s.cert_pem, cert_key_pem=s.cert_key_pem,
        )
        if s.ca_trust_path:
            kwargs["ca_trust_path"] = s.ca_trust_path
        try:
            protocol = Protocol(s.endpoint, **kwargs)
        except winrm_exc.WinRMError as exc:
            raise TransportError(self._redact(f"{self.host}: cannot set up WinRM ({self.transport}): {exc}")) from None
        # requests takes (connect, read): a host that is down fails in connection_timeout seconds instead
        # of read_timeout, which matters while waiting for a reboot. pywinrm passes the value straight on.
        setattr(protocol.transport, "read_timeout_sec", (s.connection_timeout, s.read_timeout))  # noqa: B010
        return protocol

    def _next_transport(self, failed: int) -> bool:
        with self._lock:
            if self._transport_index == failed and failed + 1 < len(self.settings.transports):
                self._transport_index = failed + 1
                return True
            return self._transport_index != failed

    # --- sending ---------------------------------------------------------------------------------

    # Reads of a host that is up (see ``send``): at most this many times ``retries`` retries, and no retry
    # beyond ``retries`` once LIVE_RETRY_WINDOW seconds have passed since the first attempt.
    LIVE_RETRY_FACTOR = 2
    LIVE_RETRY_WINDOW = 60.0

    @property
    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.retries, s.backoff, s.backoff_max, live_factor=self.LIVE_RETRY_FACTOR,
                           live_window=self.LIVE_RETRY_WINDOW, jitter=True, clock=self._clock, sleep=self._sleep)

    def send(self, request: wsman.Request, *, idempotent: bool, retry_timeouts: bool | None = None,
             poll: bool = False) -> wsman.Reply:
        """Send one request under the retry policy. ``retry_timeouts`` defaults to ``idempotent``. ``poll``: the
        operation timeout fault is the answer "nothing yet" (Receive), raised as such even when not idempotent.

        Retries are counted two ways (``retry.RetryPolicy``). Failures *in a row without an answer* (resets,
        refused connections: what a restart looks like, the service dying and then the host being down) end
        after ``retries`` retries as ``HostUnreachableError``, which the task-level wait (tasks/resume.py)
        handles. A *read* of a host that has answered this client is retried further while the host keeps
        answering between the failures (quota and timeout faults, HTTP 5xx are answers; resets in between are a
        lossy network, not a host that is down): up to ``LIVE_RETRY_FACTOR`` times ``retries`` retries within
        ``LIVE_RETRY_WINDOW`` seconds. Giving up on such a host says what happened and is never ``unreachable``.
        Writes are never retried after they may have reached the host."""
        if retry_timeouts is None:
            retry_timeouts = idempotent
        budget = self.retry_policy.start()
        heard = False  # whether the host answered any attempt of this request
        failures: Counter[str] = Counter()  # what each failed attempt of this request met
        while True:
            transport_index = self._transport_index
            try:
                return self._send_once(request)
            except AuthenticationError:
                if self._next_transport(transport_index):
                    self._pool.clear()
                    self.log(LOG_STEPS, f"{self.host}: authentication failed, trying transport {self.transport}")
                    continue
                raise
            except (_NotSent, _MaybeSent, QuotaExceededError, OperationTimeoutError) as exc:
                if isinstance(exc, _StaleSession):
                    # Every idle protocol shares the lost context's fate: authenticate afresh.
                    self._pool.clear()
                error, retry = self._classify(exc, request, idempotent, retry_timeouts, poll)
                answer = isinstance(exc, (_ServerError, QuotaExceededError, OperationTimeoutError))
                failures[self._failure_kind(exc)] += 1
            heard = heard or answer  # an HTTP 5xx is an answer too, though no reply body came with it
            # A read the host keeps answering between failures is of a host that is up (see above).
            budget.failed(answered=answer, host_up=idempotent and (self.answered or heard))
            if not retry or budget.exhausted:
                raise self._gave_up(error, request, failures, budget)
            delay = budget.next_delay()
            self.log(LOG_OPERATIONS, f"{self.host}: {request.name} failed ({error}); retry {budget.attempt + 1} "
                                     f"(at most {budget.limit}) in {delay:.2f}s")
            budget.pause(delay)

    def _gave_up(self, error: KbfixError, request: wsman.Request, failures: Counter[str],
                 budget: RetryBudget) -> KbfixError:
        """The error ``send`` raises once it stops. After several attempts at a read of a host that kept
        answering between the failures, the host is up: the message says how many attempts met what, and a
        connection reset last does not make it ``unreachable``. Otherwise ``error`` as classified, with
        ``lost`` set when the host had answered this client before."""
        if budget.gave_up_on_live_host:
            what = ", ".join(f"{kind} x{n}" for kind, n in failures.most_common())
            message = budget.gave_up(self.host, request.name, "the host is up (it answered this client) but none "
                                                              f"of them completed ({what}); last: {error}")
            if isinstance(error, WSManFaultError):  # quota, timeout: keep the kind and code callers key on
                return type(error)(message, code=error.code, subcode=error.subcode, action=error.action)
            return TransportError(message)
        if isinstance(error, HostUnreachableError):
            error.lost = self.answered
        return error

    @staticmethod
    def _failure_kind(exc: Exception) -> str:
        """How one failed attempt ended, for the message of a request given up after several."""
        if isinstance(exc, _StaleSession):
            return "session unknown after a restart (HTTP 400)"
        if isinstance(exc, _NotSent):
            return f"not sent ({exc})"
        if isinstance(exc, _ServerError):
            return str(exc)
        if isinstance(exc, _MaybeSent):
            return f"connection lost after sending ({exc})"
        if isinstance(exc, WSManFaultError) and exc.code is not None:
            return f"{'quota' if isinstance(exc, QuotaExceededError) else 'operation timeout'} fault {exc.code}"
        return type(exc).__name__

    def _classify(self, exc: Exception, request: wsman.Request, idempotent: bool,
                  retry_timeouts: bool, poll: bool = False) -> tuple[KbfixError, bool]:
        """The error to raise if no retry is left, and whether this one may be retried."""
        if isinstance(exc, _StaleSession):
            return HostUnreachableError(f"{self.host}: {exc} (the host restarted or WinRM is restarting)"), True
        if isinstance(exc, _NotSent):
            return HostUnreachableError(f"{self.host}: cannot connect to {self.endpoint}: {exc}"), True
        if isinstance(exc, _MaybeSent):
            if not idempotent:
                return AmbiguousWriteError(f"{self.host}: {exc} after sending {request.name}; the host may or "
                                           "may not have applied it", request.name), False
            if isinstance(exc, _ServerError):
                return TransportError(f"{self.host}: {request.name} failed: {exc}"), True
            return HostUnreachableError(f"{self.host}: connection lost during {request.name}: {exc}"), True
        if isinstance(exc, QuotaExceededError):
            return exc, True  # refused before anything was done
        if not isinstance(exc, OperationTimeoutError):  # the callers pass only the two kinds above
            raise AssertionError(f"unexpected {type(exc).__name__}")
        if not retry_timeouts and not idempotent and not poll:
            # The service gave up waiting, not necessarily acting: a write or a started command may still
            # take effect, so the caller reads back before repeating it, as after a reset.
            return AmbiguousWriteError(f"{self.host}: {request.name} timed out on the host ({exc}); the host "
                                       "may or may not have applied it", request.name), False
        return exc, retry_timeouts

    def _backoff(self, attempt: int) -> float:
        return self.retry_policy.delay(attempt)

    def _send_once(self, request: wsman.Request) -> wsman.Reply:
        message_id = wsman.new_message_id()
        timeout = request.operation_timeout or self.settings.operation_timeout
        payload = request.to_xml(self.endpoint, message_id, min(timeout, self.settings.operation_timeout))
        with self._pool.lease() as lease:
            with self._lock:
                self._counts[request.name] += 1
            self.log(LOG_OPERATIONS, f"{self.host}: {request.name} {_short_uri(request.resource_uri)}")
            self.log(LOG_PAYLOADS, f"{self.host}: request {self._redact(payload.decode('utf-8'))}")
            started = time.monotonic()
            raw = self._post(lease, payload)
            self.answered = True
        self.log(LOG_PAYLOADS, f"{self.host}: reply ({time.monotonic() - started:.3f}s) "
                               f"{self._redact(raw.decode('utf-8', 'replace'))}")
        parsed = wsman.parse_reply(raw)
        if parsed.fault is not None:
            raise parsed.fault.to_error(request.action)
        if parsed.reply is None:  # a parsed message is a fault or a reply
            raise AssertionError("a WS-Management message with neither fault nor reply")
        relates = parsed.reply.relates_to
        if relates is not None and not wsman.same_message_id(relates, message_id):
            raise TransportError(f"{self.host}: reply relates to {relates}, not to request {message_id}")
        return parsed.reply

    def _post(self, lease: _Lease, payload: bytes) -> bytes:
        if isinstance(lease.protocol, ntlm_http.NtlmHttpSession):
            return self._post_own(lease, lease.protocol, payload)
        try:
            return lease.protocol.send_message(payload.decode("utf-8"))
        except winrm_exc.WSManFaultError as exc:
            return _fault_body(exc)
        except winrm_exc.WinRMOperationTimeoutError:
            # pywinrm turns this one fault into its own exception and drops the body.
            raise OperationTimeoutError("WSManFault 2150858793: the operation timed out on the host",
                                        code=wsman.FAULT_OPERATION_TIMEOUT) from None
        except winrm_exc.AuthenticationError:
            lease.broken = True
            raise self._rejected() from None
        except winrm_exc.WinRMTransportError as exc:
            lease.broken = True
            raise self._status_error(exc.code, authenticated_before=not lease.fresh) from None
        except requests.exceptions.SSLError as exc:
            lease.broken = True
            if _in_chain(exc, ssl.SSLCertVerificationError):
                raise TransportError(self._redact(f"{self.host}: TLS failed: {_describe(exc)}")) from None
            # An EOF or reset inside TLS is a broken connection like any other.
            raise _MaybeSent(self._redact(_describe(exc))) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError) as exc:
            lease.broken = True
            kind = _NotSent if _connect_phase(exc) else _MaybeSent
            raise kind(self._redact(_describe(exc))) from None
        except winrm_exc.WinRMError as exc:
            lease.broken = True
            raise TransportError(self._redact(f"{self.host}: {exc}")) from None

    def _rejected(self) -> AuthenticationError:
        return AuthenticationError(f"{self.host}: the host rejected the credentials of {self.settings.username!r} "
                                   f"({self.transport} over {self.settings.scheme.upper()})")

    def _status_error(self, status: int, *, authenticated_before: bool) -> Exception:
        """An HTTP status other than 200 without a SOAP fault, as the retry policy sees it (both paths)."""
        if status >= 500:
            # A 5xx without a SOAP fault: the service failed without saying whether it acted.
            return _ServerError(f"HTTP {status} without a WS-Man fault")
        if status == 400 and authenticated_before:
            return _StaleSession("HTTP 400 to a request on a session authenticated earlier")
        return TransportError(self._redact(f"{self.host}: HTTP {status} from {self.endpoint}"))

    def _post_own(self, lease: _Lease, session: ntlm_http.NtlmHttpSession, payload: bytes) -> bytes:
        """``_post`` over our own NTLM session: the same outcomes as pywinrm's path, error for error."""
        try:
            return session.send(payload)
        except ntlm_http.HttpStatus as exc:
            if _is_fault(exc.body):
                return exc.body  # as pywinrm does: a SOAP fault is an answer whatever the status
            lease.broken = True
            raise self._status_error(exc.status, authenticated_before=not (lease.fresh or exc.fresh_context)) from None
        except ntlm_http.CredentialsRejected:
            lease.broken = True
            raise self._rejected() from None
        except ntlm_http.SealingError as exc:
            lease.broken = True
            raise TransportError(self._redact(f"{self.host}: {exc}")) from None
        except ntlm_http.ConnectFailed as exc:
            lease.broken = True
            raise _NotSent(self._redact(_describe(exc))) from None
        except OSError as exc:  # ConnectionLost, and anything the socket layer raised past it
            lease.broken = True
            raise _MaybeSent(self._redact(_describe(exc))) from None

    def _redact(self, text: str) -> str:
        for secret in (self.settings.password,):
            if secret:
                text = text.replace(secret, "********")
        return _SECRET_PATTERN.sub(r"\1********", text)

    # --- WS-Man operations -------------------------------------------------------------------------

    def enumerate(self, resource_uri: str, wql: str | None = None, *, max_elements: int | None = None,
                  limit: int | None = None) -> list[wsman.WmiObject]:
        """All items of an enumeration: the optimized first page, then Pull until EndOfSequence.
        A context left open (limit reached, error) is Released so the service can free it."""
        page_size = max_elements or self.settings.max_elements
        for attempt in self.retry_policy.rounds(self.settings.retries):
            try:
                return self._enumerate_once(resource_uri, wql, page_size, limit)
            except AmbiguousWriteError as exc:
                # A Pull lost in a reset may have consumed items: start over rather than return a gap.
                if attempt >= self.settings.retries:
                    # Each round began with an Enumerate the host answered: it is up, not unreachable.
                    raise TransportError(f"{self.host}: gave up enumerating {_short_uri(resource_uri)} after "
                                         f"{attempt + 1} rounds, each interrupted after the host answered "
                                         f"(last: {exc})") from None
                self.log(LOG_OPERATIONS, f"{self.host}: enumeration interrupted, starting again")
        raise AssertionError("unreachable")

    def _enumerate_once(self, resource_uri: str, wql: str | None, page_size: int,
                        limit: int | None) -> list[wsman.WmiObject]:
        page = wsman.enumeration_page(
            self.send(wsman.enumerate_request(resource_uri, wql, max_elements=page_size), idempotent=True))
        items = list(page.items)
        context = page.context
        try:
            while context and (limit is None or len(items) < limit):
                reply = self.send(wsman.pull_request(resource_uri, context, page_size),
                                  idempotent=False, retry_timeouts=True)
                page = wsman.enumeration_page(reply)
                items.extend(page.items)
                context = page.context
        except BaseException:
            if context:
                self._release(resource_uri, context)
            raise
        if context:
            self._release(resource_uri, context)
        return items if limit is None else items[:limit]

    def _release(self, resource_uri: str, context: str) -> None:
        try:
            self.send(wsman.release_request(resource_uri, context), idempotent=True)
        except KbfixError as exc:  # the context times out on the host anyway
            self.log(LOG_OPERATIONS, f"{self.host}: Release failed ({exc})")

    def get(self, resource_uri: str, selectors: Mapping[str, str]) -> wsman.WmiObject:
        return wsman.single_object(self.send(wsman.get_request(resource_uri, selectors), idempotent=True))

    def invoke(self, resource_uri: str, method: str, params: Mapping[str, wsman.ParamValue] | None = None,
               *, selectors: Mapping[str, str] | None = None, write: bool = False) -> wsman.WmiObject:
        """Invoke a WMI method. ``write=True`` marks it non-idempotent: a broken connection after sending
        raises ``AmbiguousWriteError`` instead of being retried."""
        request = wsman.invoke_request(resource_uri, method, params, selectors)
        return wsman.single_object(self.send(request, idempotent=not write))


_SECRET_PATTERN = re.compile(r"((?:password|passwd|pwd)\s*[=:]\s*)\S+", re.IGNORECASE)


def _short_uri(uri: str) -> str:
    for prefix in (wsman.WMI_BASE, "http://schemas.microsoft.com/wbem/wsman/1/windows/"):
        if uri.startswith(prefix):
            return uri[len(prefix):]
    return uri


def _is_fault(body: bytes) -> bool:
    """Whether a non-200 reply is a SOAP fault (pywinrm's test, made with our hardened parser)."""
    if not body.strip():
        return False
    try:
        return wsman.parse_reply(body).fault is not None
    except KbfixError:
        return False


def _fault_body(exc: winrm_exc.WSManFaultError) -> bytes:
    """pywinrm raised its fault exception; hand back the body so our parser (hardened, by namespace)
    reads it like any other reply."""
    body = exc.response.encode("utf-8") if isinstance(exc.response, str) else bytes(exc.response or b"")
    if body.strip():
        return body
    raise WSManFaultError(f"WS-Man fault: {exc.reason}", code=exc.wsman_fault_code, subcode=exc.fault_subcode)


# ---------------------------------------------------------------------------------------------------
# One client per host and settings, reused by every caller in this process

_CLIENTS: dict[WinRMSettings, WinRMClient] = {}
_CLIENTS_LOCK = threading.Lock()


def client_for(settings: WinRMSettings, log: LogFn | None = None) -> WinRMClient:
    """The shared client for these settings (keep-alive connections and authentication are reused)."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(settings)
        if client is None:
            client = _CLIENTS[settings] = WinRMClient(settings, log)
        elif log is not None:
            client.log = log
        return client


def close_all() -> None:
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()


def with_settings(client: WinRMClient, **changes: Any) -> WinRMClient:
    """A new client for the same host with some settings changed (shorter timeouts for reboot polling)."""
    return WinRMClient(replace(client.settings, **changes), client.log)
