# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote registry over ``\\pipe\\winreg`` (MS-RRP), as NT 4.0's regedt32 and reg.exe used it.

A value is read with one BaseRegQueryValue, which returns type and data together (unlike StdRegProv there
is no per-type method, so the expected type only matters to the caller). Key handles opened for reading are
kept for the session: a second value of the same key costs one call. They are not closed one by one: the
server frees every context handle of a pipe when the pipe closes (RPC context rundown), so explicit
BaseRegCloseKey calls would only add round trips.
"""

from __future__ import annotations

import datetime
from typing import Any

from ...article.model import RegistryType, RegistryValue
from ...errors import (
    AccessDeniedError,
    ArgumentError,
    KbfixError,
    NotFoundError,
    TransportError,
)
from ..registry_path import RegistryPath, parse_key
from .impacket_lib import NULL, BaseInitiateSystemShutdown, rrp
from .session import Session

# Win32 error codes the registry calls return (winerror.h).
ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_MORE_DATA = 234
ERROR_NO_MORE_ITEMS = 259

REG_TYPES: dict[int, RegistryType] = {
    0: "none", 1: "string", 2: "expandstring", 3: "binary", 4: "dword", 7: "multistring", 11: "qword",
}
REG_CODES: dict[RegistryType, int] = {v: k for k, v in REG_TYPES.items()}
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
_FIRST_READ = 1024  # bytes offered for a value's data; larger values cost one more call (ERROR_MORE_DATA)
# Access masks (winnt.h, MS-RRP 2.2.3): KEY_READ, and KEY_QUERY_VALUE | KEY_SET_VALUE to write values. As
# numbers rather than impacket's names so that this module imports without impacket (transport/requirement.py).
_KEY_READ = 0x20019
_KEY_WRITE = 0x0001 | 0x0002


def decode(type_code: int, data: bytes, what: str) -> RegistryValue:
    """Raw registry data as the model's typed value."""
    type_ = REG_TYPES.get(type_code)
    if type_ is None:
        raise KbfixError(f"{what} has registry type {type_code}, which kbfix.windows does not read")
    if type_ in ("string", "expandstring"):
        # Data may or may not end with its NUL; anything after the first NUL is not part of the string.
        return RegistryValue(type_, data.decode("utf-16-le", "replace").split("\0", 1)[0])
    if type_ == "multistring":
        text = data.decode("utf-16-le", "replace").rstrip("\0")
        return RegistryValue(type_, text.split("\0") if text else [])
    if type_ == "dword":
        return RegistryValue(type_, int.from_bytes(data[:4].ljust(4, b"\0"), "little"))
    if type_ == "qword":
        return RegistryValue(type_, int.from_bytes(data[:8].ljust(8, b"\0"), "little"))
    if type_ == "binary":
        return RegistryValue(type_, bytes(data))
    return RegistryValue("none", None)


def _string(data: Any, type_: str) -> str:
    if not isinstance(data, str):
        raise ArgumentError("data", f"a {type_} value needs a string")
    if "\0" in data:
        raise ArgumentError("data", f"a {type_} value cannot contain a NUL character")
    return data


def encode(value: RegistryValue) -> tuple[int, bytes]:
    """The type code and raw data to write; bad data raises ``ArgumentError`` before any request."""
    data = value.data
    if value.type in ("string", "expandstring"):
        raw = (_string(data, value.type) + "\0").encode("utf-16-le")
    elif value.type == "multistring":
        if not isinstance(data, list):
            raise ArgumentError("data", "a multistring value needs a list of strings")
        items = [_string(item, "multistring") for item in data]
        if any(item == "" for item in items):
            # An empty string inside REG_MULTI_SZ ends the list for every reader.
            raise ArgumentError("data", "a multistring value cannot hold an empty string")
        raw = "".join(item + "\0" for item in items).encode("utf-16-le") + b"\0\0"
    elif value.type in ("dword", "qword"):
        size = 4 if value.type == "dword" else 8
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data < 2 ** (8 * size):
            raise ArgumentError("data", f"a {value.type} value needs an integer from 0 to {2 ** (8 * size) - 1}")
        raw = data.to_bytes(size, "little")
    elif value.type == "binary":
        if not isinstance(data, bytes):
            raise ArgumentError("data", "a binary value needs bytes")
        raw = data
    elif value.type == "none":
        raw = b""
    else:
        raise ArgumentError("type", f"unknown registry type {value.type!r}")
    return REG_CODES[value.type], raw


def show(value: RegistryValue | None) -> str:
    if value is None:
        return "(absent)"
    data = value.data.hex() if isinstance(value.data, bytes) else value.data
    return f"{data!r} ({value.type})"


