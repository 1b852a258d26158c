"""SOAP 1.2 / WS-Management envelopes: requests parsed by namespace URI, replies written the way Windows does.

Requests are parsed with defusedxml (no DTDs, no entity expansion) and every element is matched by its
namespace URI: clients pick their own prefixes (pywinrm uses ``env:``, pypsrp ``s:``/``wsa:``/``wsman:``).
Replies use Windows' prefixes (``s:``, ``a:``, ``w:``, ``n:``, ``x:``, ``p:``, ``rsp:``), including its quirk of
binding ``p:`` on the envelope to Microsoft's wsman.xsd namespace and re-binding it on each WMI item to the
class's resource URI -- a client keying on prefixes instead of URIs breaks here, as it would against Windows.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from . import faults

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_MSWSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMANFAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"
# DSP0226's Identify namespace: what Windows answers in (Test-WSMan shows it as "wsmid"). MS-WSMV's namespace
# table spells it ".../identify/1/..."; a request in that spelling is still recognised (clients copied it), but
# the reply is always in DSP0226's.
NS_IDENTITY = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
NS_IDENTITY_MS_WSMV = "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd"
NS_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
NS_XML = "http://www.w3.org/XML/1998/namespace"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WMI_URI_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
CIM_URI_PREFIX = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"

# The envelope-level declarations Windows writes on every reply.
_ENVELOPE_NAMESPACES = (
    ("s", NS_SOAP),
    ("a", NS_ADDRESSING),
    ("n", NS_ENUMERATION),
    ("w", NS_WSMAN),
    ("x", NS_TRANSFER),
    ("p", NS_MSWSMAN),
)


def q(ns: str, local: str) -> str:
    """ElementTree's ``{uri}local`` name."""
    return f"{{{ns}}}{local}"


# --- requests -------------------------------------------------------------------------------------------


@dataclass
class Request:
    action: str
    message_id: str | None
    resource_uri: str
    to: str | None
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout: float | None = None
    max_envelope_size: int | None = None
    body: ET.Element | None = None
    size: int = 0
    # Fault injection (``corrupt_stdin``): one byte of this Send's stream changes on its way to the process.
    corrupt_stdin: bool = False


def parse_request(data: bytes) -> Request:
    """Parse a SOAP request; raises WsmanFault (schema validation) for anything that is not one."""
    root = _parse_xml(data)
    if root.tag != q(NS_SOAP, "Envelope"):
        raise faults.schema_validation(f"the root element is {root.tag}, not a SOAP 1.2 Envelope")
    header = root.find(q(NS_SOAP, "Header"))
    body_el = root.find(q(NS_SOAP, "Body"))
    if body_el is None:
        raise faults.schema_validation("the envelope has no Body")
    body = next(iter(body_el), None)
    request = Request(
        action=_header_text(header, NS_ADDRESSING, "Action"),
        message_id=_header_text(header, NS_ADDRESSING, "MessageID") or None,
        resource_uri=_header_text(header, NS_WSMAN, "ResourceURI"),
        to=_header_text(header, NS_ADDRESSING, "To") or None,
        body=body,
        size=len(data),
    )
    if header is not None:
        request.selectors = _name_value_set(header, "SelectorSet", "Selector")
        request.options = _name_value_set(header, "OptionSet", "Option")
        timeout = _header_text(header, NS_WSMAN, "OperationTimeout")
        request.operation_timeout = parse_duration(timeout) if timeout else None
        size = _header_text(header, NS_WSMAN, "MaxEnvelopeSize")
        request.max_envelope_size = _parse_int(size, "MaxEnvelopeSize") if size else None
    if not request.action and not is_identify(request):
        raise faults.header_required("a:Action")
    return request


def is_identify(request: Request) -> bool:
    """A WS-Management Identify: no a:Action, the body is ``wsmid:Identify`` (DSP0226 section 11)."""
    body = request.body
    return not request.action and body is not None and body.tag in (
        q(NS_IDENTITY, "Identify"), q(NS_IDENTITY_MS_WSMV, "Identify"))


