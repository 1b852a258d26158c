"""pypsrp (a second independent client) against winsim: its WSMan enumerate/pull/get/invoke helpers and
Client.execute_cmd, over HTTP + Negotiate with message encryption and over HTTPS + Basic."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import WSManFaultError
from pypsrp.shell import Process, WinRS
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
SERVICE_URI = WMI + "root/cimv2/Win32_Service"
STDREGPROV = WMI + "root/default/StdRegProv"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
N = NAMESPACES


class Target(WSMan):
    """pypsrp's WSMan client plus the endpoint and machine it talks to."""

    endpoint: Any
    machine: Any


@pytest.fixture(params=["http-negotiate", "https-basic"])
def wsman(request: pytest.FixtureRequest, make_fleet: Callable[..., Any]) -> Iterator[Target]:
    https = request.param == "https-basic"
    fleet = make_fleet(https=https)
    ep = fleet.hosts["h1"]
    client = Target("127.0.0.1", port=ep.port, username=ep.username, password=ep.password, ssl=https,
                    auth="basic" if https else "negotiate", cert_validation=False, operation_timeout=5)
    client.endpoint = ep
    client.machine = fleet.machines["h1"]
    yield client
    client.close()


def service_names(machine: Any) -> list[str]:
    return [inst.properties["Name"] for inst in machine.wmi_enumerate("root/cimv2", "Win32_Service")]


def enumerate_element(optimize: bool, max_elements: int, wql: str | None = None) -> ET.Element:
    enum = ET.Element(f"{{{N['wsen']}}}Enumerate")
    if optimize:
        ET.SubElement(enum, f"{{{N['wsman']}}}OptimizeEnumeration")
        ET.SubElement(enum, f"{{{N['wsman']}}}MaxElements").text = str(max_elements)
    if wql:
        ET.SubElement(enum, f"{{{N['wsman']}}}Filter", Dialect=WQL).text = wql
    return enum


def pull_all(wsman: Any, uri: str, body: ET.Element) -> list[ET.Element]:
    """Enumerate, then Pull until EndOfSequence, one item per Pull: every item of the enumeration."""
    items: list[ET.Element] = []
    response = wsman.enumerate(uri, body).find("wsen:EnumerateResponse", N)
    items += list(response.find("wsman:Items", N) or [])
    done = response.find("wsman:EndOfSequence", N) is not None
    context = response.findtext("wsen:EnumerationContext", namespaces=N)
    while not done:
        pull = ET.Element(f"{{{N['wsen']}}}Pull")
        ET.SubElement(pull, f"{{{N['wsen']}}}EnumerationContext").text = context
        reply = wsman.pull(uri, pull).find("wsen:PullResponse", N)
        items += list(reply.find("wsen:Items", N))
        done = reply.find("wsen:EndOfSequence", N) is not None
        context = reply.findtext("wsen:EnumerationContext", namespaces=N)
    return items


def test_enumerate_and_pull_one_at_a_time(wsman: Any) -> None:
    items = pull_all(wsman, SERVICE_URI, enumerate_element(False, 0))
    expected = service_names(wsman.machine)
    assert len(expected) > 2
    assert [item.findtext(f"{{{SERVICE_URI}}}Name") for item in items] == expected
    assert wsman.endpoint.counters()["by_action"] == {"Enumerate": 1, "Pull": len(expected)}


def test_optimized_enumeration_with_wql(wsman: Any) -> None:
    wql = "SELECT Name, ProcessId FROM Win32_Service WHERE ProcessId <> 0 AND (Name LIKE 'lanman%' OR Name = 'WinRM')"
    items = pull_all(wsman, WMI + "root/cimv2/*", enumerate_element(True, 10, wql))
    expected = [(i.properties["Name"], str(i.properties["ProcessId"]))
                for i in wsman.machine.wmi_enumerate("root/cimv2", "Win32_Service")
                if i.properties["Name"] in ("LanmanServer", "LanmanWorkstation", "WinRM")]
    assert len(expected) == 3
    assert [(i.findtext("Name"), i.findtext("ProcessId")) for i in items] == expected
    assert wsman.endpoint.counters()["by_action"] == {"Enumerate": 1}


