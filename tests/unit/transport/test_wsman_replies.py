# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing of Windows-shaped WS-Man replies (fixtures/) by namespace URI, never by prefix."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils import errors
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import replies, wsman

FIXTURES = Path(__file__).parent / "fixtures"
UTC = datetime.UTC


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def reply(name: str) -> replies.Reply:
    parsed = replies.parse_reply(load(name))
    assert parsed.fault is None, parsed.fault
    assert parsed.reply is not None
    return parsed.reply


def reprefixed(data: bytes) -> bytes:
    """The same document with every prefix changed (ElementTree writes ns0:, ns1:, ...)."""
    root = ET.fromstring(data)
    out = ET.tostring(root)
    assert b"<s:" not in out and b"<n:" not in out
    return out


def test_optimized_enumeration_typed_items_inline() -> None:
    page = replies.enumeration_page(reply("enumerate_optimized_typed.xml"))
    assert page.end and page.context is None
    [os_] = page.items
    assert os_.class_name == "Win32_OperatingSystem"
    assert os_["Version"] == "5.1.2600"
    assert os_["version"] == "5.1.2600"  # WMI property names are case-insensitive
    assert os_["OtherTypeDescription"] is None  # xsi:nil
    assert os_["MUILanguages"] == ["en-US", "de-DE"]  # array = repeated elements
    assert os_["LastBootUpTime"] == datetime.datetime(2010, 11, 20, 18, 0, 0, 375000, tzinfo=UTC)
    assert "OSArchitecture" not in os_  # XP has no such property


def test_context_only_enumeration_needs_pull() -> None:
    page = replies.enumeration_page(reply("enumerate_context_only.xml"))
    assert page.items == []
    assert not page.end
    assert page.context == "uuid:6F1B2C3D-4E5F-4061-8273-94A5B6C7D8E9"


def test_pull_with_xml_fragments_and_dmtf_datetime() -> None:
    page = replies.enumeration_page(reply("pull_fragment_end.xml"))
    assert page.end and page.context is None
    mrx, csc = page.items
    assert mrx.class_name == ""
    assert mrx["Name"] == r"c:\windows\system32\drivers\mrxsmb.sys"
    assert replies.as_int(mrx["FileSize"]) == 414976
    assert mrx["LastModified"] == datetime.datetime(2003, 9, 27, 0, 21, tzinfo=UTC)
    assert csc["Version"] is None
    assert replies.as_datetime(csc["LastModified"]) == datetime.datetime(2003, 9, 27, 1, 19, tzinfo=UTC)


@pytest.mark.parametrize("name", ["enumerate_optimized_typed.xml", "pull_fragment_end.xml",
                                  "enumerate_context_only.xml"])
def test_prefixes_do_not_matter(name: str) -> None:
    original = replies.enumeration_page(reply(name))
    parsed = replies.parse_reply(reprefixed(load(name)))
    assert parsed.reply is not None
    other = replies.enumeration_page(parsed.reply)
    assert [dict(i) for i in other.items] == [dict(i) for i in original.items]
    assert (other.context, other.end) == (original.context, original.end)


def test_header_fields() -> None:
    r = reply("enumerate_optimized_typed.xml")
    assert r.relates_to == "uuid:5A1D6C7E-0A0B-4C2D-8E9F-00112233AABB"
    assert replies.same_message_id(r.relates_to, "uuid:5a1d6c7e-0a0b-4c2d-8e9f-00112233aabb")
    assert r.action is not None and r.action.endswith("EnumerateResponse")


def test_invoke_output_arrays() -> None:
    out = replies.single_object(reply("invoke_multistring.xml"))
    assert out.class_name == "GetMultiStringValue_OUTPUT"
    assert out["sValue"] == ["fileserver", "fileserver.example.com", "10.0.0.5"]
    assert replies.as_int(out["ReturnValue"]) == 0
    values = replies.single_object(reply("invoke_enumvalues.xml"))
    assert values["sNames"] == ["ReconnectableServers", "ReconnectTimeout", "Blob"]
    assert [replies.as_int(t) for t in replies.as_list(values["Types"])] == [7, 4, 3]


def test_as_list_of_single_and_missing() -> None:
    assert replies.as_list("one") == ["one"]
    assert replies.as_list(None) == []


