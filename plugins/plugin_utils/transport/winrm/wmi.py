# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed WMI over WS-Man: the registry through StdRegProv, hotfix records, file facts, OS facts.

Registry view: StdRegProv is invoked with a plain WS-Man Invoke. The ``__ProviderArchitecture`` context
that selects the 32-bit view in DCOM WMI has no representation in a WS-Man Invoke, so every read and write
here sees the provider's **native view** (64-bit on x64 Windows). 32-bit software's keys are reached by
their real path (``HKLM\\SOFTWARE\\Wow6432Node\\...``), which the caller must spell out.

Writes are read back (``WriteVerificationError`` when the host reports something else), and a write whose
connection broke after sending (``AmbiguousWriteError``) is read back before it is repeated, so a value is
never left half-written nor written twice.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from ...article.model import Architecture, FileFacts, OsFacts, RegistryType, RegistryValue, registry_key_id
from ...errors import (
    AccessDeniedError,
    AmbiguousWriteError,
    ArgumentError,
    ClassNotFoundError,
    FilterNotSupportedError,
    InstanceNotFoundError,
    KbfixError,
    NotFoundError,
    TransportError,
    WriteVerificationError,
    WSManFaultError,
)
from .. import escape, registry_path
from ..base import LOG_STEPS, RegistryChange, RestartScope, check_registry_value, same_value
from ..indicators import (
    pending_restart_from,
    pending_restart_plan,
)
from ..registry_path import RegistryPath, parse_key
from . import wsman
from .client import WinRMClient

T = TypeVar("T")
HIVES = registry_path.HIVES  # the hive table, as callers of this module knew it

STDREGPROV = wsman.wmi_resource("root/default", "StdRegProv")  # root\default exists on every version

RV_OK = 0
RV_VALUE_MISSING = 1
RV_KEY_MISSING = 2
RV_ACCESS_DENIED = 5
RV_TYPE_MISMATCH = 2147749893  # WBEM_E_TYPE_MISMATCH: the value exists with another type

# EnumValues Types[] codes (winnt.h REG_*) and the methods that read / write each type.
TYPE_CODES: dict[int, RegistryType] = {
    0: "none", 1: "string", 2: "expandstring", 3: "binary", 4: "dword", 7: "multistring", 11: "qword",
}
_GET: dict[str, tuple[str, str]] = {
    "string": ("GetStringValue", "sValue"), "expandstring": ("GetExpandedStringValue", "sValue"),
    "multistring": ("GetMultiStringValue", "sValue"), "dword": ("GetDWORDValue", "uValue"),
    "qword": ("GetQWORDValue", "uValue"), "binary": ("GetBinaryValue", "uValue"),
}
_SET: dict[str, tuple[str, str]] = {
    "string": ("SetStringValue", "sValue"), "expandstring": ("SetExpandedStringValue", "sValue"),
    "multistring": ("SetMultiStringValue", "sValue"), "dword": ("SetDWORDValue", "uValue"),
    "qword": ("SetQWORDValue", "uValue"), "binary": ("SetBinaryValue", "uValue"),
}

# Pending-restart indicators and the source names reported in HostFacts.reboot_pending_sources.


# ---------------------------------------------------------------------------------------------------
# Registry paths and StdRegProv calls


def _stdregprov(client: WinRMClient, method: str, params: Mapping[str, wsman.ParamValue],
                *, write: bool = False) -> tuple[int, wsman.WmiObject]:
    try:
        out = client.invoke(STDREGPROV, method, params, write=write)
    except WSManFaultError as exc:
        if exc.code == wsman.FAULT_ACTION_NOT_SUPPORTED:
            # XP and Server 2003 have no GetQWORDValue / SetQWORDValue: those arrived with Vista.
            raise KbfixError(f"{client.host}: this Windows' StdRegProv has no {method} method "
                             "(QWORD methods exist from Vista / Server 2008 on)") from exc
        raise
    rv = wsman.as_int(out.get("ReturnValue"))
    if rv is None:
        raise TransportError(f"{client.host}: StdRegProv.{method} returned no ReturnValue")
    return rv, out


