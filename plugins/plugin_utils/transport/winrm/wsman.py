# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WS-Management requests, as Windows' WinRM 1.0 to 3.0 speak them, and the names both directions share.

Requests are plain text built here; replies are parsed in ``replies.py``.

No I/O here: ``winrm.WinRMClient`` sends what this module builds and hands back the bytes it received.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union
from xml.sax.saxutils import escape, quoteattr

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_MS_WSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"
NS_WSMAN_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_WMI_ERROR = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError"

ANONYMOUS = NS_ADDRESSING + "/role/anonymous"
WQL_DIALECT = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
WMI_BASE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"

# WS-Enumeration: WQL queries (Enumerate, then Pull while the reply is not the last; Release ends one early)
ACTION_ENUMERATE = NS_ENUMERATION + "/Enumerate"
ACTION_PULL = NS_ENUMERATION + "/Pull"
ACTION_RELEASE = NS_ENUMERATION + "/Release"
# WS-Transfer: read one WMI instance (Get); open and close a cmd shell (Create, Delete)
ACTION_GET = NS_TRANSFER + "/Get"
ACTION_CREATE = NS_TRANSFER + "/Create"
ACTION_DELETE = NS_TRANSFER + "/Delete"
# WinRS: commands in a shell, their stdin and output
ACTION_COMMAND = NS_SHELL + "/Command"
ACTION_SEND = NS_SHELL + "/Send"
ACTION_RECEIVE = NS_SHELL + "/Receive"
ACTION_SIGNAL = NS_SHELL + "/Signal"
# The one signal sent (end a command) and the state that says a command has ended
SIGNAL_TERMINATE, COMMAND_DONE = (NS_SHELL + "/signal/terminate", NS_SHELL + "/CommandState/Done")

# WinRM 1.x accepts at most 150 KB (153600 bytes) per envelope; 3.0 raised the default to 500 KB.
DEFAULT_MAX_ENVELOPE_SIZE = 153600
WINRM3_MAX_ENVELOPE_SIZE = 500 * 1024


def max_envelope_size(stack_version: str | None) -> int:
    """The host's default MaxEnvelopeSizekb in bytes: 150 KB before WinRM 3.0, 500 KB from 3.0 on. Unknown
    versions get the lower one, which every version accepts."""
    try:
        major = int((stack_version or "").split(".")[0])
    except ValueError:
        return DEFAULT_MAX_ENVELOPE_SIZE
    return WINRM3_MAX_ENVELOPE_SIZE if major >= 3 else DEFAULT_MAX_ENVELOPE_SIZE


# WSManFault codes (winerror.h names) that change what a caller does next.
FAULT_OPERATION_TIMEOUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_QUOTA_OPERATIONS = 2150859174  # too many operations for this user
FAULT_QUOTA_SHELLS = 2150859173  # too many shells for this user
FAULT_CANNOT_PROCESS_FILTER = 2150858778
FAULT_INVALID_SELECTORS = 2150858843
FAULT_SCHEMA_VALIDATION = 2150858817
FAULT_ACTION_NOT_SUPPORTED = 2150858771
FAULT_ACCESS_DENIED = 5
WBEM_E_NOT_FOUND = 2147749890
WBEM_E_INVALID_CLASS = 2147749904  # 0x80041010: what WMI says under "the specified class does not exist"
WBEM_E_ACCESS_DENIED = 2147749891
E_ACCESSDENIED = 2147942405

ParamValue = Union[str, int, bool, bytes, Sequence[str], Sequence[int], None]


# ---------------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Request:
    """One WS-Man request before it is addressed. ``name`` is the short form used in logs and counters
    (``Enumerate``, ``Invoke:GetDWORDValue``, ``Receive``)."""

    name: str
    action: str
    resource_uri: str
    body: str = ""
    selectors: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    operation_timeout: float | None = None  # overrides the client's OperationTimeout for this request

    def to_xml(self, to: str, message_id: str, operation_timeout: float = 20,
               max_envelope_size: int = DEFAULT_MAX_ENVELOPE_SIZE, locale: str = "en-US") -> bytes:
        return _envelope(self, to, message_id, operation_timeout, max_envelope_size, locale).encode("utf-8")


def new_message_id() -> str:
    return "uuid:" + str(uuid.uuid4()).upper()


