"""winsim's replies have the structure of Windows' replies (tests/winsim/fixtures, see its README).

Compared: element and attribute names by namespace URI (property names of WMI items are wildcards), the
prefix each namespace is written with, the Action, the MessageID format, RelatesTo and To. Never values.
"""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from winsim import soap

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
CIMV2 = WMI + "root/cimv2/"
STDREGPROV = WMI + "root/default/StdRegProv"
CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
UUID_UPPER = re.compile(r"^uuid:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
NS = {"s": soap.NS_SOAP, "a": soap.NS_ADDRESSING}


def structure(xml: bytes) -> set[tuple[str, ...]]:
    """Paths of elements (and their attribute names) by namespace URI; WMI item properties collapse to '*'."""
    paths: set[tuple[str, ...]] = set()

    def name(tag: str) -> str:
        uri, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        return f"{{WMI-CLASS}}{local}" if uri.startswith(WMI) else f"{{{uri}}}{local}"

    def walk(el: ET.Element, path: tuple[str, ...]) -> None:
        here = (*path, name(el.tag))
        paths.add(here)
        paths.update((*here, "@" + name(attr)) for attr in el.attrib)
        if el.tag.startswith("{" + WMI) and el.get(f"{{{soap.NS_XSI}}}type"):
            paths.add((*here, "*"))  # a typed instance: its properties depend on the data
            return
        for child in el:
            walk(child, here)

    walk(ET.fromstring(xml), ())
    return paths


def prefixes(xml: bytes) -> set[tuple[str, str]]:
    declared: set[tuple[str, str]] = set()
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(xml), events=("start-ns",)):
        declared.add((prefix, uri))
    return declared


def compare(fixture_name: str, reply: bytes, request_id: str) -> None:
    fixture = (FIXTURES / fixture_name).read_bytes()
    assert structure(reply) == structure(fixture)
    assert prefixes(fixture) <= prefixes(reply)
    ours, theirs = ET.fromstring(reply), ET.fromstring(fixture)
    assert ours.findtext("s:Header/a:Action", namespaces=NS) == theirs.findtext("s:Header/a:Action", namespaces=NS)
    assert UUID_UPPER.match(ours.findtext("s:Header/a:MessageID", namespaces=NS) or "")
    assert ours.findtext("s:Header/a:RelatesTo", namespaces=NS) == request_id
    assert ours.findtext("s:Header/a:To", namespaces=NS) == theirs.findtext("s:Header/a:To", namespaces=NS)


def receive_body(command_id: str) -> str:
    return f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive>'


def enumerate_body(optimize: bool, wql: str | None = None) -> str:
    parts = ["<wsen:Enumerate>"]
    if optimize:
        parts.append("<wsman:OptimizeEnumeration/><wsman:MaxElements>50</wsman:MaxElements>")
    if wql:
        parts.append(f'<wsman:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{wql}</wsman:Filter>')
    parts.append("</wsen:Enumerate>")
    return "".join(parts)


@pytest.fixture
def client(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> Any:
    fleet = make_fleet(https=True)
    return raw_client(fleet.hosts["h1"])


def registry_call(client: Any, method: str, **params: str) -> Any:
    inner = "".join(f"<p:{k}>{v}</p:{k}>" for k, v in params.items())
    body = f'<p:{method}_INPUT xmlns:p="{STDREGPROV}">{inner}</p:{method}_INPUT>'
    return client.send(f"{STDREGPROV}/{method}", STDREGPROV, body)


def test_enumerate_optimized(client: Any) -> None:
    reply = client.send(ENUMERATE, CIMV2 + "Win32_Service", enumerate_body(True))
    assert reply.status == 200
    compare("enumerate_optimized.xml", reply.content, reply.message_id)


def test_enumerate_then_pull(client: Any) -> None:
    reply = client.send(ENUMERATE, CIMV2 + "Win32_Service", enumerate_body(False))
    compare("enumerate_context.xml", reply.content, reply.message_id)
    context = ET.fromstring(reply.content).findtext(f".//{{{soap.NS_ENUMERATION}}}EnumerationContext")
    pull = (f"<wsen:Pull><wsen:EnumerationContext>{context}</wsen:EnumerationContext>"
            "<wsen:MaxElements>100</wsen:MaxElements></wsen:Pull>")
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", CIMV2 + "Win32_Service", pull)
    assert reply.status == 200
    compare("pull_last.xml", reply.content, reply.message_id)


def test_wql_selected_properties(client: Any) -> None:
    body = enumerate_body(True, "SELECT Name, State FROM Win32_Service WHERE State = 'Running'")
    reply = client.send(ENUMERATE, CIMV2 + "*", body)
    compare("enumerate_wql_fragment.xml", reply.content, reply.message_id)


def test_wql_selected_datetime(client: Any) -> None:
    body = enumerate_body(True, "SELECT LastBootUpTime FROM Win32_OperatingSystem")
    reply = client.send(ENUMERATE, CIMV2 + "*", body)
    compare("enumerate_wql_fragment_datetime.xml", reply.content, reply.message_id)


def test_wql_class_not_found(client: Any) -> None:
    reply = client.send(ENUMERATE, CIMV2 + "*", enumerate_body(True, "SELECT Name FROM Win32_NoSuchClass"))
    assert reply.status == 500
    compare("fault_wql_class_not_found.xml", reply.content, reply.message_id)


def test_quota_as_a_wmi_error(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> None:
    ep = make_fleet(https=True).hosts["h1"]
    ep.set_faults(quota_wmi_fault=1)
    reply = raw_client(ep).send(ENUMERATE, CIMV2 + "Win32_Service", enumerate_body(True))
    assert reply.status == 500
    compare("fault_quota_wmi_error.xml", reply.content, reply.message_id)


def test_get(client: Any) -> None:
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", CIMV2 + "Win32_Service",
                        selectors={"Name": "LanmanServer"})
    compare("get_instance.xml", reply.content, reply.message_id)


def test_invoke(client: Any) -> None:
    key = {"hDefKey": "2147483650", "sSubKeyName": "SOFTWARE\\winsim"}
    assert registry_call(client, "CreateKey", **key).status == 200
    assert registry_call(client, "SetDWORDValue", **key, sValueName="V", uValue="64").status == 200
    reply = registry_call(client, "GetDWORDValue", **key, sValueName="V")
    compare("invoke_output.xml", reply.content, reply.message_id)
    assert ET.fromstring(reply.content).findtext(f".//{{{STDREGPROV}}}uValue") == "64"


def test_wmi_fault(client: Any) -> None:
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", CIMV2 + "Win32_Service",
                        selectors={"Name": "NoSuchService"})
    assert reply.status == 500
    compare("fault_wmi_not_found.xml", reply.content, reply.message_id)


