# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WS-Management replies, as Windows' WinRM 1.0 to 3.0 send them: parsed with defusedxml (no DTDs, no entity
expansion: a reply is untrusted input) and read **by namespace URI, never by prefix**, because Windows versions
(and proxies) choose different prefixes for the same namespaces.

No I/O here: ``client.WinRMClient`` hands over the bytes it received.
"""

from __future__ import annotations

import base64
import datetime
import re
import xml.etree.ElementTree as ET  # only for the Element type; parsing goes through defusedxml
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from typing import Union

from ...errors import (
    AccessDeniedError,
    ClassNotFoundError,
    FilterNotSupportedError,
    InstanceNotFoundError,
    OperationTimeoutError,
    QuotaExceededError,
    TransportError,
    WSManFaultError,
)
from ..requirement import Requirement
from .wsman import (
    COMMAND_DONE,
    E_ACCESSDENIED,
    FAULT_ACCESS_DENIED,
    FAULT_CANNOT_PROCESS_FILTER,
    FAULT_INVALID_SELECTORS,
    FAULT_OPERATION_TIMEOUT,
    FAULT_QUOTA_OPERATIONS,
    FAULT_QUOTA_SHELLS,
    NS_ADDRESSING,
    NS_CIM,
    NS_ENUMERATION,
    NS_SHELL,
    NS_SOAP,
    NS_WMI_ERROR,
    NS_WSMAN,
    NS_WSMAN_FAULT,
    NS_XSI,
    WBEM_E_ACCESS_DENIED,
    WBEM_E_INVALID_CLASS,
    WBEM_E_NOT_FOUND,
)

try:
    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException
except ImportError as _error:  # parse_xml (and WinRMClient, before its first request) says what is missing
    DEFUSEDXML = Requirement.missing("defusedxml", "WinRM", _error)
else:
    DEFUSEDXML = Requirement.present("defusedxml", "WinRM")

Value = Union[str, datetime.datetime, None, "WmiObject", list["Value"]]


class WmiObject(Mapping[str, Value]):
    """One WMI instance (or method output) from a reply. Property lookup ignores case, as WMI does.
    ``class_name`` is the element's local name (``Win32_OperatingSystem``), or ``""`` for a
    ``w:XmlFragment`` (selected properties carry no class)."""

    def __init__(self, class_name: str, properties: Mapping[str, Value]) -> None:
        self.class_name = class_name
        self._props = dict(properties)
        self._folded = {k.casefold(): k for k in self._props}

    def __getitem__(self, name: str) -> Value:
        return self._props[self._folded[name.casefold()]]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._folded

    def __iter__(self) -> Iterator[str]:
        return iter(self._props)

    def __len__(self) -> int:
        return len(self._props)

    def __repr__(self) -> str:
        return f"WmiObject({self.class_name!r}, {self._props!r})"


@dataclass
class Reply:
    """A parsed, fault-free reply: its body element and the header fields a client checks."""

    body: ET.Element
    relates_to: str | None
    action: str | None
    prefixes: dict[str, str] = field(default_factory=dict)


@dataclass
class EnumerationPage:
    items: list[WmiObject]
    context: str | None  # None when the service says the sequence has ended
    end: bool


@dataclass
class ReceiveChunk:
    stdout: bytes
    stderr: bytes
    done: bool
    exit_code: int | None


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        uri, _sep, name = tag[1:].partition("}")
        return uri, name
    return "", tag


def _children(el: ET.Element, uri: str | tuple[str, ...], name: str) -> list[ET.Element]:
    uris = (uri,) if isinstance(uri, str) else uri
    return [c for c in el if _local(c.tag)[1] == name and _local(c.tag)[0] in uris]


def _first(el: ET.Element, uri: str | tuple[str, ...], name: str) -> ET.Element | None:
    found = _children(el, uri, name)
    return found[0] if found else None


def parse_xml(data: bytes) -> tuple[ET.Element, dict[str, str]]:
    """Parse untrusted XML without DTDs or entities. Also returns the namespace prefixes declared in
    the document, needed to resolve QName *values* (``s:Sender``) whose prefix is the sender's choice."""
    DEFUSEDXML.require()  # never fall back to xml.etree: a reply is untrusted input
    prefixes: dict[str, str] = {}
    root: ET.Element | None = None
    try:
        for event, item in SafeET.iterparse(BytesIO(data), events=("start-ns", "start"),
                                            forbid_dtd=True, forbid_entities=True, forbid_external=True):
            if event == "start-ns":
                prefix, uri = item
                prefixes.setdefault(prefix, uri)
            elif root is None:
                root = item
    except DefusedXmlException as exc:
        # Before ValueError: defusedxml's refusals derive from it, and they are a refusal, not broken XML.
        raise TransportError(f"the host sent a reply that was refused: DTD/entities are not accepted ({exc!r})") \
            from None
    except (ET.ParseError, ValueError) as exc:
        raise TransportError(f"the host sent a reply that is not well-formed XML: {exc}") from None
    if root is None:
        raise TransportError("the host sent an empty reply")
    return root, prefixes