@pytest.mark.parametrize(("name", "cls", "code", "subcode"), [
    ("fault_operation_timeout.xml", errors.OperationTimeoutError, 2150858793, "TimedOut"),
    ("fault_quota.xml", errors.QuotaExceededError, 2150859174, "InternalError"),
    ("fault_access_denied.xml", errors.AccessDeniedError, 5, "AccessDenied"),
    ("fault_cannot_process_filter.xml", errors.FilterNotSupportedError, 2150858778, "CannotProcessFilter"),
    ("fault_not_found.xml", errors.InstanceNotFoundError, 2150858752, "DestinationUnreachable"),
])
def test_faults_map_to_exceptions(name: str, cls: type[errors.WSManFaultError], code: int, subcode: str) -> None:
    parsed = replies.parse_reply(load(name))
    assert parsed.reply is None and parsed.fault is not None
    error = parsed.fault.to_error(wsman.ACTION_ENUMERATE)
    assert type(error) is cls
    assert error.code == code
    assert error.subcode == subcode
    assert str(code) in str(error)
    assert "Enumerate" in str(error)


def test_fault_code_qname_resolved_by_declared_namespace() -> None:
    # The filter fixture uses env:/wsman: prefixes instead of Windows' s:/w:.
    fault = replies.parse_reply(load("fault_cannot_process_filter.xml")).fault
    assert fault is not None
    assert fault.code == (wsman.NS_SOAP, "Sender")
    assert fault.subcode == (wsman.NS_WSMAN, "CannotProcessFilter")
    assert fault.reason.startswith("The data source could not process the filter.")


def test_not_found_is_also_a_not_found_error() -> None:
    fault = replies.parse_reply(load("fault_not_found.xml")).fault
    assert fault is not None and fault.wmi_code == wsman.WBEM_E_NOT_FOUND
    assert isinstance(fault.to_error(), errors.NotFoundError)


def test_shell_replies() -> None:
    assert replies.shell_id(reply("create_shell_resource_created.xml")) == "F3A1B2C4-D5E6-4F70-8192-A3B4C5D6E7F8"
    chunk = replies.receive_chunk(reply("receive_done.xml"))
    assert chunk.stdout == b"hello\r\n"
    assert chunk.stderr == b"oops\r\n"
    assert chunk.done
    assert chunk.exit_code == -2145124329  # 0x80240017 as wusa documents it


def test_receive_running_has_no_exit_code() -> None:
    text = load("receive_done.xml").replace(b"CommandState/Done", b"CommandState/Running")
    text = re.sub(rb"<rsp:ExitCode>\d+</rsp:ExitCode>", b"", text)
    chunk = replies.receive_chunk(replies.parse_reply(text).reply)  # type: ignore[arg-type]
    assert not chunk.done and chunk.exit_code is None


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&b;</s:Body></s:Envelope>',
    b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&x;</s:Body></s:Envelope>',
    b"<s:Envelope",
    b"",
])
def test_hostile_or_broken_xml_is_refused(payload: bytes) -> None:
    with pytest.raises(errors.TransportError):
        replies.parse_reply(payload)


def test_non_soap_root_is_refused() -> None:
    with pytest.raises(errors.TransportError, match=r"not a SOAP 1\.2 envelope"):
        replies.parse_reply(b"<html><body>IIS</body></html>")