def _key_params(path: RegistryPath) -> dict[str, wsman.ParamValue]:
    return {"hDefKey": path.hdefkey, "sSubKeyName": path.subkey}


def _denied(client: WinRMClient, method: str, what: str) -> AccessDeniedError:
    return AccessDeniedError(f"{client.host}: access denied ({method} on {what})", code=RV_ACCESS_DENIED)


def _unexpected(client: WinRMClient, method: str, what: str, rv: int) -> KbfixError:
    return KbfixError(f"{client.host}: StdRegProv.{method} on {what} returned {rv}")


@dataclass(frozen=True)
class ValueInfo:
    name: str  # as the host spells it
    type: RegistryType | None  # None: a type StdRegProv cannot read (REG_LINK, REG_RESOURCE_LIST, ...)
    type_code: int


def enum_values(client: WinRMClient, key: str) -> dict[str, ValueInfo] | None:
    """Names and types of the values under ``key`` (casefolded name -> info); None if the key is missing."""
    path = parse_key(key)
    rv, out = _stdregprov(client, "EnumValues", _key_params(path))
    if rv == RV_KEY_MISSING:
        return None
    if rv == RV_ACCESS_DENIED:
        raise _denied(client, "EnumValues", str(path))
    if rv != RV_OK:
        raise _unexpected(client, "EnumValues", str(path), rv)
    names = [n if isinstance(n, str) else "" for n in wsman.as_list(out.get("sNames"))]
    codes = [wsman.as_int(c) for c in wsman.as_list(out.get("Types"))]
    if len(names) != len(codes):
        raise TransportError(f"{client.host}: EnumValues on {path} gave {len(names)} names and {len(codes)} types")
    return {n.casefold(): ValueInfo(n, TYPE_CODES.get(c or 0) if c is not None else None, c or 0)
            for n, c in zip(names, codes, strict=True)}


def enum_keys(client: WinRMClient, key: str) -> list[str] | None:
    """Subkey names of ``key``; None if the key is missing."""
    path = parse_key(key)
    rv, out = _stdregprov(client, "EnumKey", _key_params(path))
    if rv == RV_KEY_MISSING:
        return None
    if rv == RV_ACCESS_DENIED:
        raise _denied(client, "EnumKey", str(path))
    if rv != RV_OK:
        raise _unexpected(client, "EnumKey", str(path), rv)
    return [n for n in wsman.as_list(out.get("sNames")) if isinstance(n, str)]


def key_exists(client: WinRMClient, key: str) -> bool:
    path = parse_key(key)
    if not path.subkey:
        return True
    names = enum_keys(client, str(path.parent))
    return names is not None and path.leaf.casefold() in {n.casefold() for n in names}


def _to_registry_value(type_: RegistryType, raw: wsman.Value) -> RegistryValue:
    if type_ in ("string", "expandstring"):
        return RegistryValue(type_, wsman.as_str(raw) or "")
    if type_ == "multistring":
        return RegistryValue(type_, [v if isinstance(v, str) else "" for v in wsman.as_list(raw)])
    if type_ in ("dword", "qword"):
        number = wsman.as_int(raw)
        if number is None:
            raise TransportError(f"the host returned no number for a {type_} value")
        return RegistryValue(type_, number)
    if type_ == "binary":
        return RegistryValue(type_, bytes(wsman.as_int(b) or 0 for b in wsman.as_list(raw)))
    return RegistryValue("none", None)


class _Mismatch:
    """The value exists but has another type than the method asked for."""


_MISMATCH = _Mismatch()


def _get_typed(client: WinRMClient, path: RegistryPath, name: str,
               type_: RegistryType) -> RegistryValue | _Mismatch | None:
    method, out_param = _GET[type_]
    params = _key_params(path) | {"sValueName": name}
    rv, out = _stdregprov(client, method, params)
    what = f"{path}\\{name}"
    if rv == RV_OK:
        return _to_registry_value(type_, out.get(out_param))
    if rv in (RV_VALUE_MISSING, RV_KEY_MISSING):
        return None
    if rv == RV_TYPE_MISMATCH:
        return _MISMATCH
    if rv == RV_ACCESS_DENIED:
        raise _denied(client, method, what)
    raise _unexpected(client, method, what, rv)