def _resolve_qname(text: str | None, prefixes: Mapping[str, str]) -> tuple[str, str] | None:
    if not text:
        return None
    prefix, sep, local = text.strip().rpartition(":")
    if not sep:
        return prefixes.get("", ""), local
    return prefixes.get(prefix, ""), local


@dataclass
class Fault:
    code: tuple[str, str] | None
    subcode: tuple[str, str] | None
    reason: str
    wsman_code: int | None
    wmi_code: int | None
    message: str
    detail_uri: str | None

    def to_error(self, action: str | None = None) -> WSManFaultError | AccessDeniedError:
        return fault_error(self, action)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _own_text(el: ET.Element) -> str:
    """The element's text without its children's (a ``f:Message`` wrapping a ``f:ProviderFault`` has none)."""
    return " ".join("".join([el.text or "", *(c.tail or "" for c in el)]).split())


def _fault_message(detail: ET.Element) -> str:
    """The Windows message alone. A WMI failure nests it: ``f:Message/f:ProviderFault/f:WSManFault/f:Message``
    beside an ``f:ExtendedError`` (``__ExtendedStatus`` or ``MSFT_WmiError``: operation, query, provider, codes)
    that is no message, so take the first ``f:Message`` with text of its own; without a WSManFault (WinRM 3.0
    sends a bare ``MSFT_WmiError``) its ``Message``, then ``error_WindowsErrorMessage``."""
    for wanted in ((NS_WSMAN_FAULT, "Message"), (NS_WMI_ERROR, "Message"), (NS_WMI_ERROR, "error_WindowsErrorMessage")):
        text = next((t for t in (_own_text(e) for e in detail.iter() if _local(e.tag) == wanted) if t), "")
        if text:
            return text
    return ""


def _fault_detail(fault: ET.Element) -> tuple[int | None, int | None, str, str | None]:
    detail = _first(fault, NS_SOAP, "Detail")
    if detail is None:
        return None, None, "", None
    wsman_fault = next((e for e in detail.iter() if _local(e.tag) == (NS_WSMAN_FAULT, "WSManFault")), None)
    wsman_code = _int_or_none(wsman_fault.get("Code")) if wsman_fault is not None else None
    message = _fault_message(detail)
    wmi = next((e for e in detail.iter() if _local(e.tag) == (NS_WMI_ERROR, "error_Code")), None)
    wmi_code = _int_or_none(wmi.text) if wmi is not None else None
    fault_detail = next((e for e in detail.iter() if _local(e.tag) == (NS_WSMAN, "FaultDetail")), None)
    detail_uri = (fault_detail.text or "").strip() if fault_detail is not None else None
    return wsman_code, wmi_code, message, detail_uri