def test_shell_lifecycle(client: Any) -> None:
    create = ("<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>"
              "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>")
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", CMD, create,
                        options={"WINRS_NOPROFILE": "FALSE", "WINRS_CODEPAGE": "437"})
    compare("shell_created.xml", reply.content, reply.message_id)
    shell_id = ET.fromstring(reply.content).findtext(f".//{{{soap.NS_WSMAN}}}Selector")
    assert shell_id
    command = "<rsp:CommandLine><rsp:Command>echo</rsp:Command><rsp:Arguments>hello</rsp:Arguments></rsp:CommandLine>"
    reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": shell_id})
    compare("command_response.xml", reply.content, reply.message_id)
    command_id = ET.fromstring(reply.content).findtext(f".//{{{SHELL}}}CommandId")
    receive = receive_body(command_id or "")
    reply = client.send(SHELL + "/Receive", CMD, receive, selectors={"ShellId": shell_id})
    compare("receive_done.xml", reply.content, reply.message_id)
    stdout = ET.fromstring(reply.content).find(f".//{{{SHELL}}}Stream[@Name='stdout']")
    assert stdout is not None
    assert base64.b64decode(stdout.text or "") == b"hello\r\n"


def test_receive_timeout_fault(client: Any) -> None:
    create = "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>"
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", CMD, create)
    shell_id = ET.fromstring(reply.content).findtext(f".//{{{soap.NS_WSMAN}}}Selector")
    # set /p waits for a line of stdin that never comes: no output, no exit.
    command = "<rsp:CommandLine><rsp:Command>set</rsp:Command><rsp:Arguments>/p X=</rsp:Arguments></rsp:CommandLine>"
    reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": shell_id})
    command_id = ET.fromstring(reply.content).findtext(f".//{{{SHELL}}}CommandId")
    receive = receive_body(command_id or "")
    reply = client.send(SHELL + "/Receive", CMD, receive, selectors={"ShellId": shell_id}, timeout="PT0.3S")
    assert reply.status == 500
    compare("fault_timeout.xml", reply.content, reply.message_id)


def test_the_comparison_notices_differences() -> None:
    fixture = (FIXTURES / "enumerate_optimized.xml").read_bytes()
    request_id = "uuid:REQUEST-MESSAGE-ID"
    message_id = b"uuid:6E2A8D0F-3B1C-4F6A-9C2D-0A1B2C3D4E5F"
    compare("enumerate_optimized.xml", fixture, request_id)
    variants = [
        fixture.replace(b"xmlns:a=", b"xmlns:wsa=").replace(b"<a:", b"<wsa:").replace(b"</a:", b"</wsa:"),
        fixture.replace(b"<w:EndOfSequence/>", b""),
        fixture.replace(message_id, message_id.lower()),
        fixture.replace(b"EnumerateResponse</a:Action>", b"PullResponse</a:Action>"),
        fixture.replace(b'xsi:type="p:Win32_Service_Type"', b""),
    ]
    for variant in variants:
        with pytest.raises(AssertionError):
            compare("enumerate_optimized.xml", variant, request_id)
