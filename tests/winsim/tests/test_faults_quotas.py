"""Service limits by WinRM version, with Windows' fault codes: operations, shells, envelope sizes, filters."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from winsim import soap
from winsim.server import ENVELOPE_OVERHEAD
from winsim.testing import HostSpec

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
SERVICE_URI = WMI + "root/cimv2/Win32_Service"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
RELEASE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
SHELL_BODY = "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>"


def client_for(make_fleet: Callable[..., Any], raw_client: Callable[..., Any], version: str) -> tuple[Any, Any]:
    ep = make_fleet([HostSpec("h1", "2008-sp2-x64", {"winrm_version": version})], https=True).hosts["h1"]
    return ep, raw_client(ep)


def code_of(reply: Any) -> int | None:
    detail = ET.fromstring(reply.content).find(f".//{{{soap.NS_WSMANFAULT}}}WSManFault")
    return None if detail is None else int(detail.get("Code", "0"))


def open_context(client: Any) -> str:
    reply = client.send(ENUMERATE, SERVICE_URI, "<wsen:Enumerate/>")
    assert reply.status == 200
    return ET.fromstring(reply.content).findtext(f".//{{{soap.NS_ENUMERATION}}}EnumerationContext") or ""


def test_winrm2_allows_15_operations_per_user(make_fleet: Callable[..., Any],
                                              raw_client: Callable[..., Any]) -> None:
    # Enumerations left open count against MaxConcurrentOperationsPerUser, as they do on Windows.
    _, client = client_for(make_fleet, raw_client, "2.0")
    contexts = [open_context(client) for _ in range(15)]
    reply = client.send(ENUMERATE, SERVICE_URI, "<wsen:Enumerate/>")
    assert (reply.status, code_of(reply)) == (500, 2150859174)
    assert b"maximum number of 15 concurrent operations" in reply.content
    release = client.send(RELEASE, SERVICE_URI,
                          f"<wsen:Release><wsen:EnumerationContext>{contexts[0]}</wsen:EnumerationContext></wsen:Release>")
    assert release.status == 200
    assert open_context(client)
    pull = f"<wsen:Pull><wsen:EnumerationContext>{contexts[0]}</wsen:EnumerationContext></wsen:Pull>"
    reply = client.send(PULL, SERVICE_URI, pull)
    assert (reply.status, code_of(reply)) == (500, 2150858779)  # released context is gone


def test_operations_in_progress_count_too(make_fleet: Callable[..., Any],
                                          raw_client: Callable[..., Any]) -> None:
    ep, client = client_for(make_fleet, raw_client, "2.0")
    shells = []
    for _ in range(5):
        reply = client.send(CREATE, CMD, SHELL_BODY)
        shells.append(ET.fromstring(reply.content).findtext(f".//{{{soap.NS_WSMAN}}}Selector"))
    commands = []
    for index in range(15):
        command = ("<rsp:CommandLine><rsp:Command>set</rsp:Command><rsp:Arguments>/p X=</rsp:Arguments>"
                   "</rsp:CommandLine>")
        shell_id = shells[index % 5]
        reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": shell_id})
        commands.append((shell_id, ET.fromstring(reply.content).findtext(f".//{{{SHELL}}}CommandId")))
    results: list[int] = []

    def receive(shell_id: str, command_id: str) -> None:
        body = f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout</rsp:DesiredStream></rsp:Receive>'
        results.append(raw_client(ep).send(SHELL + "/Receive", CMD, body, selectors={"ShellId": shell_id},
                                           timeout="PT1.5S").status)

    threads = [threading.Thread(target=receive, args=command) for command in commands]
    for thread in threads:
        thread.start()
    deadline_probe = None
    for _ in range(50):  # wait until the 15 long-polls are in progress
        reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", SERVICE_URI,
                            selectors={"Name": "WinRM"})
        if reply.status == 500:
            deadline_probe = code_of(reply)
            break
        threading.Event().wait(0.02)
    for thread in threads:
        thread.join()
    assert deadline_probe == 2150859174
    assert sorted(set(results)) == [500]  # each long-poll ended in the OperationTimeout fault


@pytest.mark.parametrize(("version", "shells"), [("2.0", 5), ("3.0", 30), ("1.1", 5)])
def test_shell_quota(make_fleet: Callable[..., Any], raw_client: Callable[..., Any],
                     version: str, shells: int) -> None:
    ep, client = client_for(make_fleet, raw_client, version)
    for _ in range(shells):
        assert client.send(CREATE, CMD, SHELL_BODY).status == 200
    reply = client.send(CREATE, CMD, SHELL_BODY)
    assert (reply.status, code_of(reply)) == (500, 2150859173)
    assert ep.counters()["shells_open"] == shells


def test_deleted_shell_frees_the_quota_and_is_gone(make_fleet: Callable[..., Any],
                                                   raw_client: Callable[..., Any]) -> None:
    _, client = client_for(make_fleet, raw_client, "2.0")
    ids = [ET.fromstring(client.send(CREATE, CMD, SHELL_BODY).content).findtext(f".//{{{soap.NS_WSMAN}}}Selector")
           for _ in range(5)]
    delete = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete", CMD, selectors={"ShellId": ids[0]})
    assert delete.status == 200
    assert client.send(CREATE, CMD, SHELL_BODY).status == 200
    command = "<rsp:CommandLine><rsp:Command>echo</rsp:Command></rsp:CommandLine>"
    reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": ids[0]})
    assert (reply.status, code_of(reply)) == (500, 2150858843)
    assert str(ids[0]).encode() in reply.content


@pytest.mark.parametrize(("version", "limit_kb"), [("2.0", 150), ("3.0", 500)])
def test_max_envelope_size(make_fleet: Callable[..., Any],
                           raw_client: Callable[..., Any], version: str, limit_kb: int) -> None:
    _, client = client_for(make_fleet, raw_client, version)
    reply = client.send(CREATE, CMD, SHELL_BODY)
    shell_id = ET.fromstring(reply.content).findtext(f".//{{{soap.NS_WSMAN}}}Selector")
    command = "<rsp:CommandLine><rsp:Command>cmd</rsp:Command></rsp:CommandLine>"
    reply = client.send(SHELL + "/Command", CMD, command, selectors={"ShellId": shell_id})
    command_id = ET.fromstring(reply.content).findtext(f".//{{{SHELL}}}CommandId")

    def send(size: int) -> Any:
        body = (f'<rsp:Send><rsp:Stream Name="stdin" CommandId="{command_id}">{"A" * size}</rsp:Stream>'
                "</rsp:Send>")
        return client.send(SHELL + "/Send", CMD, body, selectors={"ShellId": shell_id})

    assert send(limit_kb * 1024 - 4000).status == 200
    too_big = send(limit_kb * 1024)
    assert (too_big.status, too_big.content) == (413, b"")  # HTTP.sys refuses it; clients report 2150859025


def test_reply_fits_the_clients_max_envelope_size(make_fleet: Callable[..., Any],
                                                  raw_client: Callable[..., Any]) -> None:
    _, client = client_for(make_fleet, raw_client, "2.0")
    body = "<wsen:Enumerate><wsman:OptimizeEnumeration/><wsman:MaxElements>100</wsman:MaxElements></wsen:Enumerate>"
    full = client.send(ENUMERATE, SERVICE_URI, body)
    count = full.content.count(b"<p:Win32_Service ")
    assert count > 2 and b"EndOfSequence" in full.content
    item_size = len(full.content) // count
    small = client.send(ENUMERATE, SERVICE_URI, body, max_envelope=ENVELOPE_OVERHEAD + item_size + 100)
    assert small.status == 200
    assert small.content.count(b"<p:Win32_Service ") == 1
    assert b"EndOfSequence" not in small.content
    tiny = client.send(ENUMERATE, SERVICE_URI, body, max_envelope=ENVELOPE_OVERHEAD + 100)
    assert (tiny.status, code_of(tiny)) == (500, 2150858824)  # not even one item fits


def test_winrm_1_0_rejects_filters(make_fleet: Callable[..., Any],
                                   raw_client: Callable[..., Any]) -> None:
    _, client = client_for(make_fleet, raw_client, "1.0")
    wql = ('<wsen:Enumerate><wsman:OptimizeEnumeration/><wsman:Filter '
           'Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM Win32_Service</wsman:Filter>'
           "</wsen:Enumerate>")
    reply = client.send(ENUMERATE, WMI + "root/cimv2/*", wql)
    assert (reply.status, code_of(reply)) == (500, 2150858778)
    plain = "<wsen:Enumerate><wsman:OptimizeEnumeration/><wsman:MaxElements>99</wsman:MaxElements></wsen:Enumerate>"
    assert client.send(ENUMERATE, SERVICE_URI, plain).content.count(b"<p:Win32_Service ") > 2


@pytest.mark.parametrize(("wql", "code"), [
    ("SELECT * FROM Win32_Service WHERE PathName = 'C:\\Windows'", 2150858778),  # lone backslash
    ("SELECT * FORM Win32_Service", 2150858778),
    ("SELECT * FROM Win32_Service WHERE NoSuchProperty = 1", 2150858778),
    ("SELECT * FROM Win32_NoSuchClass", 2150858778),  # as 2008 R2 answers it: a filter it cannot process
])
def test_bad_wql(make_fleet: Callable[..., Any], raw_client: Callable[..., Any],
                 wql: str, code: int) -> None:
    _, client = client_for(make_fleet, raw_client, "2.0")
    body = (f'<wsen:Enumerate><wsman:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{wql}'
            "</wsman:Filter></wsen:Enumerate>")
    reply = client.send(ENUMERATE, WMI + "root/cimv2/*", body)
    assert (reply.status, code_of(reply)) == (500, code)


def test_unknown_actions_and_dialects(make_fleet: Callable[..., Any],
                                      raw_client: Callable[..., Any]) -> None:
    _, client = client_for(make_fleet, raw_client, "2.0")
    reply = client.send("http://schemas.xmlsoap.org/ws/2004/09/transfer/Put", SERVICE_URI, "<x/>")
    assert code_of(reply) == 2150858771
    body = '<wsen:Enumerate><wsman:Filter Dialect="urn:nope">x</wsman:Filter></wsen:Enumerate>'
    assert code_of(client.send(ENUMERATE, SERVICE_URI, body)) == 2150858777
    reply = client.send(ENUMERATE, "http://schemas.microsoft.com/wbem/wsman/1/nothing", "<wsen:Enumerate/>")
    assert code_of(reply) == 2150858752