def find_fault(root: ET.Element, prefixes: Mapping[str, str]) -> Fault | None:
    body = _first(root, NS_SOAP, "Body")
    fault = _first(body, NS_SOAP, "Fault") if body is not None else None
    if fault is None:
        return None
    code_el = _first(fault, NS_SOAP, "Code")
    code = subcode = None
    if code_el is not None:
        value = _first(code_el, NS_SOAP, "Value")
        code = _resolve_qname(value.text if value is not None else None, prefixes)
        sub = _first(code_el, NS_SOAP, "Subcode")
        sub_value = _first(sub, NS_SOAP, "Value") if sub is not None else None
        subcode = _resolve_qname(sub_value.text if sub_value is not None else None, prefixes)
    reason_el = _first(fault, NS_SOAP, "Reason")
    texts = _children(reason_el, NS_SOAP, "Text") if reason_el is not None else []
    reason = " ".join(" ".join("".join(t.itertext()).split()) for t in texts)
    wsman_code, wmi_code, message, detail_uri = _fault_detail(fault)
    return Fault(code, subcode, reason, wsman_code, wmi_code, message, detail_uri)


_NOT_FOUND_SUBCODES = frozenset({"DestinationUnreachable", "InvalidSelectors"})
_FILTER_SUBCODES = frozenset({"CannotProcessFilter", "FilteringNotSupported", "FilterDialectRequestedUnavailable"})
_QUOTA_CODES = frozenset({FAULT_QUOTA_OPERATIONS, FAULT_QUOTA_SHELLS})
# Windows 2008 R2's words for a WQL naming a class the namespace lacks; hosts in other languages are told by
# the WMI error code (WBEM_E_INVALID_CLASS) in the detail instead.
_CLASS_MISSING = re.compile(r"class does not exist", re.IGNORECASE)


def _class_missing(fault: Fault) -> bool:
    """A CannotProcessFilter that means "no such class", not "no filters here" (2008 R2 answers both alike)."""
    return fault.wmi_code == WBEM_E_INVALID_CLASS or bool(_CLASS_MISSING.search(fault.message))


def fault_error(fault: Fault, action: str | None = None) -> WSManFaultError | AccessDeniedError:
    """The exception for a fault: the class says what the caller may do (retry, back off, give up)."""
    sub = fault.subcode[1] if fault.subcode else None
    text = fault.message or fault.reason or "no reason given"
    where = f" on {action.rsplit('/', 1)[-1]}" if action else ""
    # Without a WSManFault (a bare MSFT_WmiError, WinRM 3.0) the WMI error code is the only number given.
    code = fault.wsman_code if fault.wsman_code is not None else fault.wmi_code
    label = "WS-Man fault"
    if fault.wsman_code is not None:
        label = f"WSManFault {fault.wsman_code}"
    elif fault.wmi_code is not None:
        label = f"WMI error {fault.wmi_code}"
    if sub:
        label += f" ({sub})"
    message = f"{label}{where}: {text}"
    cls: type[WSManFaultError] | type[AccessDeniedError] = WSManFaultError
    if code == FAULT_OPERATION_TIMEOUT or sub == "TimedOut":
        cls = OperationTimeoutError
    elif code in _QUOTA_CODES or fault.wmi_code in _QUOTA_CODES or sub == "QuotaLimit":
        # Windows 2012 reports the quota as w:InternalError with the code only in an MSFT_WmiError.
        cls = QuotaExceededError
    elif (code in (FAULT_ACCESS_DENIED, E_ACCESSDENIED) or fault.wmi_code == WBEM_E_ACCESS_DENIED
          or sub == "AccessDenied"):
        cls = AccessDeniedError
    elif code == FAULT_CANNOT_PROCESS_FILTER or sub in _FILTER_SUBCODES:
        cls = ClassNotFoundError if _class_missing(fault) else FilterNotSupportedError
    elif sub in _NOT_FOUND_SUBCODES or code == FAULT_INVALID_SELECTORS or fault.wmi_code == WBEM_E_NOT_FOUND:
        cls = InstanceNotFoundError
    return cls(message, code=code, subcode=sub, action=action)


@dataclass
class ParsedReply:
    reply: Reply | None
    fault: Fault | None