def read_value(client: WinRMClient, key: str, name: str,
               type_hint: RegistryType | None = None) -> RegistryValue | None:
    """A value's type and data, None when it (or its key) does not exist.

    With a type hint: one call of that type's method; on a type mismatch, EnumValues tells the real type
    and the matching method reads it. Without a hint: EnumValues first (there is no typeless Get)."""
    path = parse_key(key)
    if type_hint is not None and type_hint != "none":
        found = _get_typed(client, path, name, type_hint)
        if not isinstance(found, _Mismatch):
            return found
    return read_listed_value(client, path, name, enum_values(client, str(path)))


def read_listed_value(client: WinRMClient, path: RegistryPath, name: str,
                      infos: Mapping[str, ValueInfo] | None) -> RegistryValue | None:
    """Read ``name`` given its key's EnumValues listing (None = the key is missing)."""
    if infos is None:
        return None
    info = infos.get(name.casefold())
    if info is None:
        # The unnamed default value is not listed by EnumValues on older Windows; it is nearly always REG_SZ.
        if name == "":
            found = _get_typed(client, path, name, "string")
            return None if isinstance(found, _Mismatch) else found
        return None
    if info.type is None:
        raise KbfixError(f"{client.host}: {path}\\{name} has registry type {info.type_code}, "
                         "which StdRegProv cannot read")
    if info.type == "none":
        return RegistryValue("none", None)
    found = _get_typed(client, path, info.name, info.type)
    if isinstance(found, _Mismatch):
        raise TransportError(f"{client.host}: {path}\\{name} changed type while it was being read")
    return found


def read_values(client: WinRMClient, key: str, names: Iterable[str]) -> dict[str, RegistryValue | None]:
    """Several values of one key: one EnumValues answers which exist and their types, then one typed
    read per existing value. Keyed by the requested name."""
    path = parse_key(key)
    infos = enum_values(client, str(path))
    return {name: read_listed_value(client, path, name, infos) for name in names}


# --- writes ----------------------------------------------------------------------------------------


def _set_params(path: RegistryPath, name: str, value: RegistryValue) -> tuple[str, dict[str, wsman.ParamValue]]:
    method, param = _SET[value.type]
    data = value.data
    params = _key_params(path) | {"sValueName": name}
    if value.type in ("string", "expandstring"):
        if not isinstance(data, str):
            raise ArgumentError("data", f"a {value.type} value needs a string")
        params[param] = data
    elif value.type == "multistring":
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise ArgumentError("data", "a multistring value needs a list of strings")
        params[param] = list(data)
    elif value.type in ("dword", "qword"):
        bits = 32 if value.type == "dword" else 64
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data < 2 ** bits:
            raise ArgumentError("data", f"a {value.type} value needs an integer from 0 to {2 ** bits - 1}")
        params[param] = data
    else:
        if not isinstance(data, bytes):
            raise ArgumentError("data", "a binary value needs bytes")
        params[param] = data
    return method, params


def _check_write(client: WinRMClient, method: str, what: str, rv: int) -> None:
    if rv == RV_OK:
        return
    if rv == RV_ACCESS_DENIED:
        raise _denied(client, method, what)
    if rv == RV_KEY_MISSING:
        raise NotFoundError(f"{client.host}: registry key of {what} does not exist (ask to create it)")
    raise _unexpected(client, method, what, rv)


def _write_once(client: WinRMClient, write: Callable[[], int], is_done: Callable[[], bool],
                method: str, what: str) -> None:
    """Run a write; if the connection broke after sending, read back first and repeat it only if the
    host did not apply it. The repeat can break the same way (on a network dropping one request in ten it
    does), so this goes on for as many rounds as the client retries a read."""
    attempt = 0
    while True:
        try:
            rv = write()
            break
        except AmbiguousWriteError as exc:
            if attempt >= client.settings.retries:
                raise
            attempt += 1
            client.log(LOG_STEPS, f"{client.host}: {exc}; reading {what} back before deciding")
            if is_done():
                client.log(LOG_STEPS, f"{client.host}: {what} was applied before the connection broke")
                return
    _check_write(client, method, what, rv)


