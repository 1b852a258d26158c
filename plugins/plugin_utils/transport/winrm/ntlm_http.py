# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTLM over plain HTTP with WinRM message encryption, at one extra HTTP request per connection.

pywinrm (through requests_ntlm) spends three HTTP requests on a new connection before its first real one: an
anonymous POST to learn the schemes (401), the NTLM negotiate token (401 with the challenge), and an empty
POST carrying the authenticate token, so that it has a security context before it seals anything. Here the
negotiate token goes out on the first request (Windows' WinRM listener always offers ``Negotiate``), and the
authenticate token rides on the first sealed message, as the Ruby WinRM gem (WinRb/WinRM, ``HttpNegotiate``)
has always done against Windows: one request for the challenge, then every request is a real one.

The wire format is [MS-WSMV] 2.2.9.1.1 (the same framing pywinrm's ``winrm/encryption.py`` writes)::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE signature length><signature><sealed data>--Encrypted Boundary--\\r\\n

One ``NtlmHttpSession`` is one TCP connection and one NTLM context: NTLM numbers the sealed messages of a
context, so a session carries one request at a time (the client's pool gives each caller its own).

This module knows HTTP and NTLM only; ``client.py`` maps its exceptions onto the retry policy:
``ConnectFailed`` (the message was never sent), ``ConnectionLost`` (it may have been), ``CredentialsRejected``
(401 on the authenticate leg or later), ``SealingError`` (a reply that fails its signature or framing) and
``HttpStatus`` (any status but 200, with the body unsealed when it was sealed).
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import struct
from dataclasses import dataclass
from typing import Any

from ..requirement import Requirement

try:
    import spnego
    import spnego.exceptions
except ImportError as _error:  # pyspnego comes with pywinrm (requests_ntlm); client.require_packages() names it
    PYSPNEGO = Requirement.missing("pyspnego", "WinRM", _error)
else:
    PYSPNEGO = Requirement.present("pyspnego", "WinRM")

try:
    # pyspnego's own one-way functions (pure Python, as OpenSSL 3 has no MD4); not part of its public API, so
    # without them every context derives the hashes from the password itself, as before.
    from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
except ImportError:
    HASHES = False
else:
    HASHES = True

PROTOCOL = b"application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL.decode()}";boundary="Encrypted Boundary"'
BOUNDARY = b"--Encrypted Boundary"
_PART_HEADER = (b"\tContent-Type: " + PROTOCOL + b"\r\n"
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=")
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
USER_AGENT = "Python WinRM client"  # what pywinrm sends: a listener's logs look the same whichever path is used
SCHEME = "Negotiate"  # raw NTLM tokens under the Negotiate scheme, as requests_ntlm and the Ruby gem send them


class ConnectFailed(OSError):
    """The connection could not be opened, or broke before the challenge came back: the message was not sent."""


class ConnectionLost(OSError):
    """The connection broke or timed out after the message went out: the host may have acted on it."""


class CredentialsRejected(Exception):
    """HTTP 401 to the authenticate token (wrong user name or password), or to a later sealed message."""


class SealingError(Exception):
    """A sealed body that cannot be opened: bad framing, a length that does not match, a failed signature."""


class HttpStatus(Exception):
    """The host answered with a status other than 200. ``body`` is unsealed when it came sealed;
    ``fresh_context`` says whether this request carried the authenticate token (a new context)."""

    def __init__(self, status: int, body: bytes, fresh_context: bool) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.fresh_context = fresh_context


# ---------------------------------------------------------------------------------------------------
# Framing ([MS-WSMV] 2.2.9.1.1)


def frame(signature: bytes, sealed: bytes, plain_length: int) -> bytes:
    """One sealed message as a ``multipart/encrypted`` body."""
    return (BOUNDARY + b"\r\n" + _PART_HEADER + str(plain_length).encode() + b"\r\n"
            + BOUNDARY + b"\r\n" + _OCTET_STREAM
            + struct.pack("<I", len(signature)) + signature + sealed
            + BOUNDARY + b"--\r\n")


def unframe(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """The (plain length, signature, sealed data) of each part of a ``multipart/encrypted`` body.

    The sealed data is cut by the OriginalContent length, not by searching for the next boundary: NTLM seals
    with RC4, so the sealed data is exactly as long as the plain text and may contain any bytes at all."""
    parts: list[tuple[int, bytes, bytes]] = []
    pos = 0
    while not body.startswith(BOUNDARY + b"--", pos):
        pos = _expect(body, pos, BOUNDARY + b"\r\n")
        end = body.find(BOUNDARY + b"\r\n", pos)
        if end < 0:
            raise SealingError("the sealed reply lacks the second boundary of a part")
        length = _original_length(body[pos:end])
        pos = _expect(body, end + len(BOUNDARY) + 2, _OCTET_STREAM)
        if len(body) < pos + 4:
            raise SealingError("the sealed reply is truncated")
        (sig_len,) = struct.unpack_from("<I", body, pos)
        pos += 4
        signature, data = body[pos:pos + sig_len], body[pos + sig_len:pos + sig_len + length]
        if len(signature) != sig_len or len(data) != length:
            raise SealingError("the sealed reply is truncated")
        pos += sig_len + length
        if body.startswith(b"\r\n", pos):  # tolerated before the boundary; Windows and pywinrm write none
            pos += 2
        parts.append((length, signature, data))
    if not parts:
        raise SealingError("the sealed reply has no part")
    return parts


def _expect(body: bytes, pos: int, literal: bytes) -> int:
    if not body.startswith(literal, pos):
        raise SealingError(f"the sealed reply does not have {literal!r} at offset {pos}")
    return pos + len(literal)


def _original_length(headers: bytes) -> int:
    for line in headers.split(b"\r\n"):
        line = line.strip()
        if line.lower().startswith(b"originalcontent:") and b"Length=" in line:
            try:
                return int(line.split(b"Length=", 1)[1].split(b";", 1)[0])
            except ValueError:
                raise SealingError("the sealed reply has a bad OriginalContent length") from None
    raise SealingError("the sealed reply has no OriginalContent length")


def is_sealed(content_type: str) -> bool:
    lowered = content_type.lower()
    return lowered.startswith("multipart/encrypted") and PROTOCOL.decode().lower() in lowered


def ntlm_credential(username: str, password: str) -> Any:
    """The user's NTLM credential with its LM and NT one-way hashes computed now, once, or None when this pyspnego
    cannot give them (then each session passes the password, as before).

    A pyspnego context built from a password derives both hashes again, and the LM hash alone costs about 2 ms
    of pure-Python DES per connection (a controller opens several per host and task); the hashes are exactly
    what the password would give, so nothing on the wire changes. Both are kept: NTLMv2 (the default
    LmCompatibilityLevel 3) uses the NT hash only, but a controller configured for a lower level needs the LM
    hash too."""
    if not HASHES:
        return None
    return spnego.NTLMHash(username, lm_hash=lmowfv1(password).hex(), nt_hash=ntowfv1(password).hex())


# ---------------------------------------------------------------------------------------------------
# The session


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str
    connect_timeout: float
    read_timeout: float


class NtlmHttpSession:
    """One keep-alive HTTP connection to a WinRM listener, authenticated with NTLM, every message sealed.

    ``send(message)`` returns the unsealed reply of a 200. The connection is opened on the first message and
    again after it was lost (the context belongs to the TCP connection, so that is a new handshake);
    ``handshakes`` counts them. A connection the host closed while idle is noticed before anything is written
    to it, so that case costs a new handshake, never an ambiguous message."""

    def __init__(self, endpoint: Endpoint, username: str, password: str, credential: Any = None) -> None:
        PYSPNEGO.require()
        self._endpoint = endpoint
        self._username = username
        self._password = password
        self._credential = credential  # from ntlm_credential(): the hashes of the password, computed once
        self._conn: http.client.HTTPConnection | None = None
        self._context: Any = None  # spnego.ContextProxy once the challenge was answered
        self._authenticate: bytes | None = None  # the type-3 token the next message carries
        self.handshakes = 0

    def __repr__(self) -> str:
        e = self._endpoint
        return f"NtlmHttpSession({e.host}:{e.port}{e.path}, user={self._username!r})"

    def close(self) -> None:
        conn, self._conn, self._context, self._authenticate = self._conn, None, None, None
        if conn is not None:
            conn.close()

    # --- one message -------------------------------------------------------------------------------

    def send(self, message: bytes) -> bytes:
        if self._conn is None or self._context is None or _dropped(self._conn):
            self.close()
            self._handshake()
        conn, context = self._conn, self._context
        if conn is None or context is None:  # set by _handshake or kept from before
            raise AssertionError("no connection after the handshake")
        authenticate, self._authenticate = self._authenticate, None
        wrapped = context.wrap_winrm(message)
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
        if authenticate is not None:
            headers["Authorization"] = f"{SCHEME} {base64.b64encode(authenticate).decode()}"
        body = frame(wrapped.header, wrapped.data, len(message) + wrapped.padding_length)
        try:
            conn.request("POST", self._endpoint.path, body, headers)
            response = conn.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ConnectionLost(_reason(exc)) from exc
        if response.will_close:
            # The host ends the connection after this reply: the context goes with it (the reply is still
            # unsealed with it below).
            self.close()
        if response.status == 401:
            self.close()
            raise CredentialsRejected("HTTP 401 to the authenticate token" if authenticate is not None
                                      else "HTTP 401 to a sealed message on an authenticated connection")
        sealed = is_sealed(response.getheader("Content-Type") or "")
        if sealed and reply:
            try:
                reply = _unseal(context, reply)
            except SealingError:
                self.close()  # the context's sequence numbers can no longer be trusted
                raise
        if response.status != 200:
            if response.status != 500:
                self.close()  # a 500 carries a fault on a connection that stays good; anything else may not
            raise HttpStatus(response.status, reply, authenticate is not None)
        if reply and not sealed:
            self.close()
            raise SealingError("the host answered a sealed request with an unsealed reply")
        return reply

    # --- the handshake -----------------------------------------------------------------------------

    def _handshake(self) -> None:
        """Connect and send the negotiate token with an empty body; keep the authenticate token for the
        first sealed message. Any failure here is ``ConnectFailed``: the message itself was not sent."""
        e = self._endpoint
        if self._credential is not None:
            context = spnego.client(self._credential, hostname=e.host, service="http", protocol="ntlm",
                                    options=spnego.NegotiateOptions.use_ntlm)
        else:
            context = spnego.client(self._username, self._password, hostname=e.host, service="http",
                                    protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
        negotiate = context.step()
        conn = http.client.HTTPConnection(e.host, e.port, timeout=e.connect_timeout)
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(e.read_timeout)
            conn.request("POST", e.path, b"", {
                "Authorization": f"{SCHEME} {base64.b64encode(negotiate or b'').decode()}",
                "Content-Type": "application/soap+xml;charset=UTF-8", "User-Agent": USER_AGENT})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ConnectFailed(_reason(exc)) from exc
        self.handshakes += 1
        challenge = _challenge(response)
        if response.status != 401 or challenge is None:
            conn.close()
            if response.status == 401:
                # The listener offers no Negotiate (Auth/Negotiate false), or refused the token outright.
                raise CredentialsRejected("HTTP 401 without an NTLM challenge to the negotiate token")
            if response.status >= 500:
                # A 5xx to the empty negotiate request (a service that is stopping): the message was not sent.
                raise ConnectFailed(f"HTTP {response.status} to the NTLM negotiate token")
            raise HttpStatus(response.status, b"", True)
        try:
            authenticate = context.step(challenge)
        except spnego.exceptions.SpnegoError as exc:
            conn.close()
            raise CredentialsRejected(f"the host's NTLM challenge was refused ({exc.message})") from None
        if response.will_close:
            conn.close()
            raise ConnectFailed("the host closed the connection after the NTLM challenge")
        self._conn, self._context, self._authenticate = conn, context, authenticate


def _unseal(context: Any, body: bytes) -> bytes:
    """The plain text of a sealed reply, each part's signature verified with the connection's context."""
    out = []
    for length, signature, data in unframe(body):
        try:
            plain: bytes = context.unwrap_winrm(signature, data)
        except spnego.exceptions.SpnegoError as exc:
            raise SealingError(f"the sealed reply failed its signature check ({exc.message})") from None
        except Exception as exc:  # pyspnego signals a forged signature with several exception types
            raise SealingError(f"the sealed reply failed its signature check ({type(exc).__name__})") from None
        if len(plain) != length:
            raise SealingError(f"the sealed reply unsealed to {len(plain)} bytes, not {length}")
        out.append(plain)
    return b"".join(out)


def _challenge(response: http.client.HTTPResponse) -> bytes | None:
    """The NTLM challenge of a 401 (``WWW-Authenticate: Negotiate <token>``), if there is one."""
    for value in response.headers.get_all("WWW-Authenticate") or []:
        for offer in value.split(","):
            scheme, _space, token = offer.strip().partition(" ")
            if scheme.lower() in ("negotiate", "ntlm") and token.strip():
                try:
                    return base64.b64decode(token.strip(), validate=True)
                except ValueError:
                    return None
    return None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the host (readable means EOF or a reset: a
    listener sends nothing unasked). Checked before writing, so a connection closed while idle costs a new
    handshake instead of an ambiguous write."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable = select.select([sock], [], [], 0)[0]
    except (OSError, ValueError):
        return True
    return bool(readable)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "RemoteDisconnected: the host closed the connection without a reply"
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."
