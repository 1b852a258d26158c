# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security defaults of the WinRM settings (issue 15 item 1, issue 14 "Security defaults"): Basic over plain
HTTP and unencrypted HTTP are refused before any connection unless opted in, HTTPS certificates are validated
unless the inventory turns it off, and HTTP with a sealing transport always encrypts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from test_winrm_client import PASSWORD, ansible_connection

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, KbfixError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import select
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm


class RawListener:
    """A TCP listener on loopback that records every byte any client sends it and answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.received = bytearray()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(1.0)
                try:
                    while chunk := conn.recv(65536):
                        self.received += chunk
                        if b"\r\n\r\n" in self.received:
                            break  # headers are all we need; closing makes the client give up
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[RawListener]:
    raw = RawListener()
    try:
        yield raw
    finally:
        raw.close()


def host_vars(port: int, **extra: Any) -> dict[str, Any]:
    return {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "Administrator",
            "ansible_password": PASSWORD, "ansible_winrm_scheme": "http", **extra}


def try_facts(variables: dict[str, Any]) -> None:
    transport = select.open_transport(ansible_connection(variables), variables, lambda level, msg: None,
                                      retries=0)
    try:
        transport.os_facts()
    finally:
        transport.close()
        winrm.close_all()


@pytest.mark.parametrize("transport", ["basic", "plaintext", "ssl", "ntlm,basic"])
def test_basic_over_http_is_refused_before_any_byte_leaves(listener: RawListener, transport: str) -> None:
    variables = host_vars(listener.port, ansible_winrm_transport=transport)
    with pytest.raises(ArgumentError) as info:
        try_facts(variables)
    assert info.value.field == "ansible_winrm_transport"
    assert "kbfix_allow_basic_over_http: true" in str(info.value)
    assert "https" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert (listener.connections, bytes(listener.received)) == (0, b"")


def test_the_opt_in_lets_basic_over_http_through(listener: RawListener) -> None:
    # The control for the test above: with the opt-in the same inventory does reach the listener, and
    # what it sends is the password in a Basic header, which is why it is refused by default.
    variables = host_vars(listener.port, ansible_winrm_transport="basic", kbfix_allow_basic_over_http=True)
    with pytest.raises(KbfixError):
        try_facts(variables)
    assert listener.connections >= 1
    assert b"Authorization: Basic " in bytes(listener.received)


@pytest.mark.parametrize("value", ["maybe", 2, ["true"]])
def test_an_opt_in_that_is_not_a_boolean_is_refused(listener: RawListener, value: Any) -> None:
    variables = host_vars(listener.port, ansible_winrm_transport="basic", kbfix_allow_basic_over_http=value)
    with pytest.raises(ArgumentError) as info:
        try_facts(variables)
    assert info.value.field == "kbfix_allow_basic_over_http"
    assert listener.connections == 0


def test_unencrypted_http_is_refused_unless_opted_in(listener: RawListener) -> None:
    variables = host_vars(listener.port, ansible_winrm_transport="ntlm", ansible_winrm_message_encryption="never")
    with pytest.raises(ArgumentError) as info:
        try_facts(variables)
    assert info.value.field == "ansible_winrm_message_encryption"
    assert "kbfix_allow_unencrypted_http: true" in str(info.value)
    assert listener.connections == 0
    settings = winrm.settings_from_connection(ansible_connection(variables), allow_unencrypted_http=True)
    assert settings.message_encryption == "never"


def test_http_with_a_sealing_transport_always_encrypts() -> None:
    http = winrm.WinRMSettings(host="h", transports=("ntlm", "kerberos", "credssp"), username="u", password="p")
    assert {winrm.effective_encryption(http, t) for t in http.transports} == {"always"}
    https = winrm.WinRMSettings(host="h", scheme="https", port=5986, transports=("ntlm", "basic"))
    assert [winrm.effective_encryption(https, t) for t in https.transports] == ["auto", "auto"]
    # The value really reaches pywinrm's transport.
    protocol = winrm.WinRMClient(http)._new_protocol()
    assert protocol.transport.message_encryption == "always"


def test_basic_over_https_needs_no_opt_in_and_validates_certificates_by_default() -> None:
    conn = ansible_connection({"ansible_host": "h", "ansible_port": 5986, "ansible_user": "u",
                               "ansible_password": "p", "ansible_winrm_transport": "basic"})
    settings = winrm.settings_from_connection(conn)
    assert (settings.scheme, settings.cert_validation) == ("https", "validate")
    protocol = winrm.WinRMClient(settings)._new_protocol()
    assert protocol.transport.server_cert_validation == "validate"
    conn = ansible_connection({"ansible_host": "h", "ansible_port": 5986, "ansible_user": "u",
                               "ansible_password": "p", "ansible_winrm_transport": "basic",
                               "ansible_winrm_server_cert_validation": "ignore"})
    assert winrm.settings_from_connection(conn).cert_validation == "ignore"
