# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Envelopes we send, read back with a plain XML parser by namespace URI (as a WinRM service does)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wsman

S = "{http://www.w3.org/2003/05/soap-envelope}"
A = "{http://schemas.xmlsoap.org/ws/2004/08/addressing}"
N = "{http://schemas.xmlsoap.org/ws/2004/09/enumeration}"
W = "{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}"
RSP = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
TO = "http://xp1.example:5985/wsman"
MID = "uuid:11111111-2222-4333-8444-555555555555"


def envelope(req: wsman.Request) -> tuple[ET.Element, ET.Element, ET.Element]:
    root = ET.fromstring(req.to_xml(TO, MID, operation_timeout=20))
    assert root.tag == S + "Envelope"
    header, body = root.find(S + "Header"), root.find(S + "Body")
    assert header is not None and body is not None
    return root, header, body


def text(el: ET.Element | None) -> str:
    assert el is not None
    return el.text or ""


def test_header_of_every_request() -> None:
    req = wsman.get_request(wsman.wmi_resource("root/cimv2", "CIM_DataFile"), {"Name": r"c:\boot.ini"})
    _, header, body = envelope(req)
    assert text(header.find(A + "To")) == TO
    assert text(header.find(A + "Action")) == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    assert text(header.find(W + "ResourceURI")) == \
        "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/CIM_DataFile"
    assert text(header.find(A + "MessageID")) == MID
    assert text(header.find(f"{A}ReplyTo/{A}Address")) == wsman.ANONYMOUS
    assert text(header.find(W + "MaxEnvelopeSize")) == "153600"
    assert text(header.find(W + "OperationTimeout")) == "PT20.000S"
    assert header.find(A + "Action").get(S + "mustUnderstand") == "true"  # type: ignore[union-attr]
    [selector] = header.findall(f"{W}SelectorSet/{W}Selector")
    assert selector.get("Name") == "Name" and selector.text == r"c:\boot.ini"
    assert len(body) == 0


def test_enumerate_with_wql() -> None:
    wql = "SELECT Name FROM CIM_DataFile WHERE Name='c:\\\\x' OR Name='a&b<c>'"
    req = wsman.enumerate_request(wsman.wmi_resource("root/cimv2", "*"), wql, max_elements=7)
    assert req.name == "Enumerate"
    _, header, body = envelope(req)
    assert text(header.find(W + "ResourceURI")).endswith("/wmi/root/cimv2/*")
    enum = body.find(N + "Enumerate")
    assert enum is not None
    assert enum.find(W + "OptimizeEnumeration") is not None
    assert text(enum.find(W + "MaxElements")) == "7"
    flt = enum.find(W + "Filter")
    assert flt is not None and flt.get("Dialect") == wsman.WQL_DIALECT
    assert flt.text == wql  # XML escaping of & < > survives the round trip


def test_enumerate_without_filter_or_optimization() -> None:
    req = wsman.enumerate_request(wsman.wmi_resource("root/cimv2", "Win32_OperatingSystem"), optimize=False)
    _, _, body = envelope(req)
    enum = body.find(N + "Enumerate")
    assert enum is not None and len(enum) == 0


def test_pull_and_release() -> None:
    uri = wsman.wmi_resource("root/cimv2", "*")
    _, header, body = envelope(wsman.pull_request(uri, "uuid:CTX", 3))
    assert text(header.find(A + "Action")) == wsman.ACTION_PULL
    assert text(body.find(f"{N}Pull/{N}EnumerationContext")) == "uuid:CTX"
    assert text(body.find(f"{N}Pull/{N}MaxElements")) == "3"
    _, header, body = envelope(wsman.release_request(uri, "uuid:CTX"))
    assert text(header.find(A + "Action")) == wsman.ACTION_RELEASE
    assert text(body.find(f"{N}Release/{N}EnumerationContext")) == "uuid:CTX"