def create_key(client: WinRMClient, key: str) -> None:
    """Create ``key`` and any missing parents (StdRegProv.CreateKey succeeds on an existing key)."""
    path = parse_key(key)
    _write_once(client, lambda: _stdregprov(client, "CreateKey", _key_params(path), write=True)[0],
                lambda: key_exists(client, str(path)), "CreateKey", str(path))


def _is_set(client: WinRMClient, key: str, name: str, value: RegistryValue) -> bool:
    return same_value(value, read_value(client, key, name, value.type))


# Room for what sealing adds around the envelope (NTLM/Kerberos multipart headers and signature) and for the
# header fields that vary between requests: the bound must hold for the message as it goes on the wire.
_ENVELOPE_MARGIN = 2048


def check_write(client: WinRMClient, key: str, name: str, value: RegistryValue,
                stack_version: str | None = None) -> None:
    """Refuse, before any request, a value the registry or the host's WinRM could not take: the request that
    would carry it is built and measured against MaxEnvelopeSizekb (an oversized one is refused by HTTP.sys
    with 413 after nothing was done, or worse after CreateKey was)."""
    check_registry_value(name, value)
    if value.type == "none" or (value.type == "multistring" and not value.data):
        # Written by reg.exe through the cmd shell: a few hundred bytes, but the key and the name go on a
        # cmd.exe line, which cannot carry '"' or '%' (escape.cmd_quote): refused here, before CreateKey.
        escape.cmd_quote(str(parse_key(key)), "path")
        escape.cmd_quote(name, "name")
        return
    path = parse_key(key)
    method, params = _set_params(path, name, value)
    payload = wsman.invoke_request(STDREGPROV, method, params).to_xml(
        client.endpoint, wsman.new_message_id(), client.settings.operation_timeout)
    limit = wsman.max_envelope_size(stack_version or client.stack_version)
    if len(payload) + _ENVELOPE_MARGIN > limit:
        version = stack_version or client.stack_version or "unknown, so before 3.0 is assumed"
        raise ArgumentError("data", f"{path}\\{name}: writing this {value.type} takes a {len(payload)}-byte WS-Man "
                                    f"request; the host's WinRM ({version}) accepts at most {limit} bytes "
                                    f"(MaxEnvelopeSizekb {limit // 1024}). Store large data in a file instead")


def set_value(client: WinRMClient, key: str, name: str, value: RegistryValue, *,
              create: bool = False, write_none: Callable[[str, str], None] | None = None) -> RegistryChange:
    """Make ``key\\name`` hold ``value``; read back and verify. Unchanged values are not written."""
    path = parse_key(key)
    what = f"{path}\\{name}"
    check_write(client, key, name, value)  # before the first request: never a key without its value
    if value.type != "none":
        method, params = _set_params(path, name, value)
    before = read_value(client, str(path), name, value.type)
    if same_value(value, before):
        return RegistryChange(False, before, before)
    if create:
        create_key(client, str(path))
    applied = partial(_is_set, client, str(path), name, value)
    if value.type == "none":
        # StdRegProv has no Set method for REG_NONE: the caller passes a writer that uses reg.exe (present
        # since XP) through the cmd shell, which builds on this module and so cannot be imported here.
        if write_none is None:
            raise ArgumentError("type", "REG_NONE values need the cmd shell (reg.exe) to be written")
        none_writer = write_none

        def write_reg_none() -> int:
            none_writer(str(path), name)
            return RV_OK

        _write_once(client, write_reg_none, applied, "reg add", what)
    else:
        _write_once(client, lambda: _stdregprov(client, method, params, write=True)[0], applied, method, what)
    after = read_value(client, str(path), name, value.type)
    if not same_value(value, after):
        raise WriteVerificationError(f"{client.host}: wrote {what} = {_show(value)} but read back {_show(after)}")
    client.log(LOG_STEPS, f"{client.host}: set {what} to {_show(value)} (was {_show(before)})")
    return RegistryChange(True, before, after)


