"""Service behaviour on real simulated machines: WMI errors from the machine, shells, Identify, config."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import requests

from winsim import soap
from winsim.testing import HostSpec

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"


@pytest.fixture
def target(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> tuple[Any, Any]:
    fleet = make_fleet(https=True)
    return fleet.hosts["h1"], raw_client(fleet.hosts["h1"])


def code_of(reply: Any) -> int | None:
    detail = ET.fromstring(reply.content).find(f".//{{{soap.NS_WSMANFAULT}}}WSManFault")
    return None if detail is None else int(detail.get("Code", "0"))


def test_filtered_data_file_query_and_the_refused_full_walk(target: tuple[Any, Any]) -> None:
    _, client = target
    # An unfiltered CIM_DataFile enumeration walks every disk; the machine refuses it (WmiError invalid_parameter).
    reply = client.send(ENUMERATE, WMI + "root/cimv2/CIM_DataFile", "<wsen:Enumerate/>")
    assert (reply.status, code_of(reply)) == (500, 2150858810)
    assert b"ProviderFault" in reply.content
    wql = r"SELECT Name, Version FROM CIM_DataFile WHERE Name = 'c:\\windows\\system32\\drivers\\srv2.sys'"
    body = (f'<wsen:Enumerate><wsman:OptimizeEnumeration/><wsman:MaxElements>5</wsman:MaxElements>'
            f'<wsman:Filter Dialect="{WQL}">{wql}</wsman:Filter></wsen:Enumerate>')
    reply = client.send(ENUMERATE, WMI + "root/cimv2/*", body)
    assert reply.status == 200
    names = [el.text for el in ET.fromstring(reply.content).iter("Name")]
    assert names == ["c:\\windows\\system32\\drivers\\srv2.sys"]


def shell(client: Any, idle: str | None = None) -> str:
    extra = f"<rsp:IdleTimeOut>{idle}</rsp:IdleTimeOut>" if idle else ""
    reply = client.send(CREATE, CMD, f"<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>{extra}</rsp:Shell>")
    assert reply.status == 200
    return ET.fromstring(reply.content).findtext(f".//{{{soap.NS_WSMAN}}}Selector") or ""


def test_idle_shells_expire(target: tuple[Any, Any]) -> None:
    ep, client = target
    idle = shell(client, "PT0.2S")
    time.sleep(0.3)
    shell(client)
    assert ep.counters()["shells_open"] == 1
    reply = client.send(SHELL + "/Command", CMD, "<rsp:CommandLine><rsp:Command>ver</rsp:Command></rsp:CommandLine>",
                        selectors={"ShellId": idle})
    assert code_of(reply) == 2150858843


def test_unknown_command_id_and_signal_codes(target: tuple[Any, Any]) -> None:
    _, client = target
    shell_id = shell(client)
    receive = '<rsp:Receive><rsp:DesiredStream CommandId="NOPE">stdout</rsp:DesiredStream></rsp:Receive>'
    reply = client.send(SHELL + "/Receive", CMD, receive, selectors={"ShellId": shell_id})
    assert code_of(reply) == 2150859085
    command = ("<rsp:CommandLine><rsp:Command>set</rsp:Command><rsp:Arguments>/p X=</rsp:Arguments>"
               "</rsp:CommandLine>")
    reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": shell_id})
    command_id = ET.fromstring(reply.content).findtext(f".//{{{SHELL}}}CommandId")
    bad = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>urn:nonsense</rsp:Code></rsp:Signal>'
    assert code_of(client.send(SHELL + "/Signal", CMD, bad, selectors={"ShellId": shell_id})) == 2150858817
    signal = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>{SHELL}/signal/ctrl_c</rsp:Code></rsp:Signal>'
    assert client.send(SHELL + "/Signal", CMD, signal, selectors={"ShellId": shell_id}).status == 200
    receive = f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout</rsp:DesiredStream></rsp:Receive>'
    reply = client.send(SHELL + "/Receive", CMD, receive, selectors={"ShellId": shell_id})
    assert code_of(reply) == 2150859085  # a signalled command is gone


def test_identify(target: tuple[Any, Any]) -> None:
    ep, _ = target
    body = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>")
    reply = requests.post(ep.url, data=body, auth=(ep.username, ep.password), verify=str(ep.cert_path), timeout=10,
                          headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
    assert reply.status_code == 200
    version = ET.fromstring(reply.content).findtext(f".//{{{soap.NS_IDENTITY}}}ProductVersion")
    assert version == "OS: 6.0.6002 SP: 2.0 Stack: 2.0"
    assert ep.counters()["by_action"] == {"Identify": 1}


def test_config_reflects_the_version(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> None:
    fleet = make_fleet([HostSpec("h1", "2008r2-rtm-x64", {"winrm_version": "3.0"})], https=True)
    reply = raw_client(fleet.hosts["h1"]).send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
                                               "http://schemas.microsoft.com/wbem/wsman/1/config")
    config = ET.fromstring(reply.content).find(f".//{{{soap.NS_CONFIG}}}Config")
    assert config is not None
    values = {soap.local_name(el.tag): el.text for el in config.iter()}
    assert (values["MaxEnvelopeSizekb"], values["MaxConcurrentOperationsPerUser"], values["MaxShellsPerUser"]) == (
        "500", "1500", "30")