def test_invoke_stdregprov_body_in_resource_namespace() -> None:
    uri = wsman.wmi_resource("root/default", "StdRegProv")
    req = wsman.invoke_request(uri, "SetMultiStringValue", {
        "hDefKey": 2147483650, "sSubKeyName": r"SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters",
        "sValueName": "ReconnectableServers", "sValue": ["fs1", "fs1.example.com"],
    })
    assert req.name == "Invoke:SetMultiStringValue"
    _, header, body = envelope(req)
    assert text(header.find(A + "Action")) == uri + "/SetMultiStringValue"
    p = "{" + uri + "}"
    inp = body.find(p + "SetMultiStringValue_INPUT")
    assert inp is not None
    assert [c.tag for c in inp] == [p + "hDefKey", p + "sSubKeyName", p + "sValueName", p + "sValue", p + "sValue"]
    assert text(inp.find(p + "hDefKey")) == "2147483650"
    assert [c.text for c in inp.findall(p + "sValue")] == ["fs1", "fs1.example.com"]


def test_invoke_binary_nil_and_bool_params() -> None:
    uri = wsman.wmi_resource("root/default", "StdRegProv")
    req = wsman.invoke_request(uri, "SetBinaryValue", {"uValue": b"\x00\xff\x10", "sValueName": None, "b": True})
    _, _, body = envelope(req)
    p = "{" + uri + "}"
    inp = body.find(p + "SetBinaryValue_INPUT")
    assert inp is not None
    assert [c.text for c in inp.findall(p + "uValue")] == ["0", "255", "16"]
    assert inp.find(p + "sValueName").get(XSI + "nil") == "true"  # type: ignore[union-attr]
    assert text(inp.find(p + "b")) == "true"


def test_invoke_rejects_bad_method_name() -> None:
    with pytest.raises(ValueError):
        wsman.invoke_request("x", "Get<script>")


def test_shell_create_command_receive_signal_delete() -> None:
    _, header, body = envelope(wsman.shell_create_request(codepage=437, working_directory=r"C:\Temp",
                                                          environment={"A": "1"}))
    assert text(header.find(W + "ResourceURI")) == wsman.SHELL_CMD
    assert text(header.find(A + "Action")) == wsman.ACTION_CREATE
    options = {o.get("Name"): o.text for o in header.findall(f"{W}OptionSet/{W}Option")}
    assert options == {"WINRS_NOPROFILE": "FALSE", "WINRS_CODEPAGE": "437"}
    shell = body.find(RSP + "Shell")
    assert shell is not None
    assert text(shell.find(RSP + "InputStreams")) == "stdin"
    assert text(shell.find(RSP + "OutputStreams")) == "stdout stderr"
    assert text(shell.find(RSP + "WorkingDirectory")) == r"C:\Temp"
    assert shell.find(f"{RSP}Environment/{RSP}Variable").get("Name") == "A"  # type: ignore[union-attr]

    _, header, body = envelope(wsman.shell_command_request("SID", 'echo "a & b"'))
    assert text(header.find(f"{W}SelectorSet/{W}Selector")) == "SID"
    assert text(body.find(f"{RSP}CommandLine/{RSP}Command")) == 'echo "a & b"'

    _, header, body = envelope(wsman.shell_send_request("SID", "CID", b"data\r\n", end=True))
    stream = body.find(f"{RSP}Send/{RSP}Stream")
    assert stream is not None and stream.get("End") == "true" and stream.get("CommandId") == "CID"
    assert base64.b64decode(text(stream)) == b"data\r\n"

    _, header, body = envelope(wsman.shell_receive_request("SID", "CID"))
    desired = body.find(f"{RSP}Receive/{RSP}DesiredStream")
    assert desired is not None and desired.get("CommandId") == "CID" and desired.text == "stdout stderr"
    assert {o.get("Name") for o in header.findall(f"{W}OptionSet/{W}Option")} == {"WSMAN_CMDSHELL_OPTION_KEEPALIVE"}

    _, _, body = envelope(wsman.shell_signal_request("SID", "CID"))
    signal = body.find(RSP + "Signal")
    assert signal is not None and signal.get("CommandId") == "CID"
    assert text(signal.find(RSP + "Code")) == wsman.SIGNAL_TERMINATE

    _, header, body = envelope(wsman.shell_delete_request("SID"))
    assert text(header.find(A + "Action")) == wsman.ACTION_DELETE and len(body) == 0


def test_message_ids_are_unique_uppercase_uuids() -> None:
    ids = {wsman.new_message_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("uuid:") and i[5:] == i[5:].upper() for i in ids)