def _text_el(tag: str, text: str, attrs: str = "") -> str:
    return f"<{tag}{attrs}>{escape(text)}</{tag}>"


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _header(req: Request, to: str, message_id: str, timeout: float, max_size: int, locale: str) -> str:
    must = ' s:mustUnderstand="true"'
    parts = [
        _text_el("a:To", to),
        _text_el("w:ResourceURI", req.resource_uri, must),
        "<a:ReplyTo>" + _text_el("a:Address", ANONYMOUS, must) + "</a:ReplyTo>",
        _text_el("a:Action", req.action, must),
        _text_el("w:MaxEnvelopeSize", str(max_size), must),
        _text_el("a:MessageID", message_id),
        f'<w:Locale xml:lang={quoteattr(locale)} s:mustUnderstand="false"/>',
        f'<m:DataLocale xml:lang={quoteattr(locale)} s:mustUnderstand="false"/>',
        _text_el("w:OperationTimeout", _duration(timeout)),
    ]
    if req.selectors:
        sel = "".join(_text_el("w:Selector", v, f" Name={quoteattr(k)}") for k, v in req.selectors)
        parts.append(f"<w:SelectorSet>{sel}</w:SelectorSet>")
    if req.options:
        opts = "".join(_text_el("w:Option", v, f" Name={quoteattr(k)}") for k, v in req.options)
        parts.append(f'<w:OptionSet xmlns:xsi="{NS_XSI}">{opts}</w:OptionSet>')
    return "<s:Header>" + "".join(parts) + "</s:Header>"


def _envelope(req: Request, to: str, message_id: str, timeout: float, max_size: int, locale: str) -> str:
    namespaces = {
        "s": NS_SOAP, "a": NS_ADDRESSING, "n": NS_ENUMERATION, "x": NS_TRANSFER, "w": NS_WSMAN,
        "m": NS_MS_WSMAN, "rsp": NS_SHELL, "xsi": NS_XSI,
    }
    decl = " ".join(f'xmlns:{p}="{u}"' for p, u in namespaces.items())
    body = f"<s:Body>{req.body}</s:Body>" if req.body else "<s:Body/>"
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope {decl}>'
            + _header(req, to, message_id, timeout, max_size, locale) + body + "</s:Envelope>")


def wmi_resource(namespace: str, class_name: str) -> str:
    """``root/cimv2`` + ``Win32_OperatingSystem`` -> the WMI plugin's resource URI."""
    return WMI_BASE + namespace.strip("/").replace("\\", "/") + "/" + class_name


def enumerate_request(resource_uri: str, wql: str | None = None, *, optimize: bool = True,
                      max_elements: int = 32000) -> Request:
    """Enumerate, optionally with a WQL filter. For a filtered enumeration the resource URI is the
    namespace's ``/*`` (the WQL names the class), as Windows requires."""
    parts = []
    if optimize:
        # OptimizeEnumeration asks for the first items in the Enumerate reply itself, saving a Pull.
        parts.append("<w:OptimizeEnumeration/>")
        parts.append(_text_el("w:MaxElements", str(max_elements)))
    if wql is not None:
        parts.append(_text_el("w:Filter", wql, f' Dialect="{WQL_DIALECT}"'))
    return Request("Enumerate", ACTION_ENUMERATE, resource_uri, "<n:Enumerate>" + "".join(parts) + "</n:Enumerate>")


def pull_request(resource_uri: str, context: str, max_elements: int = 32000) -> Request:
    body = ("<n:Pull>" + _text_el("n:EnumerationContext", context)
            + _text_el("n:MaxElements", str(max_elements)) + "</n:Pull>")
    return Request("Pull", ACTION_PULL, resource_uri, body)


def release_request(resource_uri: str, context: str) -> Request:
    body = "<n:Release>" + _text_el("n:EnumerationContext", context) + "</n:Release>"
    return Request("Release", ACTION_RELEASE, resource_uri, body)


def get_request(resource_uri: str, selectors: Mapping[str, str]) -> Request:
    return Request("Get", ACTION_GET, resource_uri, "", tuple(selectors.items()))


