"""Envelope parsing (by namespace URI, hardened) and Windows-shaped replies."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from winsim import faults, soap

NS = {"s": soap.NS_SOAP, "a": soap.NS_ADDRESSING, "w": soap.NS_WSMAN, "n": soap.NS_ENUMERATION,
      "f": soap.NS_WSMANFAULT, "xsi": soap.NS_XSI, "cim": soap.NS_CIM}
UUID_UPPER = re.compile(r"^uuid:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def request(prefixes: dict[str, str], body: str = "") -> bytes:
    """The same request written with arbitrary prefixes, as different clients do."""
    s, a, w = prefixes["s"], prefixes["a"], prefixes["w"]
    return f"""<{s}:Envelope xmlns:{s}="{soap.NS_SOAP}" xmlns:{a}="{soap.NS_ADDRESSING}" xmlns:{w}="{soap.NS_WSMAN}">
      <{s}:Header>
        <{a}:Action {s}:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</{a}:Action>
        <{a}:MessageID>uuid:0a1b2c3d-0000-0000-0000-000000000001</{a}:MessageID>
        <{a}:To>http://127.0.0.1:5985/wsman</{a}:To>
        <{w}:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</{w}:ResourceURI>
        <{w}:SelectorSet><{w}:Selector Name="Name">Spooler</{w}:Selector></{w}:SelectorSet>
        <{w}:OptionSet><{w}:Option Name="WINRS_CODEPAGE">437</{w}:Option></{w}:OptionSet>
        <{w}:OperationTimeout>PT20.500S</{w}:OperationTimeout>
        <{w}:MaxEnvelopeSize {s}:mustUnderstand="true">153600</{w}:MaxEnvelopeSize>
      </{s}:Header>
      <{s}:Body>{body}</{s}:Body>
    </{s}:Envelope>""".encode()


@pytest.mark.parametrize("prefixes", [
    {"s": "s", "a": "a", "w": "w"},
    {"s": "env", "a": "wsa", "w": "wsman"},  # pywinrm / pypsrp spellings
    {"s": "a", "a": "s", "w": "p"},  # prefixes swapped: only the URIs count
])
def test_requests_are_parsed_by_namespace_uri(prefixes: dict[str, str]) -> None:
    req = soap.parse_request(request(prefixes))
    assert req.action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    assert req.message_id == "uuid:0a1b2c3d-0000-0000-0000-000000000001"
    assert req.resource_uri.endswith("/Win32_Service")
    assert req.selectors == {"Name": "Spooler"}
    assert req.options == {"WINRS_CODEPAGE": "437"}
    assert req.operation_timeout == pytest.approx(20.5)
    assert req.max_envelope_size == 153600


def test_elements_in_the_wrong_namespace_are_not_headers() -> None:
    data = request({"s": "s", "a": "a", "w": "w"}).replace(soap.NS_ADDRESSING.encode(), b"urn:other")
    with pytest.raises(faults.WsmanFault) as caught:
        soap.parse_request(data)
    assert caught.value.code == faults.MESSAGE_INFORMATION_HEADER_REQUIRED


@pytest.mark.parametrize("data", [
    b"<not xml",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
    b"<x/>",
    f'<s:Envelope xmlns:s="{soap.NS_SOAP}"><s:Header/></s:Envelope>'.encode(),
])
def test_hostile_or_broken_xml_is_a_schema_fault(data: bytes) -> None:
    with pytest.raises(faults.WsmanFault) as caught:
        soap.parse_request(data)
    assert caught.value.code == faults.SCHEMA_VALIDATION


@pytest.mark.parametrize(("text", "seconds"), [("PT20S", 20), ("PT60.000S", 60), ("PT1M30S", 90), ("P1DT1H", 90000)])
def test_durations(text: str, seconds: float) -> None:
    assert soap.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20", "PT", "P", "PTS", "-PT1S"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(faults.WsmanFault):
        soap.parse_duration(text)


def test_method_input_keeps_text_repeats_and_nil() -> None:
    uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/StdRegProv"
    body = ET.fromstring(
        f'<p:SetMultiStringValue_INPUT xmlns:p="{uri}" xmlns:xsi="{soap.NS_XSI}" xmlns:cim="{soap.NS_CIM}">'
        "<p:hDefKey>2147483650</p:hDefKey><p:sValue>a</p:sValue><p:sValue>b</p:sValue>"
        '<p:sValueName xsi:nil="true"/><p:When><cim:Datetime>2010-01-01T00:00:00Z</cim:Datetime></p:When>'
        "</p:SetMultiStringValue_INPUT>")
    assert soap.parse_method_input(body) == {"hDefKey": "2147483650", "sValue": ["a", "b"], "sValueName": None,
                                             "When": "2010-01-01T00:00:00Z"}


def test_typed_instance_as_windows_writes_it() -> None:
    uri = soap.class_resource_uri("root/cimv2", "Win32_OperatingSystem")
    when = dt.datetime(2010, 11, 3, 9, 9, 40, 375500, tzinfo=dt.UTC)
    xml = soap.instance_element("Win32_OperatingSystem", uri, {
        "Version": "6.0.6002", "LastBootUpTime": when, "MUILanguages": ["en-US", "de-DE"], "Other": None,
        "Primary": True, "BuildNumber": 6002}, {"LastBootUpTime": "datetime"}).to_xml()
    root = ET.fromstring(xml)
    assert root.tag == f"{{{uri}}}Win32_OperatingSystem"
    assert root.get(f"{{{soap.NS_XSI}}}type") == "p:Win32_OperatingSystem_Type"
    assert xml.startswith(f'<p:Win32_OperatingSystem xmlns:p="{uri}"')
    assert [soap.local_name(c.tag) for c in root] == [  # WMI's case-insensitive alphabetical order
        "BuildNumber", "LastBootUpTime", "MUILanguages", "MUILanguages", "Other", "Primary", "Version"]
    assert root.find(f"{{{uri}}}LastBootUpTime/cim:Datetime", NS).text == "2010-11-03T09:09:40.3755Z"  # type: ignore[union-attr]
    assert [e.text for e in root.findall(f"{{{uri}}}MUILanguages")] == ["en-US", "de-DE"]
    assert root.find(f"{{{uri}}}Other").get(f"{{{soap.NS_XSI}}}nil") == "true"  # type: ignore[union-attr]
    assert root.find(f"{{{uri}}}Primary").text == "true"  # type: ignore[union-attr]


def test_datetime_offsets() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert soap.format_datetime(dt.datetime(2020, 1, 1, 12, 0, 0, tzinfo=plus_two)) == "2020-01-01T12:00:00+02:00"
    assert soap.format_datetime(dt.datetime(2020, 1, 1, 12, 0, 0)) == "2020-01-01T12:00:00Z"


def test_fragment_children_are_unqualified() -> None:
    # The w: prefix of the fragment is declared on the envelope, so parse it inside one.
    when = dt.datetime(2013, 4, 15, 16, 28, 39, 500000, tzinfo=dt.UTC)
    xml = soap.envelope("urn:x", None, [soap.fragment_element([("Name", "Dfsr", "string"),
                                                               ("Description", None, None),
                                                               ("LastModified", when, "datetime")])])
    fragment = ET.fromstring(xml).find("s:Body/w:XmlFragment", NS)
    assert fragment is not None
    assert [c.tag for c in fragment] == ["Name", "Description", "LastModified"]
    assert fragment[1].get(f"{{{soap.NS_XSI}}}nil") == "true"
    # Windows leaves the Datetime inside a fragment unqualified too (not cim:Datetime as in typed items).
    assert [c.tag for c in fragment[2]] == ["Datetime"]
    assert fragment[2][0].text == "2013-04-15T16:28:39.5Z"
    assert b"<LastModified><Datetime>2013-04-15T16:28:39.5Z</Datetime></LastModified>" in xml


def test_class_not_in_namespace_fault_as_2008_r2_writes_it() -> None:
    query = "SELECT HotFixID FROM Win32_ReliabilityRecords"
    root = ET.fromstring(soap.fault_envelope(faults.class_not_in_namespace(query), "uuid:X", "w2k8r2"))
    assert root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=NS) == "n:CannotProcessFilter"
    outer = root.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
    assert outer is not None and outer.get("Code") == "2150858778"
    provider = outer.find("f:Message/f:ProviderFault", NS)
    assert provider is not None
    assert provider.findtext("f:WSManFault/f:Message", namespaces=NS) == (
        "The specified class does not exist in the given namespace. ")
    status_ns = soap.WMI_URI_PREFIX + "root/cimv2/__ExtendedStatus"
    status = provider.find(f"f:ExtendedError/{{{status_ns}}}__ExtendedStatus", NS)
    assert status is not None
    assert status.findtext(f"{{{status_ns}}}ParameterInfo") == query
    assert status.findtext(f"{{{status_ns}}}Operation") == "ExecQuery"
    assert status.find(f"{{{status_ns}}}StatusCode").get(f"{{{soap.NS_XSI}}}nil") == "true"  # type: ignore[union-attr]


def test_quota_as_a_bare_wmi_error_as_2012_writes_it() -> None:
    root = ET.fromstring(soap.fault_envelope(faults.quota_operations_wmi_error(1500), "uuid:X", "w2012"))
    fault = root.find("s:Body/s:Fault", NS)
    assert fault is not None
    assert fault.findtext("s:Code/s:Subcode/s:Value", namespaces=NS) == "w:InternalError"
    assert fault.find("s:Detail/f:WSManFault", NS) is None  # the code is only in the WMI error
    wmi_ns = soap.CIM_URI_PREFIX + "MSFT_WmiError"
    error = fault.find(f"s:Detail/{{{wmi_ns}}}MSFT_WmiError", NS)
    assert error is not None
    assert error.findtext(f"{{{wmi_ns}}}error_Code") == "2150859174"
    assert error.findtext(f"{{{wmi_ns}}}MessageID") == "HRESULT 0x803381a6"
    assert "maximum number of 1500 concurrent operations" in (error.findtext(f"{{{wmi_ns}}}Message") or "")


def test_method_output_puts_return_value_last_and_drops_nulls() -> None:
    uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/StdRegProv"
    xml = soap.method_output(uri, "EnumValues", {"ReturnValue": 0, "sNames": ["A", "B"], "Types": [1, 4],
                                                 "Missing": None}).to_xml()
    root = ET.fromstring(xml)
    assert [soap.local_name(c.tag) for c in root] == ["sNames", "sNames", "Types", "Types", "ReturnValue"]


def test_reply_envelope_headers() -> None:
    root = ET.fromstring(soap.envelope("urn:act", "uuid:abc", []))
    assert root.get(f"{{{soap.NS_XML}}}lang") == "en-US"
    header = root.find("s:Header", NS)
    assert header is not None
    assert header.findtext("a:Action", namespaces=NS) == "urn:act"
    assert UUID_UPPER.match(header.findtext("a:MessageID", namespaces=NS) or "")
    assert header.findtext("a:To", namespaces=NS) == soap.ANONYMOUS
    assert header.findtext("a:RelatesTo", namespaces=NS) == "uuid:abc"


def test_fault_envelope_carries_code_subcode_and_wsman_fault() -> None:
    root = ET.fromstring(soap.fault_envelope(faults.quota_shells(5), "uuid:1", "HOST1"))
    fault = root.find("s:Body/s:Fault", NS)
    assert fault is not None
    assert fault.findtext("s:Code/s:Value", namespaces=NS) == "s:Receiver"
    assert fault.findtext("s:Code/s:Subcode/s:Value", namespaces=NS) == "w:QuotaLimit"
    detail = fault.find("s:Detail/f:WSManFault", NS)
    assert detail is not None
    assert detail.get("Code") == "2150859173"
    assert detail.get("Machine") == "HOST1"
    assert "5 concurrent shells" in (fault.findtext("s:Reason/s:Text", namespaces=NS) or "")


def test_wmi_fault_is_wrapped_in_provider_fault() -> None:
    root = ET.fromstring(soap.fault_envelope(faults.from_wmi_error("invalid_parameter", "bad hDefKey"), None, "H"))
    inner = root.find("s:Body/s:Fault/s:Detail/f:WSManFault/f:Message/f:ProviderFault/f:WSManFault", NS)
    assert inner is not None
    assert inner.findtext("f:Message", namespaces=NS) == "bad hDefKey"
    assert root.find("s:Header/a:RelatesTo", NS) is None  # no request id known: no RelatesTo


@pytest.mark.parametrize(("uri", "location"), [
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service", ("root/cimv2", "Win32_Service")),
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/StdRegProv", ("root/default", "StdRegProv")),
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*", ("root/cimv2", "*")),
    ("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_DataFile", ("root/cimv2", "CIM_DataFile")),
    ("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd", None),
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/Win32_Service", None),
])
def test_wmi_locations(uri: str, location: tuple[str, str] | None) -> None:
    assert soap.wmi_location(uri) == location
