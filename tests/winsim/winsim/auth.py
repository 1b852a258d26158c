"""HTTP authentication and WinRM message encryption, server side.

Windows' WinRM service offers Negotiate (and Kerberos) by default, Basic only when enabled, and with
AllowUnencrypted=false it accepts a body over plain HTTP only when it is sealed with the authenticated
security context ([MS-WSMV] 2.2.9.1): a ``multipart/encrypted`` body whose parts are

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE signature length><signature><sealed data>
    --Encrypted Boundary--\\r\\n

NTLM is accepted through pyspnego's acceptor, which reads the accounts from the file named by the
``NTLM_USER_FILE`` environment variable. Each simulated host has its own file (its own Administrator
password); the variable is pointed at the right file immediately before each acceptor step. That is safe
only because every step runs on the fleet's single event-loop thread, never in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import spnego

ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"


class AuthError(Exception):
    """Authentication failed: answer 401 with fresh challenges."""


class EncryptionError(Exception):
    """A sealed body could not be opened (bad framing or signature): answer 400."""


def split_user(name: str) -> str:
    """``HOST\\Administrator``, ``.\\Administrator`` and ``Administrator@host`` are all the local account."""
    if "\\" in name:
        name = name.split("\\", 1)[1]
    elif "@" in name:
        name = name.split("@", 1)[0]
    return name


def find_account(credentials: Mapping[str, str], name: str) -> str | None:
    """The account name as the host spells it; Windows account names are case-insensitive."""
    wanted = split_user(name).lower()
    return next((user for user in credentials if user.lower() == wanted), None)


def parse_authorization(header: str) -> tuple[str, str]:
    scheme, _, token = header.strip().partition(" ")
    return scheme.lower(), token.strip()


def check_basic(token: str, credentials: Mapping[str, str]) -> str:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("malformed Basic credentials") from exc
    name, sep, password = decoded.partition(":")
    account = find_account(credentials, name) if sep else None
    if account is None or credentials[account] != password:
        raise AuthError("unknown user name or bad password")
    return account


def write_user_file(path: Path, host_name: str, credentials: Mapping[str, str]) -> None:
    """Heimdal-format NTLM account file: the local accounts under the names clients may qualify them with.

    pyspnego matches the domain exactly, so the accounts are listed with no domain, ``.``, the host name and
    WORKGROUP -- the spellings a client uses for a local account of a workgroup machine.
    """
    domains = ["", ".", host_name.upper(), "WORKGROUP"]
    lines = [f"{domain}:{user}:{password}" for user, password in credentials.items() for domain in domains]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


class NegotiateAcceptor:
    """One connection's Negotiate/NTLM security context: the handshake, then sealing and unsealing."""

    def __init__(self, user_file: Path) -> None:
        self._user_file = user_file
        self._context: spnego.ContextProxy | None = None

    @property
    def complete(self) -> bool:
        return self._context is not None and self._context.complete

    @property
    def username(self) -> str:
        if self._context is None or not self._context.complete:
            raise AuthError("no completed security context")
        return split_user(str(self._context.client_principal or ""))

    def step(self, token: bytes) -> bytes | None:
        """Feed one client token; returns the token to send back (challenge, or the final SPNEGO token)."""
        os.environ["NTLM_USER_FILE"] = str(self._user_file)
        if self._context is None or self._context.complete:
            self._context = spnego.server(hostname="unspecified", service="http", protocol="negotiate")
        try:
            return self._context.step(token)
        except Exception as exc:  # pyspnego raises many types for bad tokens and bad passwords
            self._context = None
            raise AuthError(f"authentication failed: {exc}") from exc

    def seal(self, message: bytes) -> bytes:
        """A reply body framed the way Windows frames it."""
        if self._context is None or not self._context.complete:
            raise EncryptionError("no security context to seal with")
        wrapped = self._context.wrap_winrm(message)
        payload = struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data
        head = (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + ENCRYPTED_PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message) + wrapped.padding_length).encode() + b"\r\n"
            + BOUNDARY + b"\r\n" + _OCTET_STREAM
        )
        return head + payload + BOUNDARY + b"--\r\n"

    def unseal(self, body: bytes) -> bytes:
        if self._context is None or not self._context.complete:
            raise EncryptionError("the body is sealed but the connection has no security context")
        return b"".join(self._unseal_part(length, header, data) for length, header, data in split_encrypted(body))

    def _unseal_part(self, length: int, header: bytes, data: bytes) -> bytes:
        assert self._context is not None
        try:
            plain = self._context.unwrap_winrm(header, data)
        except Exception as exc:  # a forged or replayed body fails the signature check
            raise EncryptionError(f"cannot unseal the message: {exc}") from exc
        if len(plain) != length:
            raise EncryptionError(f"unsealed {len(plain)} bytes but OriginalContent says {length}")
        return plain


def is_encrypted(content_type: str) -> bool:
    lowered = content_type.lower()
    return lowered.startswith("multipart/encrypted") and ENCRYPTED_PROTOCOL.lower() in lowered


def split_encrypted(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """The (original length, signature, sealed data) of each part of a ``multipart/encrypted`` body.

    The sealed data is sliced by the OriginalContent length rather than searched for the next boundary:
    NTLM sealing is RC4, so the sealed data is exactly as long as the plain text and may contain anything.
    """
    parts: list[tuple[int, bytes, bytes]] = []
    pos = 0
    while True:
        if body.startswith(BOUNDARY + b"--", pos):
            return parts
        pos = _expect(body, pos, BOUNDARY + b"\r\n")
        end = body.find(BOUNDARY + b"\r\n", pos)
        if end < 0:
            raise EncryptionError("missing second boundary of an encrypted part")
        length = _original_length(body[pos:end])
        pos = _expect(body, end + len(BOUNDARY) + 2, _OCTET_STREAM)
        if len(body) < pos + 4:
            raise EncryptionError("truncated encrypted part")
        (sig_len,) = struct.unpack_from("<I", body, pos)
        pos += 4
        signature = body[pos:pos + sig_len]
        data = body[pos + sig_len:pos + sig_len + length]
        if len(signature) != sig_len or len(data) != length:
            raise EncryptionError("truncated encrypted part")
        pos += sig_len + length
        parts.append((length, signature, data))


def _expect(body: bytes, pos: int, literal: bytes) -> int:
    if not body.startswith(literal, pos):
        raise EncryptionError(f"expected {literal!r} at offset {pos}")
    return pos + len(literal)


def _original_length(headers: bytes) -> int:
    for line in headers.split(b"\r\n"):
        line = line.strip()
        if line.lower().startswith(b"originalcontent:") and b"Length=" in line:
            try:
                return int(line.split(b"Length=", 1)[1].split(b";", 1)[0])
            except ValueError as exc:
                raise EncryptionError("bad Length in OriginalContent") from exc
    raise EncryptionError("no OriginalContent length in the encrypted part")