@pytest.mark.parametrize(("text", "expected"), [
    ("20031027011900.000000+000", datetime.datetime(2003, 10, 27, 1, 19, tzinfo=UTC)),
    ("20100101120000.500000-480", datetime.datetime(2010, 1, 1, 20, 0, 0, 500000, tzinfo=UTC)),
    ("2010-11-20T10:00:00.1234567Z", datetime.datetime(2010, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2010-11-20T10:00:00+02:00", datetime.datetime(2010, 11, 20, 8, 0, tzinfo=UTC)),
    ("2010-11-20T10:00:00", datetime.datetime(2010, 11, 20, 10, 0, tzinfo=UTC)),
])
def test_cim_datetimes(text: str, expected: datetime.datetime) -> None:
    value = replies.parse_cim_datetime(text)
    assert value == expected
    assert value.tzinfo is not None


@pytest.mark.parametrize("text", ["********120000.000000+000", "yesterday", "2010-13-01T00:00:00Z"])
def test_bad_datetimes(text: str) -> None:
    with pytest.raises(ValueError):
        replies.parse_cim_datetime(text)


# --- shapes Windows sends that older winsim and parser disagreed on (issue 16) ------------------------
# Written from the shapes of public captures (Windows 2008 R2 / 2012, pretty-printed as WinRM clients keep them
# in their test data); see docs/transport.md "Reply shapes".


def test_fragment_datetime_is_unqualified() -> None:
    # SELECT LastBootUpTime FROM Win32_OperatingSystem: the fragment's Datetime has no namespace.
    page = replies.enumeration_page(reply("enumerate_fragment_lastboot.xml"))
    [item] = page.items
    assert item.class_name == ""
    boot = item["LastBootUpTime"]
    assert boot == datetime.datetime(2013, 4, 15, 16, 28, 39, 500000, tzinfo=UTC)
    assert replies.as_datetime(boot) == boot


def test_fragment_file_row_keeps_size_and_date() -> None:
    # SELECT Name,Version,FileSize,LastModified FROM CIM_DataFile WHERE ...: the KB253729 Mpr.dll row.
    mpr, mprui = replies.enumeration_page(reply("pull_fragment_datafile.xml")).items
    assert replies.as_int(mpr["FileSize"]) == 51472
    assert replies.as_datetime(mpr["LastModified"]) == datetime.datetime(2002, 8, 29, 11, 0, tzinfo=UTC)
    assert mpr["Version"] == "4.0.1381.7148"
    # Interval and Date are unqualified too; their text is kept for callers that parse them.
    assert mprui["ElapsedTime"] == "P0DT0H5M30.25S"
    assert mprui["InstallDate"] == "2013-04-15Z"
    assert mprui["Version"] is None


def test_quota_fault_reported_through_a_wmi_error() -> None:
    fault = replies.parse_reply(load("fault_quota_wmierror.xml")).fault
    assert fault is not None
    assert fault.subcode == (wsman.NS_WSMAN, "InternalError") and fault.wsman_code is None
    assert fault.wmi_code == wsman.FAULT_QUOTA_OPERATIONS
    error = fault.to_error(wsman.ACTION_ENUMERATE)
    assert type(error) is errors.QuotaExceededError
    assert error.code == wsman.FAULT_QUOTA_OPERATIONS
    assert str(error).endswith(": The WS-Management service cannot process the request. This user is allowed a "
                               "maximum number of 1500 concurrent operations, which has been exceeded. Close "
                               "existing operations for this user, or raise the quota for this user.")


def test_class_not_found_is_not_filters_not_supported() -> None:
    fault = replies.parse_reply(load("fault_class_not_found.xml")).fault
    assert fault is not None
    assert fault.subcode == (wsman.NS_ENUMERATION, "CannotProcessFilter")
    error = fault.to_error(wsman.ACTION_ENUMERATE)
    assert type(error) is errors.ClassNotFoundError
    assert isinstance(error, errors.NotFoundError)
    assert not isinstance(error, errors.FilterNotSupportedError)
    assert error.code == 2150858778


def test_class_not_found_told_by_the_wmi_error_when_the_message_is_localised() -> None:
    fault = replies.parse_reply(load("fault_class_not_found_localized.xml")).fault
    assert fault is not None and fault.wmi_code == wsman.WBEM_E_INVALID_CLASS
    assert type(fault.to_error()) is errors.ClassNotFoundError
    assert fault.message == "Die angegebene Klasse ist im angegebenen Namespace nicht vorhanden."


def test_filters_not_supported_stays_so() -> None:
    fault = replies.parse_reply(load("fault_cannot_process_filter.xml")).fault
    assert fault is not None
    assert type(fault.to_error()) is errors.FilterNotSupportedError


@pytest.mark.parametrize(("name", "message"), [
    ("fault_class_not_found.xml", "The specified class does not exist in the given namespace."),
    ("fault_not_found.xml", "The WS-Management service cannot process the request because the WMI object was "
                            "not found."),
])
def test_fault_message_is_the_windows_message_alone(name: str, message: str) -> None:
    # Not the flattened __ExtendedStatus (ExecQuery, the query, WinMgmt) or MSFT_WmiError codes around it.
    fault = replies.parse_reply(load(name)).fault
    assert fault is not None
    assert fault.message == message
    assert str(fault.to_error()).endswith(": " + message)


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&a;</s:Body></s:Envelope>',
    b'<?xml version="1.0"?><!DOCTYPE s SYSTEM "http://127.0.0.1:1/x.dtd">'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>',
])
def test_hardening_refusal_says_so(payload: bytes) -> None:
    with pytest.raises(errors.TransportError, match=r"refused: DTD/entities") as caught:
        replies.parse_reply(payload)
    assert "well-formed" not in str(caught.value)