def test_get_with_selectors_and_fault_for_a_missing_instance(wsman: Any) -> None:
    selectors = SelectorSet()
    selectors.add_option("Name", "lanmanserver")
    body = wsman.get(SERVICE_URI, selector_set=selectors)
    assert body.findtext(f"{{{SERVICE_URI}}}Win32_Service/{{{SERVICE_URI}}}Name") == "LanmanServer"
    missing = SelectorSet()
    missing.add_option("Name", "NoSuchService")
    with pytest.raises(WSManFaultError) as caught:
        wsman.get(SERVICE_URI, selector_set=missing)
    assert caught.value.code == 2150858752
    assert caught.value.provider == "WMI Provider"


def test_invoke_stdregprov(wsman: Any) -> None:
    def call(method: str, **params: str | list[str]) -> ET.Element:
        body = ET.Element(f"{{{STDREGPROV}}}{method}_INPUT")
        for name, value in params.items():
            for item in value if isinstance(value, list) else [value]:
                ET.SubElement(body, f"{{{STDREGPROV}}}{name}").text = item
        reply: ET.Element = wsman.invoke(f"{STDREGPROV}/{method}", STDREGPROV, body)
        output = reply.find(f"s:Body/{{{STDREGPROV}}}{method}_OUTPUT", N)
        assert output is not None
        return output

    key = {"hDefKey": "2147483650", "sSubKeyName": "SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters",
           "sValueName": "ReconnectableServers"}
    assert call("GetMultiStringValue", **key).findtext(f"{{{STDREGPROV}}}ReturnValue") == "1"
    assert call("SetMultiStringValue", **key, sValue=["fs1", "fs1.example.com"]).findtext(
        f"{{{STDREGPROV}}}ReturnValue") == "0"
    output = call("GetMultiStringValue", **key)
    assert [e.text for e in output.findall(f"{{{STDREGPROV}}}sValue")] == ["fs1", "fs1.example.com"]
    stored = wsman.machine.registry.get("HKLM\\" + key["sSubKeyName"], "ReconnectableServers")
    assert stored.data == ["fs1", "fs1.example.com"]
    with pytest.raises(WSManFaultError) as caught:
        call("NoSuchMethod", **key)
    assert caught.value.code == 2150858771
    assert wsman.endpoint.counters()["by_action"]["Invoke:GetMultiStringValue"] == 2


def test_server_config_sets_the_payload_size(wsman: Any) -> None:
    wsman.update_max_payload_size()
    assert wsman.max_envelope_size == 150 * 1024


def test_execute_cmd(wsman: Any) -> None:
    ep = wsman.endpoint
    client = Client("127.0.0.1", port=ep.port, username=ep.username, password=ep.password,
                    ssl=ep.scheme == "https", auth="basic" if ep.scheme == "https" else "negotiate",
                    cert_validation=False)
    assert client.execute_cmd("echo from pypsrp") == ("from pypsrp\r\n", "", 0)
    assert ep.counters()["shells_open"] == 0


def test_stdin_through_pypsrp_winrs(wsman: Any) -> None:
    """pypsrp's WinRS sends stdin in its own envelope shape (one rsp:Stream per Send, End on the last): a
    script copying WScript.StdIn into a file gets all of it."""
    machine = wsman.machine
    machine.fs.write(r"C:\Windows\Temp\copy.vbs", b'Set fso = CreateObject("Scripting.FileSystemObject")\r\n'
                     b"Set out = fso.CreateTextFile(WScript.Arguments(0), True)\r\n"
                     b"out.Write WScript.StdIn.ReadAll\r\nout.Close\r\n")
    text = b"".join(b"line %d\r\n" % i for i in range(5000))
    with WinRS(wsman) as shell:
        process = Process(shell, "cscript", ["//nologo", r"C:\Windows\Temp\copy.vbs", r"C:\Windows\Temp\copy.txt"])
        process.begin_invoke()
        process.send(text[:20000], end=False)
        process.send(text[20000:], end=True)
        process.end_invoke()
    assert process.rc == 0
    assert machine.fs.read(r"C:\Windows\Temp\copy.txt") == text
    assert wsman.endpoint.counters()["by_action"]["Send"] == 2
