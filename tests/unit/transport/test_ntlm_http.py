# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTLM over HTTP in two requests per connection (ntlm_http, issue 13): the framing, and the session against a
small listener on loopback that authenticates with pyspnego's own NTLM acceptor and seals its replies with it.

The listener does what a WinRM listener does at the HTTP level and can misbehave on purpose: tamper with a
sealed reply, refuse the authenticate token, answer in clear, close an idle connection. The client side is
the real session and the real ``WinRMClient`` error mapping."""

from __future__ import annotations

import base64
import http.server
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import spnego

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    HostUnreachableError,
    TransportError,
    WSManFaultError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import ntlm_http, wsman

USER, PASSWORD = "Administrator", "S3cret!pw-do-not-log"
REPLY = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>'
         b"<p:Answer xmlns:p=\"urn:x\">42</p:Answer></s:Body></s:Envelope>")


# --- framing ---------------------------------------------------------------------------------------------


def test_frame_is_the_ms_wsmv_layout_and_unframes() -> None:
    body = ntlm_http.frame(b"S" * 16, b"sealed", 6)
    assert body == (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
                    b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=6\r\n"
                    b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
                    + struct.pack("<I", 16) + b"S" * 16 + b"sealed--Encrypted Boundary--\r\n")
    assert ntlm_http.unframe(body) == [(6, b"S" * 16, b"sealed")]


def test_sealed_data_holding_the_boundary_is_cut_by_length() -> None:
    tricky = b"--Encrypted Boundary\r\n--Encrypted Boundary--\r\n"
    assert ntlm_http.unframe(ntlm_http.frame(b"SG", tricky, len(tricky))) == [(len(tricky), b"SG", tricky)]


@pytest.mark.parametrize("body", [
    b"",
    b"--Encrypted Boundary--\r\n",  # no part at all
    b"--Encrypted Boundary\r\nno second boundary",
    b"--Encrypted Boundary\r\n\tOriginalContent: type=x;Length=5\r\n--Encrypted Boundary\r\n"
    b"\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00short",
    b"--Encrypted Boundary\r\n\tOriginalContent: type=x;Length=zz\r\n--Encrypted Boundary\r\n",
])
def test_broken_framing_is_a_sealing_error(body: bytes) -> None:
    with pytest.raises(ntlm_http.SealingError):
        ntlm_http.unframe(body)


# --- a listener on loopback ------------------------------------------------------------------------------


@dataclass
class Listener:
    port: int
    mode: str = "ok"  # ok | tamper | reject | plain | fault | close | goodbye | unavailable
    seen: list[str] = field(default_factory=list)  # per request: "negotiate", "authenticate+sealed", "sealed"
    connections: int = 0


def _handler(listener: Listener) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        context: Any = None

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def setup(self) -> None:
            super().setup()
            listener.connections += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            if auth is not None:
                scheme, _, token = auth.partition(" ")
                assert scheme == "Negotiate"
                if self.context is None and listener.mode == "unavailable":
                    listener.seen.append("negotiate")
                    self._answer(503, b"", [])
                    return
                if self.context is None:
                    self.context = spnego.server(protocol="ntlm")
                    challenge = self.context.step(base64.b64decode(token))
                    listener.seen.append("negotiate" if not body else "negotiate+body")
                    self._answer(401, b"", [("WWW-Authenticate", "Negotiate " + base64.b64encode(challenge).decode())])
                    return
                listener.seen.append("authenticate+sealed" if body else "authenticate")
                if listener.mode == "reject":
                    self.context = None
                    self._answer(401, b"", [("WWW-Authenticate", "Negotiate")])
                    return
                self.context.step(base64.b64decode(token))
            else:
                listener.seen.append("sealed")
            assert self.context is not None and self.context.complete, "sealed body before authentication"
            plain = b"".join(self.context.unwrap_winrm(sig, data) for _, sig, data in ntlm_http.unframe(body))
            assert b"<s:Envelope" in plain
            if listener.mode == "plain":
                self._answer(200, REPLY, [("Content-Type", "application/soap+xml;charset=UTF-8")])
                return
            fault = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code>'
                     b"<s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text>no</s:Text></s:Reason>"
                     b"</s:Fault></s:Body></s:Envelope>")
            reply = fault if listener.mode == "fault" else REPLY
            wrapped = self.context.wrap_winrm(reply)
            data = bytearray(wrapped.data)
            if listener.mode == "tamper":
                data[0] ^= 1
            goodbye = [("Connection", "close")] if listener.mode == "goodbye" else []
            self._answer(500 if listener.mode == "fault" else 200,
                         ntlm_http.frame(wrapped.header, bytes(data), len(reply)),
                         [("Content-Type", ntlm_http.CONTENT_TYPE), *goodbye])
            if listener.mode == "close":
                self.close_connection = True  # closed while idle, without saying so in the reply

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    users = tmp_path / "users"
    users.write_text("".join(f"{d}:{USER}:{PASSWORD}\n" for d in ("", ".", "WORKGROUP")), encoding="utf-8")
    monkeypatch.setitem(os.environ, "NTLM_USER_FILE", str(users))
    state = Listener(0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def session(listener: Listener, password: str = PASSWORD) -> ntlm_http.NtlmHttpSession:
    return ntlm_http.NtlmHttpSession(ntlm_http.Endpoint("127.0.0.1", listener.port, "/wsman", 5, 10), USER, password)


def client(listener: Listener, **changes: Any) -> winrm.WinRMClient:
    settings = winrm.WinRMSettings(host="127.0.0.1", port=listener.port, username=USER, password=PASSWORD,
                                   retries=0, **changes)
    return winrm.WinRMClient(settings, sleep=lambda _: None)


ENVELOPE = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>'
GET = wsman.get_request(wsman.wmi_resource("root/cimv2", "Win32_Service"), {"Name": "DFSR"})


def test_two_requests_for_a_new_connection_then_one_each(listener: Listener) -> None:
    s = session(listener)
    assert s.send(ENVELOPE) == REPLY
    assert s.send(ENVELOPE) == REPLY
    assert s.send(ENVELOPE) == REPLY
    # No anonymous request, no empty authenticating POST: the authenticate token rides on the first message.
    assert listener.seen == ["negotiate", "authenticate+sealed", "sealed", "sealed"]
    assert (listener.connections, s.handshakes) == (1, 1)


def test_hashes_computed_once_authenticate_like_the_password(listener: Listener) -> None:
    credential = ntlm_http.ntlm_credential(USER, PASSWORD)
    assert credential is not None and PASSWORD not in repr(credential)  # pyspnego keeps the hashes out of repr
    endpoint = ntlm_http.Endpoint("127.0.0.1", listener.port, "/wsman", 5, 10)
    first, second = (ntlm_http.NtlmHttpSession(endpoint, USER, PASSWORD, credential) for _ in range(2))
    # The acceptor checks the NTLMv2 response against the password in its user file: a wrong hash fails here.
    assert first.send(ENVELOPE) == REPLY and second.send(ENVELOPE) == REPLY
    assert listener.connections == 2
    c = client(listener)
    c.send(GET, idempotent=True)
    assert c._ntlm_credential is not None and c._ntlm_credential.nt_hash == credential.nt_hash


def test_a_tampered_reply_fails_its_signature(listener: Listener) -> None:
    listener.mode = "tamper"
    with pytest.raises(ntlm_http.SealingError, match="signature"):
        session(listener).send(ENVELOPE)
    with pytest.raises(TransportError, match="signature") as info:
        client(listener).send(GET, idempotent=True)
    assert not isinstance(info.value, HostUnreachableError)  # not a network problem, never retried as one


def test_401_to_the_authenticate_token_is_the_wrong_password(listener: Listener) -> None:
    listener.mode = "reject"
    with pytest.raises(ntlm_http.CredentialsRejected):
        session(listener).send(ENVELOPE)
    with pytest.raises(AuthenticationError) as info:
        client(listener).send(GET, idempotent=True)
    assert PASSWORD not in str(info.value) and repr(USER) in str(info.value)


def test_an_unsealed_reply_to_a_sealed_request_is_refused(listener: Listener) -> None:
    listener.mode = "plain"
    with pytest.raises(ntlm_http.SealingError, match="unsealed"):
        session(listener).send(ENVELOPE)


def test_a_sealed_fault_is_unsealed_and_parsed_as_a_fault(listener: Listener) -> None:
    listener.mode = "fault"
    with pytest.raises(ntlm_http.HttpStatus) as status:
        session(listener).send(ENVELOPE)
    assert status.value.status == 500 and b"<s:Fault>" in status.value.body
    with pytest.raises(WSManFaultError, match="no"):
        client(listener).send(GET, idempotent=True)


def test_a_connection_closed_while_idle_costs_a_handshake_not_an_ambiguous_request(listener: Listener) -> None:
    listener.mode = "close"
    s = session(listener)
    assert s.send(ENVELOPE) == REPLY
    for _ in range(50):  # the listener closes its end right after the reply; wait until that has arrived
        if s._conn is None or ntlm_http._dropped(s._conn):
            break
        threading.Event().wait(0.01)
    assert s.send(ENVELOPE) == REPLY
    assert listener.seen == ["negotiate", "authenticate+sealed", "negotiate", "authenticate+sealed"]
    assert (listener.connections, s.handshakes) == (2, 2)


def test_a_reply_that_ends_the_connection_is_unsealed_and_the_next_message_authenticates_again(
        listener: Listener) -> None:
    listener.mode = "goodbye"  # "Connection: close" on the sealed reply
    s = session(listener)
    assert s.send(ENVELOPE) == REPLY
    assert s.send(ENVELOPE) == REPLY
    assert listener.seen == ["negotiate", "authenticate+sealed", "negotiate", "authenticate+sealed"]
    assert (listener.connections, s.handshakes) == (2, 2)


def test_a_5xx_to_the_negotiate_token_is_not_an_ambiguous_write(listener: Listener) -> None:
    # Only the empty negotiate request went out: even a write is safe to repeat, so the host is unreachable.
    listener.mode = "unavailable"
    with pytest.raises(ntlm_http.ConnectFailed, match="HTTP 503"):
        session(listener).send(ENVELOPE)
    with pytest.raises(HostUnreachableError) as info:
        client(listener).send(GET, idempotent=False)
    assert not isinstance(info.value, AmbiguousWriteError)


def test_refused_connection_is_not_sent(listener: Listener) -> None:
    s = ntlm_http.NtlmHttpSession(ntlm_http.Endpoint("127.0.0.1", 1, "/wsman", 5, 10), USER, PASSWORD)
    with pytest.raises(ntlm_http.ConnectFailed, match="Connection refused"):
        s.send(ENVELOPE)


def test_which_transports_use_the_session() -> None:
    def uses(transport: str = "ntlm", **changes: Any) -> bool:
        values: dict[str, Any] = {"host": "h", "username": USER, "password": PASSWORD, **changes}
        settings = winrm.WinRMSettings(transports=(transport,), **values)
        return winrm.use_own_ntlm(settings, transport)

    assert uses()
    assert uses(message_encryption="always")
    assert uses(extra=(("proxy", None),))
    assert not uses(scheme="https", port=5986)
    assert not uses("kerberos")
    assert not uses("credssp")
    assert not uses("basic", allow_basic_over_http=True)
    assert not uses("certificate")
    assert not uses(message_encryption="never", allow_unencrypted_http=True)
    assert not uses(extra=(("proxy", "http://proxy.example:3128"),))
    assert not uses(password=None)


def test_an_environment_proxy_keeps_pywinrm(monkeypatch: pytest.MonkeyPatch) -> None:
    # pywinrm's default proxy setting ('legacy_requests') takes HTTP_PROXY from the environment; so do we, by
    # leaving such hosts to it, unless NO_PROXY names them.
    settings = winrm.WinRMSettings(host="win01.example", username=USER, password=PASSWORD)
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert not winrm.use_own_ntlm(settings, "ntlm")
    monkeypatch.setenv("no_proxy", "win01.example")
    assert winrm.use_own_ntlm(settings, "ntlm")