def delete_value(client: WinRMClient, key: str, name: str) -> RegistryChange:
    """Remove ``key\\name``; a value that is already absent is not an error (nothing changes)."""
    path = parse_key(key)
    what = f"{path}\\{name}"
    before = read_value(client, str(path), name)
    if before is None:
        return RegistryChange(False, None, None)
    params = _key_params(path) | {"sValueName": name}

    def write() -> int:
        rv = _stdregprov(client, "DeleteValue", params, write=True)[0]
        return RV_OK if rv in (RV_VALUE_MISSING, RV_KEY_MISSING) else rv

    _write_once(client, write, lambda: read_value(client, str(path), name) is None, "DeleteValue", what)
    after = read_value(client, str(path), name)
    if after is not None:
        raise WriteVerificationError(f"{client.host}: deleted {what} but it still reads {_show(after)}")
    client.log(LOG_STEPS, f"{client.host}: deleted {what} (was {_show(before)})")
    return RegistryChange(True, before, None)


def _show(value: RegistryValue | None) -> str:
    if value is None:
        return "(absent)"
    data = value.data.hex() if isinstance(value.data, bytes) else value.data
    return f"{data!r} ({value.type})"


# ---------------------------------------------------------------------------------------------------
# Queries (WQL, or plain enumeration + client-side filter on WinRM 1.0)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Query:
    """``SELECT props FROM class [WHERE prop='a' OR prop='b']``, built once so the WQL and the client-side
    filter used without WQL (WinRM 1.0) cannot disagree."""

    class_name: str
    properties: tuple[str, ...] = ()  # () = SELECT *
    match_property: str | None = None
    match_values: tuple[str, ...] = ()
    namespace: str = "root/cimv2"

    def __post_init__(self) -> None:
        for ident in (self.class_name, *self.properties, *([self.match_property] if self.match_property else [])):
            if not _IDENT.fullmatch(ident):
                raise ArgumentError("query", f"{ident!r} is not a WMI class or property name")

    def wql(self) -> str:
        columns = ",".join(self.properties) if self.properties else "*"
        # Identifiers are checked in __post_init__ and values go through escape.wql_string.
        text = f"SELECT {columns} FROM {self.class_name}"  # noqa: S608
        if self.match_property and self.match_values:
            text += " WHERE " + escape.wql_or(self.match_property, self.match_values)
        return text

    def matches(self, obj: wsman.WmiObject) -> bool:
        if not self.match_property or not self.match_values:
            return True
        # WQL string comparison is case-insensitive.
        actual = wsman.as_str(obj.get(self.match_property))
        return actual is not None and actual.casefold() in {v.casefold() for v in self.match_values}


# A filtered query every WMI host answers: a host that refuses even this refuses filters as such (WinRM 1.0).
_FILTER_PROBE = "SELECT Version FROM Win32_OperatingSystem"
_PROBE_LOCK = threading.Lock()


def _filters_refused(client: WinRMClient) -> bool:
    """Whether the host refuses WQL filters, asked after one query's filter fault. That fault alone decides
    nothing: the query may be at fault (a bad WHERE, a class the host lacks), so the host is marked filter-less
    only when it also refuses ``_FILTER_PROBE``, once per client; the answer sticks either way."""
    with _PROBE_LOCK:  # concurrent queries (os_details) failing together probe once
        if client.supports_filter is None:
            try:
                client.enumerate(wsman.wmi_resource("root/cimv2", "*"), _FILTER_PROBE)
                client.supports_filter = True
            except FilterNotSupportedError:
                client.supports_filter = False
    return client.supports_filter is False


def _filtered(client: WinRMClient, namespace: str, class_name: str, wql: str) -> list[wsman.WmiObject]:
    """One WQL enumeration; a class the namespace lacks is named in the error."""
    try:
        items = client.enumerate(wsman.wmi_resource(namespace, "*"), wql)
    except ClassNotFoundError as exc:
        raise ClassNotFoundError(f"{client.host}: {namespace} has no class {class_name}: {exc}", code=exc.code,
                                 subcode=exc.subcode, action=exc.action) from None
    client.supports_filter = True
    return items


