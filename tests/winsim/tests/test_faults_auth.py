"""Authentication and transport rules as Windows applies them: 401s, AllowUnencrypted=false, Basic on HTTPS
only, the final SPNEGO token, no listener, a rebooting host."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import spnego
from requests_ntlm import HttpNtlmAuth

from winsim.testing import HostSpec

ENVELOPE = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    b'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
    b"<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>"
    b"<a:MessageID>uuid:00000000-0000-0000-0000-000000000001</a:MessageID>"
    b"<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</w:ResourceURI>"
    b'<w:SelectorSet><w:Selector Name="Name">DFSR</w:Selector></w:SelectorSet>'
    b"</s:Header><s:Body/></s:Envelope>"
)
SOAP = {"Content-Type": "application/soap+xml;charset=UTF-8"}


def challenges(response: requests.Response) -> list[str]:
    return [c.strip() for c in response.headers.get("WWW-Authenticate", "").split(",")]


def test_anonymous_request_gets_the_windows_challenges(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    response = requests.post(ep.url, data=ENVELOPE, headers=SOAP, timeout=10)
    assert response.status_code == 401
    assert challenges(response) == ["Negotiate", "Kerberos"]  # no Basic over plain HTTP
    assert response.headers["Server"] == "Microsoft-HTTPAPI/2.0"
    assert ep.counters() == {"requests": 0, "by_action": {}, "auth_requests": 1, "shells_open": 0,
                              "injected": {}}


def test_plaintext_body_over_http_is_refused(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    response = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=HttpNtlmAuth(ep.username, ep.password),
                             timeout=10)
    assert response.status_code == 401  # authenticated fine, but AllowUnencrypted=false
    assert ep.counters()["requests"] == 0


def test_allow_unencrypted_override(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet([HostSpec("h1", "2008-sp2-x64", {"allow_unencrypted": True})]).hosts["h1"]
    response = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=HttpNtlmAuth(ep.username, ep.password),
                             timeout=10)
    assert response.status_code == 200
    assert b"<p:Name>DFSR</p:Name>" in response.content
    basic = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=(ep.username, ep.password), timeout=10)
    assert basic.status_code == 200  # Basic over HTTP needs AllowUnencrypted too


def test_basic_over_http_is_refused_by_default(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    response = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=(ep.username, ep.password), timeout=10)
    assert response.status_code == 401


def test_https_offers_basic_and_rejects_a_bad_password(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet(https=True).hosts["h1"]
    verify = str(ep.cert_path)
    response = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=(ep.username, "wrong"), verify=verify,
                             timeout=10)
    assert response.status_code == 401
    assert 'Basic realm="WSMAN"' in challenges(response)
    ok = requests.post(ep.url, data=ENVELOPE, headers=SOAP, auth=(ep.username.upper(), ep.password), verify=verify,
                       timeout=10)
    assert ok.status_code == 200  # account names are case-insensitive


def test_final_spnego_token_rides_on_the_200(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    client = spnego.client(ep.username, ep.password, hostname="127.0.0.1", service="http", protocol="negotiate")
    with requests.Session() as http:
        token = client.step()
        response = None
        while token is not None:
            response = http.post(ep.url, headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()},
                                 timeout=10)
            header = response.headers.get("WWW-Authenticate", "")
            token = client.step(base64.b64decode(header.split()[1])) if header.startswith("Negotiate ") else None
    assert response is not None and response.status_code == 200
    assert response.headers["WWW-Authenticate"].startswith("Negotiate ")
    assert client.complete  # the mechListMIC from the 200 was verified


def test_host_without_listener_refuses_connections(make_fleet: Callable[..., Any]) -> None:
    fleet = make_fleet([HostSpec("nt4", "nt4-tse-sp6-x86"), HostSpec("h1", "xp-sp2-x86")])
    ep = fleet.hosts["nt4"]
    assert ep.listener is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ep.address, ep.port), timeout=2)
    assert ep.counters()["requests"] == 0


def test_rebooting_host_resets_connections(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> None:
    fleet = make_fleet([HostSpec("h1", "2008-sp2-x64", {"reboot_seconds": 0.5})], https=True)
    ep = fleet.hosts["h1"]
    client = raw_client(ep)
    action = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
    assert client.send(action, uri, selectors={"Name": "WinRM"}).status == 200
    ep.run_control("reboot", delay_seconds=0)
    with pytest.raises(requests.ConnectionError):
        client.send(action, uri, selectors={"Name": "WinRM"})
    time.sleep(0.6)
    assert client.send(action, uri, selectors={"Name": "WinRM"}).status == 200
    assert fleet.machines["h1"].boot_id == 2
