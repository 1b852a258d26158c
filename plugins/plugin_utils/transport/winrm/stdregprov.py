# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry through WMI's StdRegProv over WS-Man.

Registry view: StdRegProv is invoked with a plain WS-Man Invoke. The ``__ProviderArchitecture`` context
that selects the 32-bit view in DCOM WMI has no representation in a WS-Man Invoke, so every read and write
here sees the provider's **native view** (64-bit on x64 Windows). 32-bit software's keys are reached by
their real path (``HKLM\\SOFTWARE\\Wow6432Node\\...``), which the caller must spell out.

Writes are read back (``WriteVerificationError`` when the host reports something else), and a write whose
connection broke after sending (``AmbiguousWriteError``) is read back before it is repeated, so a value is
never left half-written nor written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

from ...article.model import RegistryType, RegistryValue
from ...errors import (
    AccessDeniedError,
    AmbiguousWriteError,
    ArgumentError,
    KbfixError,
    NotFoundError,
    TransportError,
    WriteVerificationError,
    WSManFaultError,
)
from .. import escape
from ..base import LOG_STEPS, RegistryChange, check_registry_value, same_value
from ..registry_path import RegistryPath, parse_key
from . import replies, wsman
from .client import WinRMClient

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

# ---------------------------------------------------------------------------------------------------
# Registry paths and StdRegProv calls


def _stdregprov(client: WinRMClient, method: str, params: Mapping[str, wsman.ParamValue],
                *, write: bool = False) -> tuple[int, replies.WmiObject]:
    try:
        out = client.invoke(STDREGPROV, method, params, write=write)
    except WSManFaultError as exc:
        if exc.code == wsman.FAULT_ACTION_NOT_SUPPORTED:
            # XP and Server 2003 have no GetQWORDValue / SetQWORDValue: those arrived with Vista.
            raise KbfixError(f"{client.host}: this Windows' StdRegProv has no {method} method "
                             "(QWORD methods exist from Vista / Server 2008 on)") from exc
        raise
    rv = replies.as_int(out.get("ReturnValue"))
    if rv is None:
        raise TransportError(f"{client.host}: StdRegProv.{method} returned no ReturnValue")
    return rv, out


def _key_params(path: RegistryPath) -> dict[str, wsman.ParamValue]:
    return {"hDefKey": path.hdefkey, "sSubKeyName": path.subkey}


def _denied(client: WinRMClient, method: str, what: str) -> AccessDeniedError:
    return AccessDeniedError(f"{client.host}: access denied ({method} on {what})", code=RV_ACCESS_DENIED)


def _unexpected(client: WinRMClient, method: str, what: str, rv: int) -> KbfixError:
    return KbfixError(f"{client.host}: StdRegProv.{method} on {what} returned {rv}")


def _enumerate(client: WinRMClient, method: str, path: RegistryPath) -> replies.WmiObject | None:
    """An ``Enum*`` call's output; None when the key is missing."""
    rv, out = _stdregprov(client, method, _key_params(path))
    if rv == RV_KEY_MISSING:
        return None
    if rv == RV_ACCESS_DENIED:
        raise _denied(client, method, str(path))
    if rv != RV_OK:
        raise _unexpected(client, method, str(path), rv)
    return out


@dataclass(frozen=True)
class ValueInfo:
    name: str  # as the host spells it
    type: RegistryType | None  # None: a type StdRegProv cannot read (REG_LINK, REG_RESOURCE_LIST, ...)
    type_code: int


def enum_values(client: WinRMClient, key: str) -> dict[str, ValueInfo] | None:
    """Names and types of the values under ``key`` (casefolded name -> info); None if the key is missing."""
    path = parse_key(key)
    out = _enumerate(client, "EnumValues", path)
    if out is None:
        return None
    names = [n if isinstance(n, str) else "" for n in replies.as_list(out.get("sNames"))]
    codes = [replies.as_int(c) for c in replies.as_list(out.get("Types"))]
    if len(names) != len(codes):
        raise TransportError(f"{client.host}: EnumValues on {path} gave {len(names)} names and {len(codes)} types")
    return {n.casefold(): ValueInfo(n, TYPE_CODES.get(c or 0) if c is not None else None, c or 0)
            for n, c in zip(names, codes, strict=True)}


def enum_keys(client: WinRMClient, key: str) -> list[str] | None:
    """Subkey names of ``key``; None if the key is missing."""
    out = _enumerate(client, "EnumKey", parse_key(key))
    if out is None:
        return None
    return [n for n in replies.as_list(out.get("sNames")) if isinstance(n, str)]


def key_exists(client: WinRMClient, key: str) -> bool:
    path = parse_key(key)
    if not path.subkey:
        return True
    names = enum_keys(client, str(path.parent))
    return names is not None and path.leaf.casefold() in {n.casefold() for n in names}


def _to_registry_value(type_: RegistryType, raw: replies.Value) -> RegistryValue:
    if type_ in ("string", "expandstring"):
        return RegistryValue(type_, replies.as_str(raw) or "")
    if type_ == "multistring":
        return RegistryValue(type_, [v if isinstance(v, str) else "" for v in replies.as_list(raw)])
    if type_ in ("dword", "qword"):
        number = replies.as_int(raw)
        if number is None:
            raise TransportError(f"the host returned no number for a {type_} value")
        return RegistryValue(type_, number)
    if type_ == "binary":
        return RegistryValue(type_, bytes(replies.as_int(b) or 0 for b in replies.as_list(raw)))
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
        client.settings.endpoint, wsman.new_message_id(), client.settings.operation_timeout)
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