def parse_reply(data: bytes) -> ParsedReply:
    """Parse a reply; a SOAP fault comes back as ``fault`` (the caller decides whether to raise)."""
    root, prefixes = parse_xml(data)
    if _local(root.tag) != (NS_SOAP, "Envelope"):
        raise TransportError(f"the reply is not a SOAP 1.2 envelope (root element {root.tag})")
    fault = find_fault(root, prefixes)
    if fault is not None:
        return ParsedReply(None, fault)
    header = _first(root, NS_SOAP, "Header")
    body = _first(root, NS_SOAP, "Body")
    if body is None:
        raise TransportError("the reply has no SOAP body")
    relates = action = None
    if header is not None:
        rel_el = _first(header, NS_ADDRESSING, "RelatesTo")
        act_el = _first(header, NS_ADDRESSING, "Action")
        relates = (rel_el.text or "").strip() if rel_el is not None else None
        action = (act_el.text or "").strip() if act_el is not None else None
    return ParsedReply(Reply(body, relates, action, prefixes), None)


def same_message_id(a: str, b: str) -> bool:
    """Windows answers with upper-case ``uuid:`` ids whatever case the request used."""
    return a.strip().casefold() == b.strip().casefold()


# --- values ---------------------------------------------------------------------------------------

_DMTF = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_cim_datetime(text: str) -> datetime.datetime:
    """A CIM datetime as an aware UTC datetime. Accepts both forms Windows uses: xs:dateTime
    (``2010-11-20T10:00:00.1234567Z``, from ``cim:Datetime``) and the DMTF string
    (``20031027011900.000000+000``, offset in minutes, from WQL results and old providers)."""
    text = text.strip()
    m = _DMTF.match(text)
    if m:
        y, mo, d, h, mi, s, us, sign, off = m.groups()
        offset = datetime.timedelta(minutes=int(off)) * (1 if sign == "+" else -1)
        tz = datetime.timezone(offset)
        value = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(us), tzinfo=tz)
        return value.astimezone(datetime.UTC)
    m = _ISO.match(text)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = datetime.UTC
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        value = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
        return value.astimezone(datetime.UTC)
    raise ValueError(f"not a CIM datetime: {text!r}")


def _is_nil(el: ET.Element) -> bool:
    return (el.get(f"{{{NS_XSI}}}nil") or "").strip().lower() in ("true", "1")


# The CIM typed-value wrappers. Typed instances qualify them (``cim:Datetime``); a ``w:XmlFragment`` (selected
# properties) leaves them unqualified like the property elements around them (``<LastModified><Datetime>``).
_CIM_WRAPPER_URIS = (NS_CIM, "")
_CIM_WRAPPERS = frozenset({"Datetime", "Date", "Time", "Interval"})


def _cim_wrapper(el: ET.Element) -> str | None:
    """``Datetime``/``Date``/``Time``/``Interval`` when ``el`` is one of those value wrappers, else None."""
    uri, name = _local(el.tag)
    return name if uri in _CIM_WRAPPER_URIS and name in _CIM_WRAPPERS and not list(el) else None


def _element_value(el: ET.Element) -> Value:
    if _is_nil(el):
        return None
    kids = list(el)
    if not kids:
        return el.text or ""
    wrapper = _cim_wrapper(kids[0]) if len(kids) == 1 else None
    if wrapper == "Datetime":
        return parse_cim_datetime(kids[0].text or "")
    if wrapper is not None:
        # Date, Time, Interval: keep the text, callers that need them parse them.
        return (kids[0].text or "").strip()
    # An embedded object: WS-Man writes its properties as children of the property element.
    return object_from_element(el)


def object_from_element(el: ET.Element) -> WmiObject:
    """A typed instance (``p:Win32_X``), a ``w:XmlFragment`` of selected properties, or a method's
    ``p:Method_OUTPUT``. Repeated child elements are an array."""
    uri, name = _local(el.tag)
    class_name = "" if (uri, name) == (NS_WSMAN, "XmlFragment") else name
    grouped: dict[str, list[Value]] = {}
    for child in el:
        grouped.setdefault(_local(child.tag)[1], []).append(_element_value(child))
    props: dict[str, Value] = {k: (v[0] if len(v) == 1 else v) for k, v in grouped.items()}
    return WmiObject(class_name, props)


