# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A WinRM client that sends any WS-Man envelope and never runs PowerShell.

Built on pywinrm's ``winrm.protocol.Protocol``: its transport does the HTTP, the authentication (Basic,
NTLM, Kerberos, CredSSP, certificate) and, over HTTP, the per-message encryption Windows insists on when
``AllowUnencrypted`` is false. We only use ``Protocol.send_message``; envelopes come from ``wsman``. The one
exception is NTLM over plain HTTP with sealed messages, the common case, which goes through ``ntlm_http``: one
HTTP request of authentication per connection where pywinrm needs three (``use_own_ntlm``).

Settings come from ``settings.py`` (Ansible's own ``winrm`` connection options); the connections to a host
from ``pool.py``; how long and how often a request is tried again from ``transport/retry.py``.

Retry policy (see docs/transport.md):

* connection refused / DNS failure / connect timeout: the request was never sent, so any request is retried
  with exponential backoff and jitter, a bounded number of times, then ``HostUnreachableError``;
* connection reset or read timeout after sending: the host may have applied it. Reads are retried; writes
  raise ``AmbiguousWriteError`` so the caller reads back before deciding (stdregprov.set_value does);
* WSManFault 2150858793 (operation timed out): retried for reads and Pull; Receive hands it to its loop;
* WSManFault 2150859174 / 2150859173 (quota), also when only an MSFT_WmiError detail carries the code
  (Server 2012): the service refused before doing anything: back off, retry.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

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
    AuthenticationError,
    HostUnreachableError,
    KbfixError,
    OperationTimeoutError,
    QuotaExceededError,
    TransportError,
    WSManFaultError,
)
from ..base import LOG_OPERATIONS, LOG_PAYLOADS, LOG_STEPS, LogFn
from . import ntlm_http, replies, wsman
from .pool import Channel, Lease, ProtocolPool
from .settings import (
    ALLOW_BASIC_VARIABLE,
    ALLOW_UNENCRYPTED_VARIABLE,
    WinRMSettings,
    effective_encryption,
    settings_from_connection,
    use_own_ntlm,
)

# The settings names callers and tests know from this module.
__all__ = ["ALLOW_BASIC_VARIABLE", "ALLOW_UNENCRYPTED_VARIABLE", "WinRMClient", "WinRMSettings", "client_for",
           "close_all", "effective_encryption", "require_packages", "settings_from_connection", "use_own_ntlm",
           "with_settings"]


def require_packages() -> None:
    """``MissingRequirementError`` unless pywinrm and defusedxml imported. Called where WinRM use starts, before
    any request: building settings (Ansible's own winrm plugin needs pywinrm for that) and building a client."""
    PYWINRM.require()
    replies.DEFUSEDXML.require()


def _no_log(level: int, message: str) -> None:
    del level, message


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
        # Its counters (opened, peak_in_flight, peak_wanted) say how the requests shared the connections.
        self.pool = ProtocolPool(self._new_protocol, settings.max_in_flight)
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
        self.pool.clear()

    # --- protocol objects ------------------------------------------------------------------------

    def _new_protocol(self) -> Channel:
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
             poll: bool = False) -> replies.Reply:
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
                    self.pool.clear()
                    self.log(LOG_STEPS, f"{self.host}: authentication failed, trying transport {self.transport}")
                    continue
                raise
            except (_NotSent, _MaybeSent, QuotaExceededError, OperationTimeoutError) as exc:
                if isinstance(exc, _StaleSession):
                    # Every idle protocol shares the lost context's fate: authenticate afresh.
                    self.pool.clear()
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
            return HostUnreachableError(f"{self.host}: cannot connect to {self.settings.endpoint}: {exc}"), True
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

    def _send_once(self, request: wsman.Request) -> replies.Reply:
        message_id = wsman.new_message_id()
        timeout = request.operation_timeout or self.settings.operation_timeout
        payload = request.to_xml(self.settings.endpoint, message_id, min(timeout, self.settings.operation_timeout))
        with self.pool.lease() as lease:
            with self._lock:
                self._counts[request.name] += 1
            self.log(LOG_OPERATIONS, f"{self.host}: {request.name} {_short_uri(request.resource_uri)}")
            self.log(LOG_PAYLOADS, f"{self.host}: request {self._redact(_without_stream_text(payload))}")
            started = time.monotonic()
            raw = self._post(lease, payload)
            self.answered = True
        self.log(LOG_PAYLOADS, f"{self.host}: reply ({time.monotonic() - started:.3f}s) "
                               f"{self._redact(raw.decode('utf-8', 'replace'))}")
        parsed = replies.parse_reply(raw)
        if parsed.fault is not None:
            raise parsed.fault.to_error(request.action)
        if parsed.reply is None:  # a parsed message is a fault or a reply
            raise AssertionError("a WS-Management message with neither fault nor reply")
        relates = parsed.reply.relates_to
        if relates is not None and not replies.same_message_id(relates, message_id):
            raise TransportError(f"{self.host}: reply relates to {relates}, not to request {message_id}")
        return parsed.reply

    def _post(self, lease: Lease, payload: bytes) -> bytes:
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
        return TransportError(self._redact(f"{self.host}: HTTP {status} from {self.settings.endpoint}"))

    def _post_own(self, lease: Lease, session: ntlm_http.NtlmHttpSession, payload: bytes) -> bytes:
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
                  limit: int | None = None) -> list[replies.WmiObject]:
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
                        limit: int | None) -> list[replies.WmiObject]:
        page = replies.enumeration_page(
            self.send(wsman.enumerate_request(resource_uri, wql, max_elements=page_size), idempotent=True))
        items = list(page.items)
        context = page.context
        try:
            while context and (limit is None or len(items) < limit):
                reply = self.send(wsman.pull_request(resource_uri, context, page_size),
                                  idempotent=False, retry_timeouts=True)
                page = replies.enumeration_page(reply)
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

    def get(self, resource_uri: str, selectors: Mapping[str, str]) -> replies.WmiObject:
        return replies.single_object(self.send(wsman.get_request(resource_uri, selectors), idempotent=True))

    def invoke(self, resource_uri: str, method: str, params: Mapping[str, wsman.ParamValue] | None = None,
               *, selectors: Mapping[str, str] | None = None, write: bool = False) -> replies.WmiObject:
        """Invoke a WMI method. ``write=True`` marks it non-idempotent: a broken connection after sending
        raises ``AmbiguousWriteError`` instead of being retried."""
        request = wsman.invoke_request(resource_uri, method, params, selectors)
        return replies.single_object(self.send(request, idempotent=not write))


_SECRET_PATTERN = re.compile(r"((?:password|passwd|pwd)\s*[=:]\s*)\S+", re.IGNORECASE)
# The text of a long stdin stream (a file's base64 in a Send) is left out of the payload log: it tells a reader
# nothing, and redacting it would run the secret pattern over every 150 KB envelope of an upload, logged or not.
_LONG_STREAM = re.compile(rb"(<rsp:Stream\b[^>]*>)[^<]{1024,}(?=</rsp:Stream>)")


def _without_stream_text(payload: bytes) -> str:
    def left_out(match: re.Match[bytes]) -> bytes:
        return match.group(1) + b"[%d characters of base64 left out]" % (match.end() - match.end(1))

    return _LONG_STREAM.sub(left_out, payload).decode("utf-8")


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
        return replies.parse_reply(body).fault is not None
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