class RemoteRegistry:
    """winreg calls on one session. Keys are ``HKLM\\...`` strings (``registry_path.parse_key`` syntax)."""

    # impacket's request class of each hive (looked up at use: the module imports without impacket).
    _HIVES = {"HKLM": "OpenLocalMachine", "HKU": "OpenUsers", "HKCR": "OpenClassesRoot",
              "HKCU": "OpenCurrentUser", "HKCC": "OpenCurrentConfig"}

    def __init__(self, session: Session) -> None:
        self.session = session
        self.host = session.host
        self._handles: dict[tuple[str, str], Any] = {}  # (mode, key id) -> context handle

    @property
    def dce(self) -> Any:
        return self.session.pipe("winreg", rrp.MSRPC_UUID_RRP)

    def _check(self, code: int, call: str, what: str) -> None:
        if code == ERROR_SUCCESS:
            return
        if code == ERROR_ACCESS_DENIED:
            raise AccessDeniedError(f"{self.host}: access denied ({call} on {what})", code=ERROR_ACCESS_DENIED)
        if code == ERROR_FILE_NOT_FOUND:
            raise NotFoundError(f"{self.host}: {what} does not exist")
        raise TransportError(f"{self.host}: {call} on {what} returned Win32 error {code}")

    def hive(self, path: RegistryPath) -> Any:
        cached = self._handles.get(("hive", path.hive))
        if cached is None:
            request = getattr(rrp, self._HIVES[path.hive])()
            request["ServerName"] = rrp.NULL
            request["samDesired"] = rrp.MAXIMUM_ALLOWED
            code, response = self.session.call(self.dce, request, path.hive)
            self._check(code, type(request).__name__, path.hive)
            cached = self._handles[("hive", path.hive)] = response["phKey"]
        return cached

    def open(self, key: str, *, write: bool = False) -> Any | None:
        """A handle of ``key`` (None when it does not exist)."""
        path = parse_key(key)
        mode = "write" if write else "read"
        ident = (mode, str(path).casefold())
        if ident in self._handles:
            return self._handles[ident]
        if not path.subkey:
            return self.hive(path)
        request = rrp.BaseRegOpenKey()
        request["hKey"] = self.hive(path)
        request["lpSubKey"] = path.subkey + "\0"
        request["dwOptions"] = 0
        request["samDesired"] = _KEY_WRITE if write else _KEY_READ
        code, response = self.session.call(self.dce, request, str(path))
        if code == ERROR_FILE_NOT_FOUND:
            return None
        self._check(code, "BaseRegOpenKey", str(path))
        self._handles[ident] = response["phkResult"]
        return self._handles[ident]

    def forget(self, key: str) -> None:
        folded = str(parse_key(key)).casefold()
        for ident in [i for i in self._handles if i[1] == folded]:
            del self._handles[ident]

    # --- reads -------------------------------------------------------------------------------------

    def query(self, handle: Any, key: str, name: str) -> RegistryValue | None:
        what = f"{key}\\{name}"
        size = _FIRST_READ
        for _attempt in range(3):  # a value growing between the two calls gets one more try
            request = rrp.BaseRegQueryValue()
            request["hKey"] = handle
            request["lpValueName"] = name + "\0"
            request["lpData"] = b"\0" * size
            request["lpcbData"] = size
            request["lpcbLen"] = size
            code, response = self.session.call(self.dce, request, what)
            if code == ERROR_MORE_DATA and response is not None:
                size = int(response["lpcbData"])
                continue
            if code == ERROR_FILE_NOT_FOUND:
                return None
            self._check(code, "BaseRegQueryValue", what)
            length = int(response["lpcbData"])
            value = decode(int(response["lpType"]), b"".join(response["lpData"])[:length], what)
            self.session.log_payload(f"{what} = {show(value)}")
            return value
        raise TransportError(f"{self.host}: {what} kept growing while it was read")

    def key_write_time(self, key: str) -> datetime.datetime | None:
        """The key's last-write time (BaseRegQueryInfoKey's lpftLastWriteTime, a FILETIME: 100 ns since
        1601, UTC); None when the key does not exist. StdRegProv has no counterpart."""
        handle = self.open(key)
        if handle is None:
            return None
        request = rrp.BaseRegQueryInfoKey()
        request["hKey"] = handle
        # No class wanted: an empty name still carries its NUL (Samba refuses a zero-length [string] array).
        request["lpClassIn"] = "\x00"
        code, response = self.session.call(self.dce, request, key)
        self._check(code, "BaseRegQueryInfoKey", key)
        stamp = response["lpftLastWriteTime"]
        ticks = (int(stamp["dwHighDateTime"]) << 32) | int(stamp["dwLowDateTime"])
        return _FILETIME_EPOCH + datetime.timedelta(microseconds=ticks // 10)

    def read_value(self, key: str, name: str) -> RegistryValue | None:
        handle = self.open(key)
        return None if handle is None else self.query(handle, key, name)

    def enum_keys(self, key: str) -> list[str] | None:
        handle = self.open(key)
        if handle is None:
            return None
        names: list[str] = []
        while True:
            request = rrp.BaseRegEnumKey()
            request["hKey"] = handle
            request["dwIndex"] = len(names)
            request.fields["lpNameIn"].fields["MaximumLength"] = 1024
            request.fields["lpNameIn"].fields["Data"].fields["Data"].fields["MaximumCount"] = 512
            request["lpClassIn"] = " " * 64
            request["lpftLastWriteTime"] = rrp.NULL
            code, response = self.session.call(self.dce, request, f"{key} #{len(names)}")
            if code == ERROR_NO_MORE_ITEMS:
                return names
            self._check(code, "BaseRegEnumKey", key)
            names.append(str(response["lpNameOut"]).rstrip("\0"))

    # --- writes ------------------------------------------------------------------------------------

    def create(self, key: str) -> list[str]:
        """Create ``key`` and missing parents, one level at a time; returns the keys created (outermost
        first) so a failed write can remove exactly those again."""
        path = parse_key(key)
        missing: list[RegistryPath] = []
        probe = path
        while probe.subkey and self.open(str(probe)) is None:
            missing.insert(0, probe)
            probe = probe.parent
        created: list[str] = []
        for level in missing:
            request = rrp.BaseRegCreateKey()
            request["hKey"] = self.hive(level)
            request["lpSubKey"] = level.subkey + "\0"
            request["lpClass"] = rrp.NULL
            request["dwOptions"] = 0  # REG_OPTION_NON_VOLATILE
            request["samDesired"] = _KEY_WRITE
            request["lpSecurityAttributes"] = rrp.NULL
            request["lpdwDisposition"] = rrp.REG_CREATED_NEW_KEY
            code, response = self.session.call(self.dce, request, str(level))
            try:
                self._check(code, "BaseRegCreateKey", str(level))
            except KbfixError:
                self.remove_keys(created)
                raise
            created.append(str(level))
            self._handles[("write", str(level).casefold())] = response["phkResult"]
        return created

    def remove_keys(self, keys: list[str]) -> None:
        """Delete keys this module created (innermost first); a failure is logged, the first error stays."""
        for key in reversed(keys):
            path = parse_key(key)
            self.forget(key)
            request = rrp.BaseRegDeleteKey()
            request["hKey"] = self.hive(path)
            request["lpSubKey"] = path.subkey + "\0"
            code, _reply = self.session.call(self.dce, request, key)
            if code not in (ERROR_SUCCESS, ERROR_FILE_NOT_FOUND):
                self.session.log_step(f"{self.host}: could not remove the key {key} again (error {code})")

    def set(self, key: str, name: str, type_code: int, raw: bytes) -> None:
        handle = self.open(key, write=True)
        if handle is None:
            raise NotFoundError(f"{self.host}: registry key {key} does not exist (ask to create it)")
        request = rrp.BaseRegSetValue()
        request["hKey"] = handle
        request["lpValueName"] = name + "\0"
        request["dwType"] = type_code
        request["lpData"] = raw
        request["cbData"] = len(raw)
        code, _reply = self.session.call(self.dce, request, f"{key}\\{name}")
        self._check(code, "BaseRegSetValue", f"{key}\\{name}")

    def delete(self, key: str, name: str) -> bool:
        """Delete a value; False when it (or its key) was already gone."""
        handle = self.open(key, write=True)
        if handle is None:
            return False
        request = rrp.BaseRegDeleteValue()
        request["hKey"] = handle
        request["lpValueName"] = name + "\0"
        code, _reply = self.session.call(self.dce, request, f"{key}\\{name}")
        if code == ERROR_FILE_NOT_FOUND:
            return False
        self._check(code, "BaseRegDeleteValue", f"{key}\\{name}")
        return True

    def shutdown(self, message: str, delay: int, *, reboot: bool = True) -> None:
        """BaseInitiateSystemShutdown (opnum 24: what the InitiateSystemShutdown API, which the NT 4.0 Resource
        Kit's shutdown.exe calls, sends to a remote machine): force applications closed, restart after
        ``delay`` seconds, show ``message`` to logged-on users."""
        request = BaseInitiateSystemShutdown()
        request["ServerName"] = rrp.NULL
        if message:
            request["lpMessage"] = message + "\0"  # an RRP_UNICODE_STRING counts its terminating NUL
        else:
            request["lpMessage"] = NULL
        request["dwTimeout"] = delay
        request["bForceAppsClosed"] = 1
        request["bRebootAfterShutdown"] = 1 if reboot else 0
        code, _reply = self.session.call(self.dce, request, f"delay {delay}s")
        self._check(code, "BaseInitiateSystemShutdown", "the host")
