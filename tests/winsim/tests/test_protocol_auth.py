"""Negotiate/NTLM acceptance and [MS-WSMV] message sealing, checked against pyspnego's client side."""

from __future__ import annotations

import base64
import http.client
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import spnego

from winsim import auth

USERS = {"Administrator": "Pa55-word!"}


def handshake(tmp_path: Path, protocol: str = "negotiate", password: str = USERS["Administrator"],
              user: str = "Administrator") -> tuple[spnego.ContextProxy, auth.NegotiateAcceptor, bytes | None]:
    user_file = tmp_path / "host1.users"
    auth.write_user_file(user_file, "host1", USERS)
    client = spnego.client(user, password, hostname="127.0.0.1", service="http", protocol=protocol,
                           options=spnego.NegotiateOptions.wrapping_winrm)
    acceptor = auth.NegotiateAcceptor(user_file)
    token = client.step()
    final = None
    while token is not None:
        final = acceptor.step(token)
        if final is None:
            break
        token = client.step(final)
        final = None if token is not None else final
    return client, acceptor, final


@pytest.mark.parametrize("protocol", ["negotiate", "ntlm"])
def test_handshake_and_sealing_both_ways(tmp_path: Path, protocol: str) -> None:
    client, acceptor, _ = handshake(tmp_path, protocol)
    assert client.complete and acceptor.complete
    assert acceptor.username == "Administrator"
    request = b"<s:Envelope>request</s:Envelope>"
    wrapped = client.wrap_winrm(request)
    body = (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(request)).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data + b"--Encrypted Boundary--\r\n")
    assert acceptor.unseal(body) == request
    plain = b"<s:Envelope>reply</s:Envelope>"
    reply = acceptor.seal(plain)
    parts = auth.split_encrypted(reply)
    assert len(parts) == 1
    length, header, data = parts[0]
    assert (length, client.unwrap_winrm(header, data)) == (len(plain), plain)
    assert reply.startswith(b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
                            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=30\r\n")
    assert reply.endswith(b"--Encrypted Boundary--\r\n")


def test_spnego_returns_a_final_token(tmp_path: Path) -> None:
    # The mechListMIC leg: the server must hand it back on the 200 or a strict client fails the MIC check.
    client = spnego.client("Administrator", "Pa55-word!", hostname="h", service="http", protocol="negotiate")
    user_file = tmp_path / "u"
    auth.write_user_file(user_file, "host1", USERS)
    acceptor = auth.NegotiateAcceptor(user_file)
    challenge = acceptor.step(client.step() or b"")
    final = acceptor.step(client.step(challenge) or b"")
    assert acceptor.complete and final
    assert client.step(final) is None
    assert client.complete


def test_wrong_password_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(auth.AuthError):
        handshake(tmp_path, "ntlm", password="wrong")


def test_tampered_body_fails_the_signature(tmp_path: Path) -> None:
    client, acceptor, _ = handshake(tmp_path, "ntlm")
    wrapped = client.wrap_winrm(b"hello world")
    data = bytearray(wrapped.data)
    data[0] ^= 1
    body = (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=11\r\n--Encrypted Boundary\r\n"
            b"\tContent-Type: application/octet-stream\r\n" + struct.pack("<I", 16) + wrapped.header + bytes(data)
            + b"--Encrypted Boundary--\r\n")
    with pytest.raises(auth.EncryptionError):
        acceptor.unseal(body)


def test_sealed_data_containing_the_boundary_is_sliced_by_length() -> None:
    tricky = b"--Encrypted Boundary\r\nmore"
    body = (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(tricky)).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", 2) + b"SG" + tricky + b"--Encrypted Boundary--\r\n")
    assert auth.split_encrypted(body) == [(len(tricky), b"SG", tricky)]


@pytest.mark.parametrize("body", [
    b"",
    b"--Encrypted Boundary\r\nno second boundary",
    b"--Encrypted Boundary\r\n\tOriginalContent: type=x;Length=5\r\n--Encrypted Boundary\r\n"
    b"\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00short",
])
def test_broken_framing(body: bytes) -> None:
    with pytest.raises(auth.EncryptionError):
        auth.split_encrypted(body)


def test_basic_credentials() -> None:
    token = base64.b64encode(b"HOST1\\administrator:Pa55-word!").decode()
    assert auth.check_basic(token, USERS) == "Administrator"
    for bad in (base64.b64encode(b"Administrator:nope").decode(), "%%%", base64.b64encode(b"nocolon").decode()):
        with pytest.raises(auth.AuthError):
            auth.check_basic(bad, USERS)


def test_user_file_lists_local_account_spellings(tmp_path: Path) -> None:
    path = tmp_path / "ntlm" / "h.users"
    auth.write_user_file(path, "web01", USERS)
    lines = path.read_text().splitlines()
    assert ":Administrator:Pa55-word!" in lines
    assert "WEB01:Administrator:Pa55-word!" in lines
    assert path.stat().st_mode & 0o077 == 0


# --- the two-request handshake over HTTP (issue 13) ------------------------------------------------------

IDENTIFY = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>")


def sealed_body(client: spnego.ContextProxy, message: bytes) -> bytes:
    wrapped = client.wrap_winrm(message)
    return (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(message)).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data + b"--Encrypted Boundary--\r\n")


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
    conn.request("POST", "/wsman", body, headers)
    response = conn.getresponse()
    return response.status, response.read(), response.headers


@pytest.mark.parametrize("password", ["the host's", "wrong"])
def test_negotiate_first_and_authenticate_with_the_first_sealed_message(make_fleet: Callable[..., Any],
                                                                       password: str) -> None:
    """What the Ruby WinRM gem (HttpNegotiate) and kbfix.windows' ntlm_http send: the NTLM negotiate token
    on the first request with an empty body (no anonymous request before it), then the authenticate token in
    the same request as the first sealed message. Windows accepts it; so must winsim, answering sealed."""
    ep = make_fleet().hosts["h1"]
    secret = ep.password if password == "the host's" else password
    client = spnego.client(ep.username, secret, hostname=ep.address, service="http", protocol="ntlm")
    conn = http.client.HTTPConnection(ep.address, ep.port, timeout=10)
    try:
        status, _, headers = post(conn, b"", {"Authorization": "Negotiate " + base64.b64encode(client.step()
                                                                                                or b"").decode()})
        assert status == 401
        [challenge] = [v.split(" ", 1)[1] for v in headers.get_all("WWW-Authenticate") if v.startswith("Negotiate ")]
        authenticate = client.step(base64.b64decode(challenge)) or b""
        encrypted = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";' \
                    'boundary="Encrypted Boundary"'
        status, body, headers = post(conn, sealed_body(client, IDENTIFY), {
            "Authorization": "Negotiate " + base64.b64encode(authenticate).decode(), "Content-Type": encrypted})
        if password == "wrong":
            assert status == 401  # the authenticate leg is refused: the body was never opened
            assert ep.counters()["requests"] == 0
            return
        assert status == 200 and headers["Content-Type"].startswith("multipart/encrypted")
        [(length, signature, data)] = auth.split_encrypted(body)
        assert b"IdentifyResponse" in client.unwrap_winrm(signature, data)
        # The keep-alive connection carries the context: a later message is sealed, without Authorization.
        status, body, _ = post(conn, sealed_body(client, IDENTIFY), {"Content-Type": encrypted})
        [(length, signature, data)] = auth.split_encrypted(body)
        assert status == 200 and len(client.unwrap_winrm(signature, data)) == length
    finally:
        conn.close()
    counters = ep.counters()
    assert (counters["auth_requests"], counters["requests"]) == (1, 2)  # one HTTP request of authentication