def query(client: WinRMClient, q: Query) -> list[wsman.WmiObject]:
    if client.supports_filter is not False:
        try:
            return _filtered(client, q.namespace, q.class_name, q.wql())
        except FilterNotSupportedError:
            if not _filters_refused(client):
                raise
            client.log(LOG_STEPS, f"{client.host}: WQL filters are not supported (WinRM 1.0): enumerating instead")
    return [o for o in client.enumerate(wsman.wmi_resource(q.namespace, q.class_name)) if q.matches(o)]


def run_concurrently(client: WinRMClient, calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent calls at once, bounded by the client's in-flight limit; the first error wins."""
    if len(calls) <= 1:
        return [c() for c in calls]
    with ThreadPoolExecutor(max_workers=min(len(calls), client.max_in_flight)) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


# --- hotfixes ----------------------------------------------------------------------------------------


def qfe_hotfixes(client: WinRMClient, hotfix_ids: Iterable[str]) -> dict[str, list[wsman.WmiObject]]:
    """Win32_QuickFixEngineering records for these ids (one WQL with an OR of ids). Keyed by upper-case
    id; ids without a record are absent. On XP/2003 this class reads the ``Updates\\<product>\\SPn``
    registry records; on Vista and later it lists CBS packages only."""
    ids = tuple(dict.fromkeys(i.strip().upper() for i in hotfix_ids if i.strip()))
    if not ids:
        return {}
    q = Query("Win32_QuickFixEngineering", ("HotFixID", "ServicePackInEffect", "Description", "InstalledOn"),
              "HotFixID", ids)
    found: dict[str, list[wsman.WmiObject]] = {}
    for obj in query(client, q):
        hotfix = (wsman.as_str(obj.get("HotFixID")) or "").strip().upper()
        if hotfix in ids:
            found.setdefault(hotfix, []).append(obj)
    return found


_UPDATES_RECORD = re.compile(r"HKLM\\SOFTWARE\\Microsoft\\Updates\\[^\\]+\\(?P<sp>[^\\]+)\\(?P<id>[^\\]+)", re.I)
_HOTFIX_RECORD = re.compile(r"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\(?P<id>[^\\]+)", re.I)


@dataclass(frozen=True)
class QfeRecord:
    """A legacy hotfix record key that Win32_QuickFixEngineering reports as an instance."""

    hotfix_id: str  # upper case
    service_pack: str | None  # the SPn of an Updates\<product>\SPn\KB record


def qfe_record(os: OsFacts, key: str) -> QfeRecord | None:
    r"""On NT 4.0 to Server 2003 the QFE provider's instances *are* the registry records under
    ``...\Windows NT\CurrentVersion\Hotfix\<id>`` and ``...\Updates\<product>\<SPn>\<id>`` (HotFixID = the
    key name, ServicePackInEffect = SPn), so one QFE query answers whether such keys exist. The product
    part is not in the instance; a KB number belongs to one product. Vista and later list CBS only."""
    if int(os.version.split(".")[0]) >= 6:
        return None
    path = str(parse_key(key))
    match = _UPDATES_RECORD.fullmatch(path)
    if match:
        return QfeRecord(match["id"].upper(), match["sp"].upper())
    match = _HOTFIX_RECORD.fullmatch(path)
    return QfeRecord(match["id"].upper(), None) if match else None


def qfe_has_record(found: Mapping[str, list[wsman.WmiObject]], record: QfeRecord) -> bool:
    for obj in found.get(record.hotfix_id, []):
        sp = (wsman.as_str(obj.get("ServicePackInEffect")) or "").strip().upper()
        if record.service_pack is None or sp == record.service_pack:
            return True
    return False


# --- files -----------------------------------------------------------------------------------------

_FILE_PROPERTIES = ("Name", "Version", "FileSize", "LastModified")
_FILES_PER_QUERY = 50  # keeps each WQL (and its envelope) far below MaxEnvelopeSize


def _file_from(path: str, obj: wsman.WmiObject | None) -> FileFacts:
    if obj is None:
        return FileFacts(path=path, exists=False)
    version = wsman.as_str(obj.get("Version")) or None
    return FileFacts(path=path, exists=True, version=version, size=wsman.as_int(obj.get("FileSize")),
                     modified=wsman.as_datetime(obj.get("LastModified")))


def file_facts(client: WinRMClient, paths: Sequence[str]) -> dict[str, FileFacts]:
    """Facts for many files in one CIM_DataFile query (keyed by ``path.casefold()``). Files the host does
    not return do not exist. Without WQL (WinRM 1.0) each file is a Get by its ``Name`` key, because
    enumerating CIM_DataFile would list every file on the disk."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    for p in unique:
        escape.wql_string(p, "path")  # refuse unsendable paths before any request
    if client.supports_filter is not False:
        try:
            return _files_by_wql(client, unique)
        except FilterNotSupportedError:
            if not _filters_refused(client):
                raise
            client.log(LOG_STEPS, f"{client.host}: WQL filters are not supported (WinRM 1.0): one Get per file")
    facts = run_concurrently(client, [partial(_file_by_get, client, p) for p in unique])
    return {f.path.casefold(): f for f in facts}


def _files_by_wql(client: WinRMClient, paths: list[str]) -> dict[str, FileFacts]:
    result: dict[str, FileFacts] = {}
    for start in range(0, len(paths), _FILES_PER_QUERY):
        chunk = tuple(paths[start:start + _FILES_PER_QUERY])
        # Selected properties: the reply is w:XmlFragment items, whose LastModified is an unqualified Datetime.
        items = _filtered(client, "root/cimv2", "CIM_DataFile", Query("CIM_DataFile", _FILE_PROPERTIES, "Name",
                                                                      chunk).wql())
        by_name = {(wsman.as_str(o.get("Name")) or "").casefold(): o for o in items}
        for p in chunk:
            result[p.casefold()] = _file_from(p, by_name.get(p.casefold()))
    return result


def _file_by_get(client: WinRMClient, path: str) -> FileFacts:
    try:
        obj = client.get(wsman.wmi_resource("root/cimv2", "CIM_DataFile"), {"Name": path})
    except InstanceNotFoundError:
        return FileFacts(path=path, exists=False)
    return _file_from(path, obj)


# --- OS facts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsDetails:
    facts: OsFacts
    last_boot: datetime.datetime | None
    hostname: str
    system_type: str
    os_architecture: str | None  # Win32_OperatingSystem.OSArchitecture, None before Vista
    domain: str = ""  # Win32_ComputerSystem.Domain (the workgroup when not joined)
    domain_role: int | None = None  # Win32_ComputerSystem.DomainRole


def architecture(version: str, os_architecture: str | None, system_type: str | None) -> Architecture:
    """OSArchitecture exists from Vista (6.0) on; before, Win32_ComputerSystem.SystemType tells the
    architecture of the running OS ("X86-based PC" for 32-bit Windows even on 64-bit hardware)."""
    st = (system_type or "").casefold()
    if "itanium" in st or "ia64" in st or "ia-64" in st:
        return "ia64"
    if os_architecture and int(version.split(".")[0]) >= 6:
        # OSArchitecture is localised ("64-bit", "64 bits"), so look at the digits only.
        if "64" in os_architecture:
            return "x64"
        if "32" in os_architecture:
            return "x86"
    if "x64" in st or "amd64" in st or "em64t" in st:
        return "x64"
    if "x86" in st:
        return "x86"
    raise KbfixError(f"cannot tell the architecture from OSArchitecture={os_architecture!r}, "
                     f"SystemType={system_type!r}")


_OS_QUERY = Query("Win32_OperatingSystem")  # SELECT *: OSArchitecture does not exist before Vista
# The facts module's domain comes from the same instance: one read of Win32_ComputerSystem per host.
_CS_QUERY = Query("Win32_ComputerSystem", ("Name", "SystemType", "Domain", "DomainRole"))


def os_details(client: WinRMClient) -> OsDetails:
    os_items, cs_items = run_concurrently(client, [lambda: query(client, _OS_QUERY), lambda: query(client, _CS_QUERY)])
    if not os_items or not cs_items:
        raise TransportError(f"{client.host}: Win32_OperatingSystem or Win32_ComputerSystem returned nothing")
    osi, csi = os_items[0], cs_items[0]
    version = wsman.as_str(osi.get("Version")) or ""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise TransportError(f"{client.host}: unexpected Win32_OperatingSystem.Version {version!r}")
    os_arch = wsman.as_str(osi.get("OSArchitecture")) if "OSArchitecture" in osi else None
    system_type = wsman.as_str(csi.get("SystemType")) or ""
    facts = OsFacts(
        version=version,
        service_pack=wsman.as_int(osi.get("ServicePackMajorVersion")) or 0,
        architecture=architecture(version, os_arch, system_type),
        product_type=wsman.as_int(osi.get("ProductType")) or 1,
        caption=(wsman.as_str(osi.get("Caption")) or "").strip(),
        r2=(wsman.as_str(osi.get("OtherTypeDescription")) or "").strip().upper() == "R2",
        system_root=wsman.as_str(osi.get("WindowsDirectory")) or "C:\\WINDOWS",
        # Already in this reply (SELECT *): the engine compares it with the fixed files' write times.
        last_boot=wsman.as_datetime(osi.get("LastBootUpTime")),
    )
    return OsDetails(facts, facts.last_boot,
                     wsman.as_str(csi.get("Name")) or wsman.as_str(osi.get("CSName")) or "", system_type, os_arch,
                     wsman.as_str(csi.get("Domain")) or "", wsman.as_int(csi.get("DomainRole")))


def os_facts(client: WinRMClient) -> OsFacts:
    return os_details(client).facts


def last_boot_time(client: WinRMClient) -> datetime.datetime | None:
    items = query(client, Query("Win32_OperatingSystem", ("LastBootUpTime",)))
    return wsman.as_datetime(items[0].get("LastBootUpTime")) if items else None


def win32_shutdown(client: WinRMClient, flags: int) -> int:
    """Win32_OperatingSystem.Win32Shutdown(Flags) on the OS instance (6 = forced reboot). Returns the
    method's ReturnValue. Needs the instance's key (Name), so one enumeration first."""
    items = query(client, Query("Win32_OperatingSystem", ("Name",)))
    if not items:
        raise TransportError(f"{client.host}: no Win32_OperatingSystem instance")
    name = wsman.as_str(items[0].get("Name")) or ""
    out = client.invoke(wsman.wmi_resource("root/cimv2", "Win32_OperatingSystem"), "Win32Shutdown",
                        {"Flags": flags}, selectors={"Name": name}, write=True)
    return wsman.as_int(out.get("ReturnValue")) or 0


# --- pending restart ------------------------------------------------------------------------------

# "article": the indicators the seed articles' installers leave (update.exe / hotfix.exe queue renames,
# wusa stages a CBS package); what an audit of an article needs, at the fewest requests.
# "full": also what other agents leave (Windows Update's RebootRequired, update.exe's volatile key), for the
# facts and reboot modules, which answer "does this host need a restart" whoever asked for it.


def pending_restart(client: WinRMClient, os: OsFacts,
                    scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
    """Whether a restart is pending and which indicators say so; the reads go out together."""
    plan = pending_restart_plan(os, scope)
    workers = max(1, min(len(plan.values) + len(plan.keys), client.max_in_flight))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        value_reads = {(registry_key_id(k), n.casefold()): pool.submit(read_value, client, k, n, t)
                       for k, n, t in plan.values}
        key_reads = {registry_key_id(k): pool.submit(key_exists, client, k) for k in plan.keys}
        values = {k: f.result() for k, f in value_reads.items()}
        keys = {k: f.result() for k, f in key_reads.items()}
    return pending_restart_from(values, keys)