def _param_elements(name: str, value: ParamValue) -> list[str]:
    tag = "p:" + name
    if value is None:
        return [f'<{tag} xsi:nil="true"/>']
    if isinstance(value, bool):
        return [_text_el(tag, "true" if value else "false")]
    if isinstance(value, bytes):
        # uint8[] travels as one element per byte (StdRegProv SetBinaryValue uValue).
        return [_text_el(tag, str(b)) for b in value]
    if isinstance(value, (str, int)):
        return [_text_el(tag, str(value))]
    # Arrays are repeated elements with the same name.
    return [_text_el(tag, str(v)) for v in value]


def invoke_request(resource_uri: str, method: str, params: Mapping[str, ParamValue] | None = None,
                   selectors: Mapping[str, str] | None = None) -> Request:
    """Invoke a WMI method: action = resource URI + ``/Method``, body ``p:Method_INPUT`` in the
    resource URI's namespace."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", method):
        raise ValueError(f"not a method name: {method!r}")
    inner = "".join(el for k, v in (params or {}).items() for el in _param_elements(k, v))
    body = f'<p:{method}_INPUT xmlns:p={quoteattr(resource_uri)}>{inner}</p:{method}_INPUT>'
    return Request(f"Invoke:{method}", resource_uri + "/" + method, resource_uri, body,
                   tuple((selectors or {}).items()))


def shell_create_request(*, codepage: int = 437, working_directory: str | None = None,
                         environment: Mapping[str, str] | None = None, noprofile: bool = False,
                         idle_timeout: float | None = None) -> Request:
    inner = ""
    if environment:
        inner += "<rsp:Environment>" + "".join(
            _text_el("rsp:Variable", v, f" Name={quoteattr(k)}") for k, v in environment.items()
        ) + "</rsp:Environment>"
    if working_directory:
        inner += _text_el("rsp:WorkingDirectory", working_directory)
    if idle_timeout:
        inner += _text_el("rsp:IdleTimeOut", _duration(idle_timeout))
    inner += "<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
    options = (("WINRS_NOPROFILE", "TRUE" if noprofile else "FALSE"), ("WINRS_CODEPAGE", str(codepage)))
    return Request("Create", ACTION_CREATE, SHELL_CMD, f"<rsp:Shell>{inner}</rsp:Shell>", options=options)


def shell_command_request(shell_id: str, command_line: str) -> Request:
    """Run ``command_line`` in the shell. WinRS hands it to ``cmd.exe /c`` (WINRS_SKIP_CMD_SHELL false), so
    the line is cmd.exe syntax and quoting is the caller's (see escape.py)."""
    options = (("WINRS_CONSOLEMODE_STDIN", "TRUE"), ("WINRS_SKIP_CMD_SHELL", "FALSE"))
    body = "<rsp:CommandLine>" + _text_el("rsp:Command", command_line) + "</rsp:CommandLine>"
    return Request("Command", ACTION_COMMAND, SHELL_CMD, body, (("ShellId", shell_id),), options)


def shell_send_request(shell_id: str, command_id: str, data: bytes, end: bool = False) -> Request:
    attrs = f' Name="stdin" CommandId={quoteattr(command_id)}' + (' End="true"' if end else "")
    body = "<rsp:Send>" + _text_el("rsp:Stream", base64.b64encode(data).decode("ascii"), attrs) + "</rsp:Send>"
    return Request("Send", ACTION_SEND, SHELL_CMD, body, (("ShellId", shell_id),))


def shell_receive_request(shell_id: str, command_id: str, operation_timeout: float | None = None) -> Request:
    """Receive output. The service holds it up to ``operation_timeout`` waiting for output (long poll)."""
    body = ("<rsp:Receive>" + _text_el("rsp:DesiredStream", "stdout stderr", f" CommandId={quoteattr(command_id)}")
            + "</rsp:Receive>")
    # KEEPALIVE keeps the shell from idling out while a long installer runs between Receives.
    return Request("Receive", ACTION_RECEIVE, SHELL_CMD, body, (("ShellId", shell_id),),
                   (("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE"),), operation_timeout)


def shell_signal_request(shell_id: str, command_id: str, code: str = SIGNAL_TERMINATE) -> Request:
    body = f"<rsp:Signal CommandId={quoteattr(command_id)}>" + _text_el("rsp:Code", code) + "</rsp:Signal>"
    return Request("Signal", ACTION_SIGNAL, SHELL_CMD, body, (("ShellId", shell_id),))


def shell_delete_request(shell_id: str) -> Request:
    return Request("Delete", ACTION_DELETE, SHELL_CMD, "", (("ShellId", shell_id),))
