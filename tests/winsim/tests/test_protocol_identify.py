"""WS-Management Identify (DSP0226 section 11) as Windows answers it: in DSP0226's wsmanidentity namespace,
unauthenticated (``WSMANIDENTIFY: unauthenticated``, Test-WSMan's default) with the OS part zeroed, and
authenticated with the host's OS version. WinRM 1.0 (the 2005 draft) has no Identify."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import requests
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol

from winsim.testing import HostSpec

# Spelled out rather than taken from winsim.soap: this is the namespace Windows answers in.
DSP0226_IDENTITY = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
MS_WSMV_SPELLING = "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
ANONYMOUS = {"WSMANIDENTIFY": "unauthenticated", "Content-Type": "application/soap+xml;charset=UTF-8"}


def identify_body(namespace: str = DSP0226_IDENTITY) -> str:
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsmid="{namespace}">'
            "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>")


def identity(content: bytes) -> dict[str, str | None]:
    """The IdentifyResponse fields, found only under DSP0226's namespace."""
    root = ET.fromstring(content)
    response = root.find(f"./{{{SOAP}}}Body/{{{DSP0226_IDENTITY}}}IdentifyResponse")
    assert response is not None, content
    return {name: response.findtext(f"{{{DSP0226_IDENTITY}}}{name}")
            for name in ("ProtocolVersion", "ProductVendor", "ProductVersion")}


@pytest.fixture
def http_fleet(make_fleet: Callable[..., Any]) -> Any:
    # HTTP with AllowUnencrypted=false: only an authenticated, sealed request gets past the listener, except
    # the unauthenticated Identify.
    return make_fleet([HostSpec("r2", "2008r2-rtm-x64"), HostSpec("xp", "xp-sp1-x86"),
                       HostSpec("hw", "2003r2-sp2-x86", {"winrm_version": "1.0"})])


def test_unauthenticated_identify_names_the_stack_but_not_the_os(http_fleet: Any) -> None:
    for name, stack in (("r2", "2.0"), ("xp", http_fleet.hosts["xp"].winrm_version)):
        ep = http_fleet.hosts[name]
        reply = requests.post(ep.url, data=identify_body(), headers=ANONYMOUS, timeout=10)
        assert reply.status_code == 200, reply.headers
        assert reply.headers["Content-Type"].startswith("application/soap+xml")  # plain text, not sealed
        assert identity(reply.content) == {"ProtocolVersion": WSMAN, "ProductVendor": "Microsoft Corporation",
                                           "ProductVersion": f"OS: 0.0.0 SP: 0.0 Stack: {stack}"}
        counters = ep.counters()
        assert (counters["requests"], counters["by_action"], counters["auth_requests"]) == (1, {"Identify": 1}, 0)


def test_without_the_header_or_for_anything_else_authentication_is_required(http_fleet: Any) -> None:
    ep = http_fleet.hosts["r2"]
    plain = {"Content-Type": ANONYMOUS["Content-Type"]}
    assert requests.post(ep.url, data=identify_body(), headers=plain, timeout=10).status_code == 401
    enumerate_ = (f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing">'
                  "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate</a:Action>"
                  "</s:Header><s:Body/></s:Envelope>")
    reply = requests.post(ep.url, data=enumerate_, headers=ANONYMOUS, timeout=10)
    assert reply.status_code == 401 and "Negotiate" in reply.headers["WWW-Authenticate"]
    counters = ep.counters()
    assert (counters["requests"], counters["auth_requests"]) == (0, 2)


def test_authenticated_identify_over_ntlm_carries_the_os_version(http_fleet: Any) -> None:
    for name, os_version in (("r2", "OS: 6.1.7600 SP: 0.0"), ("xp", "OS: 5.1.2600 SP: 1.0")):
        ep = http_fleet.hosts[name]
        protocol = Protocol(ep.url, transport="ntlm", username=ep.username, password=ep.password)
        fields = identity(protocol.send_message(identify_body()))
        assert fields["ProductVersion"] == f"{os_version} Stack: {ep.winrm_version}"
        assert ep.counters()["by_action"] == {"Identify": 1}


def test_a_request_in_ms_wsmv_spelling_is_answered_in_dsp0226_namespace(http_fleet: Any) -> None:
    ep = http_fleet.hosts["r2"]
    reply = requests.post(ep.url, data=identify_body(MS_WSMV_SPELLING), headers=ANONYMOUS, timeout=10)
    assert reply.status_code == 200
    assert identity(reply.content)["ProductVersion"] == "OS: 0.0.0 SP: 0.0 Stack: 2.0"
    assert MS_WSMV_SPELLING.encode() not in reply.content


def test_winrm_1_0_has_no_identify(http_fleet: Any) -> None:
    ep = http_fleet.hosts["hw"]
    assert requests.post(ep.url, data=identify_body(), headers=ANONYMOUS, timeout=10).status_code == 401
    protocol = Protocol(ep.url, transport="ntlm", username=ep.username, password=ep.password)
    with pytest.raises(WSManFaultError) as fault:
        protocol.send_message(identify_body())
    # To the 2005 draft this is an envelope without a:Action.
    assert (fault.value.wsman_fault_code, fault.value.fault_subcode) == (2150858769,
                                                                         "a:MessageInformationHeaderRequired")
    assert ep.counters()["by_action"] == {"Identify": 1}


def test_authenticated_identify_over_https_basic(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet([HostSpec("s1", "2008-sp2-x64")], https=True).hosts["s1"]
    reply = requests.post(ep.url, data=identify_body(), auth=(ep.username, ep.password), verify=str(ep.cert_path),
                          headers={"Content-Type": ANONYMOUS["Content-Type"]}, timeout=10)
    assert reply.status_code == 200
    assert identity(reply.content)["ProductVersion"] == "OS: 6.0.6002 SP: 2.0 Stack: 2.0"