def as_list(value: Value) -> list[Value]:
    """An array property: absent or nil is empty, one element is a one-item list (the wire cannot tell
    a one-element array from a scalar)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_int(value: Value) -> int | None:
    if value is None or isinstance(value, (list, WmiObject, datetime.datetime)):
        return None
    text = value.strip()
    return int(text) if text else None


def as_str(value: Value) -> str | None:
    if value is None or isinstance(value, (list, WmiObject, datetime.datetime)):
        return None
    return value


def as_datetime(value: Value) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value
    text = as_str(value)
    if not text:
        return None
    try:
        return parse_cim_datetime(text)
    except ValueError:
        return None


# --- replies by operation --------------------------------------------------------------------------

def enumeration_page(reply: Reply) -> EnumerationPage:
    """Items and context from an EnumerateResponse or PullResponse. Optimized enumeration puts items in
    ``w:Items``/``w:EndOfSequence``; Pull uses ``n:Items``/``n:EndOfSequence``; accept either in both."""
    resp = _first(reply.body, NS_ENUMERATION, "EnumerateResponse")
    if resp is None:
        resp = _first(reply.body, NS_ENUMERATION, "PullResponse")
    if resp is None:
        raise TransportError("the reply is neither an EnumerateResponse nor a PullResponse")
    both = (NS_WSMAN, NS_ENUMERATION)
    items_el = _first(resp, both, "Items")
    items = [object_from_element(i) for i in items_el] if items_el is not None else []
    end = _first(resp, both, "EndOfSequence") is not None
    ctx_el = _first(resp, NS_ENUMERATION, "EnumerationContext")
    context = (ctx_el.text or "").strip() if ctx_el is not None else None
    if end or not context:
        context = None
    return EnumerationPage(items, context, end or context is None)


def single_object(reply: Reply) -> WmiObject:
    """The one element in the body of a Get or Invoke reply."""
    kids = list(reply.body)
    if not kids:
        raise TransportError("the reply body is empty")
    return object_from_element(kids[0])


def shell_id(reply: Reply) -> str:
    """ShellId from a Create reply: ``rsp:Shell/rsp:ShellId`` (WinRM 2.0+) or the ``ShellId`` selector
    in ``x:ResourceCreated`` (every version)."""
    for el in reply.body.iter():
        uri, name = _local(el.tag)
        if (uri, name) == (NS_SHELL, "ShellId") and el.text:
            return el.text.strip()
        if (uri, name) == (NS_WSMAN, "Selector") and el.get("Name") == "ShellId" and el.text:
            return el.text.strip()
    raise TransportError("the Create reply carries no ShellId")


def command_id(reply: Reply) -> str:
    for el in reply.body.iter():
        if _local(el.tag) == (NS_SHELL, "CommandId") and el.text:
            return el.text.strip()
    raise TransportError("the Command reply carries no CommandId")


def to_int32(value: int) -> int:
    """WinRS reports exit codes as unsigned 32-bit; installers document them signed (0x80240017 is
    -2145124329), so fold the upper half."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value >= 0x80000000 else value


def receive_chunk(reply: Reply) -> ReceiveChunk:
    resp = _first(reply.body, NS_SHELL, "ReceiveResponse")
    if resp is None:
        raise TransportError("the reply is not a ReceiveResponse")
    out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    for stream in _children(resp, NS_SHELL, "Stream"):
        name = stream.get("Name", "")
        if stream.text and name in out:
            out[name].append(base64.b64decode(stream.text.strip()))
    state = _first(resp, NS_SHELL, "CommandState")
    done = state is not None and (state.get("State") or "").strip() == COMMAND_DONE
    exit_code = None
    if state is not None:
        code_el = _first(state, NS_SHELL, "ExitCode")
        raw = _int_or_none(code_el.text if code_el is not None else None)
        exit_code = to_int32(raw) if raw is not None else None
    return ReceiveChunk(b"".join(out["stdout"]), b"".join(out["stderr"]), done, exit_code)