def _parse_xml(data: bytes) -> ET.Element:
    try:
        root: ET.Element = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise faults.schema_validation(f"the request is not well-formed XML ({exc})") from exc
    return root


def _header_text(header: ET.Element | None, ns: str, local: str) -> str:
    if header is None:
        return ""
    el = header.find(q(ns, local))
    return (el.text or "").strip() if el is not None else ""


def _name_value_set(header: ET.Element, set_name: str, item_name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    container = header.find(q(NS_WSMAN, set_name))
    if container is None:
        return values
    for item in container.findall(q(NS_WSMAN, item_name)):
        name = item.get("Name")
        if not name:
            raise faults.schema_validation(f"a {item_name} without a Name attribute")
        values[name] = (item.text or "").strip()
    return values


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise faults.schema_validation(f"{what} {text!r} is not a number") from exc


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """xs:duration as WS-Man clients write it (``PT20S``, ``PT60.000S``, ``PT1M30S``) -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise faults.schema_validation(f"OperationTimeout {text!r} is not an xs:duration")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def child(el: ET.Element | None, ns: str, local: str) -> ET.Element | None:
    return None if el is None else el.find(q(ns, local))


def child_text(el: ET.Element | None, ns: str, local: str) -> str | None:
    found = child(el, ns, local)
    return None if found is None else (found.text or "").strip()


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def is_nil(el: ET.Element) -> bool:
    return el.get(q(NS_XSI, "nil"), "").lower() == "true"


def parse_method_input(el: ET.Element | None) -> dict[str, object]:
    """``p:Method_INPUT`` children -> parameters: text, list of texts for repeated elements, None for nil.

    Values stay strings: the CIM types belong to the method signature, which the machine half owns.
    """
    params: dict[str, object] = {}
    if el is None:
        return params
    for item in el:
        name = local_name(item.tag)
        value: object = None if is_nil(item) else _element_value(item)
        if name in params:
            existing = params[name]
            params[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            params[name] = value
    return params


def _element_value(el: ET.Element) -> str:
    # A datetime parameter arrives as <p:X><cim:Datetime>...</cim:Datetime></p:X>.
    inner = child(el, NS_CIM, "Datetime")
    return (inner.text if inner is not None else el.text) or ""


# --- a small XML writer ---------------------------------------------------------------------------------
# ElementTree chooses prefixes itself and cannot re-bind ``p`` per element, so replies are written by hand.


class Elem:
    __slots__ = ("attrs", "children", "name", "text")

    def __init__(
        self,
        name: str,
        attrs: Sequence[tuple[str, str]] = (),
        children: Iterable[Elem | str] = (),
        text: str | None = None,
    ) -> None:
        self.name = name
        self.attrs = list(attrs)
        self.children = list(children)  # Elem or pre-serialised XML
        self.text = text

    def serialize(self, out: list[str]) -> None:
        out.append("<" + self.name)
        for key, value in self.attrs:
            out.append(f" {key}={quoteattr(value)}")
        if self.text is None and not self.children:
            out.append("/>")
            return
        out.append(">")
        if self.text is not None:
            out.append(escape(self.text))
        for item in self.children:
            if isinstance(item, Elem):
                item.serialize(out)
            else:
                out.append(item)
        out.append(f"</{self.name}>")

    def to_xml(self) -> str:
        out: list[str] = []
        self.serialize(out)
        return "".join(out)


def new_message_id() -> str:
    # Windows writes MessageIDs as uppercase GUIDs.
    return "uuid:" + str(uuid.uuid4()).upper()


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def envelope(action: str, relates_to: str | None, body: Sequence[Elem | str],
             extra_header: Sequence[Elem] = ()) -> bytes:
    header = [
        Elem("a:Action", text=action),
        Elem("a:MessageID", text=new_message_id()),
        Elem("a:To", text=ANONYMOUS),
    ]
    if relates_to:
        header.append(Elem("a:RelatesTo", text=relates_to))
    header.extend(extra_header)
    attrs = [("xml:lang", "en-US"), *((f"xmlns:{p}", uri) for p, uri in _ENVELOPE_NAMESPACES)]
    env = Elem("s:Envelope", attrs, [Elem("s:Header", children=header), Elem("s:Body", children=body)])
    return env.to_xml().encode("utf-8")


NS_WMI_ERROR = CIM_URI_PREFIX + "MSFT_WmiError"
NS_EXTENDED_STATUS = WMI_URI_PREFIX + "root/cimv2/__ExtendedStatus"


def _extended_error(status: dict[str, str | None]) -> Elem:
    """``f:ExtendedError`` holding WMI's ``__ExtendedStatus`` (operation, query, provider) beside the message."""
    props = [Elem(f"p:{name}", [("xsi:nil", "true")]) if value is None else Elem(f"p:{name}", text=value)
             for name, value in status.items()]
    return Elem("f:ExtendedError", children=[Elem("p:__ExtendedStatus", [
        ("xmlns:cim", NS_CIM), ("xmlns:p", NS_EXTENDED_STATUS), ("xmlns:xsi", NS_XSI),
        ("xsi:type", "p:__ExtendedStatus_Type")], props)])


def _wmi_error(fault: faults.WsmanFault) -> Elem:
    """A bare MSFT_WmiError detail (Windows Server 2012): the code in ``error_Code``, the text twice."""

    def prop(name: str, cim_type: str, text: str) -> Elem:
        return Elem(f"p:{name}", [("xsi:type", f"cim:{cim_type}")], text=text)

    return Elem("p:MSFT_WmiError", [
        ("b:IsCIM_Error", "true"), ("xmlns:b", "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"),
        ("xmlns:cim", NS_CIM), ("xmlns:p", NS_WMI_ERROR), ("xmlns:xsi", NS_XSI), ("xsi:type", "p:MSFT_WmiError_Type"),
    ], [
        prop("CIMStatusCode", "cimUnsignedInt", "27"),
        prop("Message", "cimString", fault.reason),
        prop("MessageID", "cimString", f"HRESULT 0x{fault.code:08x}"),
        prop("error_Category", "cimUnsignedInt", "30"),
        prop("error_Code", "cimUnsignedInt", str(fault.code)),
        prop("error_Type", "cimString", "HRESULT"),
        prop("error_WindowsErrorMessage", "cimString", fault.reason),
    ])


def fault_envelope(fault: faults.WsmanFault, relates_to: str | None, machine: str) -> bytes:
    message = Elem("f:Message", text=fault.reason)
    if fault.provider_fault:
        inner = Elem(
            "f:WSManFault",
            [("xmlns:f", NS_WSMANFAULT), ("Code", str(fault.code)), ("Machine", machine)],
            [Elem("f:Message", text=fault.provider_message or fault.reason)],
        )
        provider_children: list[Elem | str] = [inner]
        if fault.extended_status is not None:
            provider_children.append(_extended_error(fault.extended_status))
        provider = Elem(
            "f:ProviderFault",
            [("provider", "WMI Provider"), ("path", r"%systemroot%\system32\WsmWmiPl.dll")],
            provider_children,
        )
        message = Elem("f:Message", children=[provider])
    wsman_fault = Elem(
        "f:WSManFault",
        [("xmlns:f", NS_WSMANFAULT), ("Code", str(fault.code)), ("Machine", machine)],
        [message],
    )
    detail: list[Elem | str] = []
    if fault.fault_detail:
        detail.append(Elem("w:FaultDetail", text=fault.fault_detail))
    detail.append(_wmi_error(fault) if fault.wmi_error else wsman_fault)
    code = Elem(
        "s:Code",
        children=[
            Elem("s:Value", text="s:Sender" if fault.sender else "s:Receiver"),
            Elem("s:Subcode", children=[Elem("s:Value", text=fault.subcode)]),
        ],
    )
    body = Elem(
        "s:Fault",
        children=[
            code,
            Elem("s:Reason", children=[Elem("s:Text", [("xml:lang", "en-US")], text=fault.reason)]),
            Elem("s:Detail", children=detail),
        ],
    )
    return envelope(fault.action, relates_to, [body])


# --- CIM values -----------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def value_elements(name: str, value: object, cim_type: str | None, datetime_tag: str = "cim:Datetime") -> list[Elem]:
    """One property as Windows writes it: nil, repeated elements for arrays, ``cim:Datetime`` for dates
    (``datetime_tag``: a fragment writes it unqualified)."""
    if value is None:
        return [Elem(name, [("xsi:nil", "true")])]
    if isinstance(value, (list, tuple)):
        return [el for item in value for el in value_elements(name, item, cim_type, datetime_tag)]
    if isinstance(value, datetime):
        return [Elem(name, children=[Elem(datetime_tag, text=format_datetime(value))])]
    return [Elem(name, text=format_scalar(value))]


def sorted_properties(properties: dict[str, object]) -> list[str]:
    # WMI hands properties out in case-insensitive alphabetical order.
    return sorted(properties, key=str.lower)


def instance_element(class_name: str, resource_uri: str, properties: dict[str, object],
                     cim_types: dict[str, str]) -> Elem:
    children = [el for name in sorted_properties(properties)
                for el in value_elements(f"p:{name}", properties[name], cim_types.get(name))]
    attrs = [
        ("xmlns:p", resource_uri),
        ("xmlns:cim", NS_CIM),
        ("xmlns:xsi", NS_XSI),
        ("xsi:type", f"p:{class_name}_Type"),
    ]
    return Elem(f"p:{class_name}", attrs, children)


def fragment_element(values: Sequence[tuple[str, object, str | None]]) -> Elem:
    """Selected properties (``SELECT a,b FROM ...``) as Windows writes them: every child unqualified, the
    ``Datetime`` inside a date property too (``<LastBootUpTime><Datetime>...</Datetime></LastBootUpTime>``),
    although the fragment declares ``cim`` as typed items do."""
    children = [el for name, value, cim_type in values for el in value_elements(name, value, cim_type, "Datetime")]
    return Elem("w:XmlFragment", [("xmlns:cim", NS_CIM), ("xmlns:xsi", NS_XSI)], children)


def method_output(resource_uri: str, method: str, out: dict[str, object]) -> Elem:
    # Windows lists the OUT parameters first and ReturnValue last.
    names = [n for n in out if n != "ReturnValue" and out[n] is not None]
    if "ReturnValue" in out:
        names.append("ReturnValue")
    children = [el for name in names for el in value_elements(f"p:{name}", out[name], None)]
    return Elem(f"p:{method}_OUTPUT", [("xmlns:p", resource_uri), ("xmlns:cim", NS_CIM)], children)


def wmi_location(resource_uri: str) -> tuple[str, str] | None:
    """``.../wmi/root/cimv2/Win32_X`` -> ("root/cimv2", "Win32_X"); CIM schema URIs live in root/cimv2."""
    lowered = resource_uri.lower()
    if lowered.startswith(WMI_URI_PREFIX):
        path = resource_uri[len(WMI_URI_PREFIX):].strip("/")
        namespace, _, class_name = path.rpartition("/")
        return (namespace, class_name) if namespace and class_name else None
    if lowered.startswith(CIM_URI_PREFIX):
        class_name = resource_uri[len(CIM_URI_PREFIX):].strip("/")
        return ("root/cimv2", class_name) if class_name and "/" not in class_name else None
    return None


def class_resource_uri(namespace: str, class_name: str) -> str:
    return f"{WMI_URI_PREFIX}{namespace}/{class_name}"
