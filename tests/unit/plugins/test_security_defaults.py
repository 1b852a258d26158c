# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security defaults (issue 15 item 1, issue 14 "Security defaults"), through the real action plugins: Basic
over plain HTTP and unencrypted HTTP are refused before any connection unless opted in, HTTPS certificates
are validated unless the inventory turns it off, and HTTP with a sealing transport always encrypts."""

from __future__ import annotations

from typing import Any

import pytest
from action_harness import counting_listener, host_vars, run_action
from ansible.template import trust_as_template
from winrm.protocol import Protocol

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import ntlm_http

PASSWORD = "Not-A-Real-Pass1"  # action_harness.host_vars' password


def facts(port: int, **extra: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = run_action("facts", {}, host_vars(port, **extra))
        return result
    finally:
        winrm.close_all()


@pytest.mark.parametrize("transport", ["basic", "plaintext", "ssl", "ntlm,basic"])
def test_basic_over_http_is_refused_before_any_byte_leaves(transport: str) -> None:
    with counting_listener(record=True) as listener:
        result = facts(listener.port, ansible_winrm_transport=transport)
    assert result["failed"] is True and result["argument"] == "ansible_winrm_transport"
    assert "kbfix_allow_basic_over_http: true" in result["msg"] and "https" in result["msg"]
    assert PASSWORD not in str(result)
    assert (listener.accepted, bytes(listener.received)) == (0, b"")


def test_the_opt_in_lets_basic_over_http_through() -> None:
    # The control for the test above: with the opt-in the same inventory reaches the listener, and what it
    # sends is the password in a Basic header, which is why it is refused by default.
    with counting_listener(record=True) as listener:
        result = facts(listener.port, ansible_winrm_transport="basic", kbfix_allow_basic_over_http=True)
    assert result.get("unreachable") or result.get("failed")
    assert listener.accepted >= 1
    assert b"Authorization: Basic " in bytes(listener.received)


def test_an_opt_in_is_templated_and_must_be_a_boolean() -> None:
    with counting_listener() as listener:
        result = facts(listener.port, ansible_winrm_transport="basic", kbfix_allow_basic_over_http="maybe")
        assert result["argument"] == "kbfix_allow_basic_over_http" and listener.accepted == 0
        result = facts(listener.port, ansible_winrm_transport="basic", allow="yes",
                       kbfix_allow_basic_over_http=trust_as_template("{{ allow }}"))  # as an inventory gives it
        assert result.get("argument") != "ansible_winrm_transport", result
        assert listener.accepted >= 1


def test_unencrypted_http_is_refused_unless_opted_in() -> None:
    with counting_listener() as listener:
        result = facts(listener.port, ansible_winrm_message_encryption="never")
        assert result["argument"] == "ansible_winrm_message_encryption"
        assert "kbfix_allow_unencrypted_http: true" in result["msg"]
        assert listener.accepted == 0
        result = facts(listener.port, ansible_winrm_message_encryption="never", kbfix_allow_unencrypted_http=True)
        assert result.get("argument") is None and listener.accepted >= 1


def test_http_with_a_sealing_transport_always_encrypts() -> None:
    http = winrm.WinRMSettings(host="h", transports=("ntlm", "kerberos", "credssp"), username="u", password="p")
    assert {winrm.effective_encryption(http, t) for t in http.transports} == {"always"}
    https = winrm.WinRMSettings(host="h", scheme="https", port=5986, transports=("ntlm", "basic"))
    assert [winrm.effective_encryption(https, t) for t in https.transports] == ["auto", "auto"]
    # NTLM over HTTP goes through ntlm_http, which has no unsealed mode (tests/unit/transport/test_ntlm_http.py:
    # it refuses an unsealed reply too); for the others the value really reaches pywinrm's transport.
    assert isinstance(winrm.WinRMClient(http)._new_protocol(), ntlm_http.NtlmHttpSession)
    kerberos = winrm.WinRMSettings(host="h", transports=("kerberos",), username="u", password="p")
    protocol = winrm.WinRMClient(kerberos)._new_protocol()
    assert isinstance(protocol, Protocol) and protocol.transport.message_encryption == "always"


def test_https_validates_certificates_unless_the_inventory_says_ignore() -> None:
    settings = winrm.WinRMSettings(host="h", scheme="https", port=5986, transports=("basic",), username="u",
                                   password="p")
    assert settings.cert_validation == "validate"
    assert winrm.WinRMClient(settings)._new_protocol().transport.server_cert_validation == "validate"
    ignored = winrm.WinRMSettings(host="h", scheme="https", port=5986, transports=("basic",), cert_validation="ignore")
    assert ignored.cert_validation == "ignore"


@pytest.mark.parametrize("value,field", [("maybe", "kbfix_upload_smb"), (True, "kbfix_smb_port")])
def test_the_smb_upload_opt_in_is_checked_before_any_connection(value: Any, field: str) -> None:
    """kbfix_upload_smb must be a boolean, and once on, the SMB settings it needs are checked too (here a port
    that is no port), naming the variable, before anything reaches the host."""
    with counting_listener() as listener:
        result = facts(listener.port, kbfix_upload_smb=value, kbfix_smb_port=70000)
        assert result["failed"] is True and result["argument"] == field, result
        assert listener.accepted == 0
