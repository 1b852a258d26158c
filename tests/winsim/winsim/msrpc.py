"""DCE/RPC behind the NT 4.0 face's named pipes: ``\\pipe\\winreg`` (MS-RRP) and ``\\pipe\\svcctl`` (MS-SCMR).

impacket's SMB server hands a named pipe to a loopback TCP socket (one connection per pipe open); this module
is what answers there. Each connection is one DCE/RPC association: bind (NDR 2.0 only, no DCE/RPC-level
authentication: the SMB session already authenticated the caller, which is how clients talk to NT 4.0 over
``ncacn_np``), requests (fragments reassembled), responses fragmented to the client's ``max_rfrag``, faults
``nca_s_op_rng_error`` for an opnum this module does not serve. impacket's own ``DCERPCServer`` serves one
client at a time and copies request fields into its reply headers (``alloc_hint``, ``cancel_count``), so
only its NDR structures are used here.

Registry semantics (``WinReg``), as ``RegXxx`` behave on NT 4.0 for the Administrator:

* Handles: ``OpenLocalMachine`` / ``OpenUsers`` / ``OpenClassesRoot`` / ``OpenCurrentUser``, ``OpenKey`` and
  ``CreateKey`` give a handle to a key path with the access it was opened for; a key the machine's ACL denies
  is ERROR_ACCESS_DENIED (5), writing through a handle opened without ``KEY_SET_VALUE`` / ``KEY_CREATE_SUB_KEY``
  too. Unknown handle: ERROR_INVALID_HANDLE (6). A missing key or value: ERROR_FILE_NOT_FOUND (2).
* ``QueryValue`` / ``EnumValue``: a NULL data buffer asks for the size; a buffer too small is ERROR_MORE_DATA
  (234) with the size needed. Strings are UTF-16LE with their terminating NUL(s). ``EnumKey`` lists subkeys in
  case-insensitive alphabetical order (the registry keeps them sorted), ``EnumValue`` in the order values were
  written; past the end ERROR_NO_MORE_ITEMS (259).
* ``SetValue`` stores the seven types winsim's registry models (REG_NONE, SZ, EXPAND_SZ, BINARY, DWORD,
  MULTI_SZ, QWORD); another type number, or a DWORD/QWORD of the wrong length, is ERROR_INVALID_PARAMETER
  (87) -- Windows would store those bytes as they are (a limit of the model, stated here).
* ``BaseInitiateSystemShutdown[Ex]``: ``bRebootAfterShutdown`` restarts the machine after ``dwTimeout``
  seconds (``Host.reboot``: down for ``reboot_seconds``, PendingFileRenameOperations applied, a new boot time),
  else it powers off; ERROR_SHUTDOWN_IN_PROGRESS (1115) while one is scheduled. ``BaseAbortSystemShutdown``
  cancels one that has not begun, else ERROR_NO_SHUTDOWN_IN_PROGRESS (1116). NT 4.0 has no
  ``\\pipe\\InitShutdown`` (that came with XP), so clients fall back to winreg, as ``net rpc shutdown`` does.

Service control (``SvcCtl``): services are the keys under ``HKLM\\SYSTEM\\CurrentControlSet\\Services``.
``CreateServiceW`` writes Type, Start, ErrorControl, ImagePath (REG_EXPAND_SZ), DisplayName, ObjectName
(ERROR_SERVICE_EXISTS 1073 when the key exists); ``OpenServiceW`` of a missing one is
ERROR_SERVICE_DOES_NOT_EXIST (1060); ``DeleteService`` removes the key at once (Windows waits for the last
handle; a second delete is ERROR_SERVICE_MARKED_FOR_DELETE 1072). ``StartServiceW`` runs the image path as a
command line through winsim's cmd (``Host.start_process`` in ``%SystemRoot%\\system32``): that is how
``%COMSPEC% /C x.bat`` and a hotfix package staged through ADMIN$ run. Such a program never reports to the
SCM, so it is not a real service: the real SCM waits 30 s and answers ERROR_SERVICE_REQUEST_TIMEOUT (1053);
winsim answers 1053 at once, after the program has run (a program still waiting for input, like an installer
wizard, is ended), and the service is STOPPED. An image whose program does not exist is ERROR_FILE_NOT_FOUND
(2), a running service ERROR_SERVICE_ALREADY_RUNNING (1056).
"""

from __future__ import annotations

import datetime as dt
import logging
import ntpath
import secrets
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any

from impacket.dcerpc.v5 import lsad, rpcrt, rrp, scmr, srvs
from impacket.dcerpc.v5.dtypes import BOOLEAN, DWORD, NULL
from impacket.dcerpc.v5.ndr import NDRCALL
from impacket.uuid import uuidtup_to_bin

log = logging.getLogger("winsim.msrpc")

NDR_SYNTAX = uuidtup_to_bin(("8a885d04-1ceb-11c9-9fe8-08002b104860", "2.0"))
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_PROTO_ERROR = 0x1C01000B
MAX_FRAGMENT = 4280

ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_INVALID_PARAMETER = 87
ERROR_INVALID_NAME = 123
ERROR_MORE_DATA = 234
ERROR_NO_MORE_ITEMS = 259
ERROR_SERVICE_REQUEST_TIMEOUT = 1053
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_MARKED_FOR_DELETE = 1072
ERROR_SERVICE_EXISTS = 1073
ERROR_SHUTDOWN_IN_PROGRESS = 1115
ERROR_NO_SHUTDOWN_IN_PROGRESS = 1116
STATUS_INVALID_HANDLE = 0xC0000008
STATUS_INVALID_PARAMETER = 0xC000000D

REG_NONE, REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 0, 1, 2, 3, 4, 7, 11
REG_OPTION_VOLATILE = 1
# Access bits that need write access to the key (KEY_SET_VALUE, KEY_CREATE_SUB_KEY, KEY_CREATE_LINK, DELETE,
# WRITE_DAC, WRITE_OWNER); MAXIMUM_ALLOWED grants what the ACL allows.
KEY_WRITE_BITS = 0x2 | 0x4 | 0x20 | 0x10000 | 0x40000 | 0x80000
KEY_SET_VALUE, KEY_CREATE_SUB_KEY = 0x2, 0x4
MAXIMUM_ALLOWED = 0x02000000
SERVICES_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services"
SERVICE_STOPPED, SERVICE_RUNNING = 1, 4


# MS-RRP 3.1.5.23/3.1.5.24/3.1.5.26: impacket's rrp module has no shutdown calls.
class BaseInitiateSystemShutdown(NDRCALL):  # type: ignore[misc]  # impacket is untyped
    opnum = 24
    structure = (
        ("ServerName", rrp.PREGISTRY_SERVER_NAME),
        ("lpMessage", rrp.PRRP_UNICODE_STRING),
        ("dwTimeout", DWORD),
        ("bForceAppsClosed", BOOLEAN),
        ("bRebootAfterShutdown", BOOLEAN),
    )


class BaseAbortSystemShutdown(NDRCALL):  # type: ignore[misc]  # impacket is untyped
    opnum = 25
    structure = (("ServerName", rrp.PREGISTRY_SERVER_NAME),)


class BaseInitiateSystemShutdownEx(NDRCALL):  # type: ignore[misc]  # impacket is untyped
    opnum = 30
    structure = (*BaseInitiateSystemShutdown.structure, ("dwReason", DWORD))


class ShutdownResponse(NDRCALL):  # type: ignore[misc]  # impacket is untyped
    structure = (("ErrorCode", DWORD),)


Handler = Callable[[Any, "Association"], NDRCALL]


class RpcFailure(Exception):
    """Answer the request with a DCE/RPC fault PDU carrying ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"rpc fault 0x{status:08x}")
        self.status = status


class Interface:
    """One RPC interface: its UUID, the pipe it lives on, and opnum -> (name, request class, handler)."""

    name = ""
    uuid: tuple[str, str] = ("", "")
    calls: dict[int, tuple[str, type[NDRCALL], str]] = {}

    def __init__(self, host: Any) -> None:
        self.host = host

    def call_name(self, opnum: int) -> str:
        entry = self.calls.get(opnum)
        return f"{self.name}.{entry[0] if entry else f'opnum{opnum}'}"

    def dispatch(self, opnum: int, stub: bytes, assoc: Association) -> bytes:
        entry = self.calls.get(opnum)
        if entry is None:
            raise RpcFailure(NCA_S_OP_RNG_ERROR)
        _, request_class, method = entry
        try:
            request = request_class(stub)
        except Exception as exc:  # impacket raises plain exceptions for short or malformed stubs
            log.info("%s: cannot unmarshal %s: %s", self.host.name, self.call_name(opnum), exc)
            raise RpcFailure(NCA_S_PROTO_ERROR) from exc
        handler: Handler = getattr(self, method)
        with self.host.lock:
            response = handler(request, assoc)
            self.host.save()
        return bytes(response.getData())


def _text(value: Any) -> str:
    """An RPC string field without its terminating NUL(s)."""
    if value is None or value == NULL:
        return ""
    return str(value).rstrip("\x00")


def _is_null(request: Any, field: str) -> bool:
    """Did the caller pass a NULL pointer? (A parsed impacket pointer never compares equal to ``NULL``.)"""
    return int(request.fields[field].fields.get("ReferentID", 0)) == 0


def _max_length(request: Any, field: str) -> int:
    """The MaximumLength (bytes) of an RPC_UNICODE_STRING: the caller's buffer for a name it asks for.
    impacket hides it behind the string value."""
    return int(request.fields[field].fields["MaximumLength"])


def _filetime(moment: dt.datetime) -> tuple[int, int]:
    ticks = int((moment.timestamp() + 11644473600) * 10_000_000)
    return ticks & 0xFFFFFFFF, ticks >> 32


def encode_value(type_: int, data: Any) -> bytes:
    """A machine value as the bytes RegQueryValueEx returns."""
    if type_ in (REG_SZ, REG_EXPAND_SZ):
        return (str(data) + "\x00").encode("utf-16le")
    if type_ == REG_MULTI_SZ:
        return "".join(s + "\x00" for s in data).encode("utf-16le") + b"\x00\x00"
    if type_ == REG_DWORD:
        return struct.pack("<L", int(data))
    if type_ == REG_QWORD:
        return struct.pack("<Q", int(data))
    return bytes(data)


def decode_value(type_: int, raw: bytes) -> Any:
    """RegSetValueEx bytes as the machine stores them; ValueError for what winsim's registry cannot hold."""
    if type_ in (REG_SZ, REG_EXPAND_SZ):
        return raw.decode("utf-16le", "replace").split("\x00", 1)[0]
    if type_ == REG_MULTI_SZ:
        text = raw.decode("utf-16le", "replace")
        items = text.split("\x00")
        while items and items[-1] == "":
            items.pop()
        return items
    if type_ == REG_DWORD:
        if len(raw) != 4:
            raise ValueError("a REG_DWORD is 4 bytes")
        return struct.unpack("<L", raw)[0]
    if type_ == REG_QWORD:
        if len(raw) != 8:
            raise ValueError("a REG_QWORD is 8 bytes")
        return struct.unpack("<Q", raw)[0]
    if type_ in (REG_BINARY, REG_NONE):
        return bytes(raw)
    raise ValueError(f"registry type {type_} is not modelled")


class Association:
    """One pipe connection: its context handles (20 bytes each, as the wire carries them)."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.handles: dict[bytes, dict[str, Any]] = {}

    def new_handle(self, **info: Any) -> bytes:
        handle = struct.pack("<L", 0) + secrets.token_bytes(16)
        self.handles[handle] = info
        return handle


def _hkey(handle: bytes) -> rrp.RPC_HKEY:
    key = rrp.RPC_HKEY()
    key["context_handle_attributes"] = struct.unpack("<L", handle[:4])[0]
    key["context_handle_uuid"] = handle[4:]
    return key


def _raw(value: Any) -> bytes:
    """A context handle's 20 bytes, whether impacket holds it as bytes or as a structure."""
    return bytes(value) if isinstance(value, (bytes, bytearray)) else bytes(value.getData())


class WinReg(Interface):
    name = "winreg"
    uuid = ("338CD001-2244-31F1-AAAA-900038001003", "1.0")
    calls = {
        0: ("OpenClassesRoot", rrp.OpenClassesRoot, "open_classes_root"),
        1: ("OpenCurrentUser", rrp.OpenCurrentUser, "open_current_user"),
        2: ("OpenLocalMachine", rrp.OpenLocalMachine, "open_local_machine"),
        4: ("OpenUsers", rrp.OpenUsers, "open_users"),
        5: ("CloseKey", rrp.BaseRegCloseKey, "close_key"),
        6: ("CreateKey", rrp.BaseRegCreateKey, "create_key"),
        7: ("DeleteKey", rrp.BaseRegDeleteKey, "delete_key"),
        8: ("DeleteValue", rrp.BaseRegDeleteValue, "delete_value"),
        9: ("EnumKey", rrp.BaseRegEnumKey, "enum_key"),
        10: ("EnumValue", rrp.BaseRegEnumValue, "enum_value"),
        15: ("OpenKey", rrp.BaseRegOpenKey, "open_key"),
        16: ("QueryInfoKey", rrp.BaseRegQueryInfoKey, "query_info_key"),
        17: ("QueryValue", rrp.BaseRegQueryValue, "query_value"),
        22: ("SetValue", rrp.BaseRegSetValue, "set_value"),
        24: ("InitiateSystemShutdown", BaseInitiateSystemShutdown, "shutdown"),
        25: ("AbortSystemShutdown", BaseAbortSystemShutdown, "abort_shutdown"),
        26: ("GetVersion", rrp.BaseRegGetVersion, "get_version"),
        30: ("InitiateSystemShutdownEx", BaseInitiateSystemShutdownEx, "shutdown"),
    }

    # --- handles ----------------------------------------------------------------------------------

    def _open_root(self, root: str, request: Any, assoc: Association, response: NDRCALL) -> NDRCALL:
        access = self._granted(root, int(request["samDesired"]))
        if access is None:
            response["phKey"] = _hkey(b"\x00" * 20)
            response["ErrorCode"] = ERROR_ACCESS_DENIED
            return response
        response["phKey"] = _hkey(assoc.new_handle(path=root, access=access))
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def open_local_machine(self, request: Any, assoc: Association) -> NDRCALL:
        return self._open_root("HKLM", request, assoc, rrp.OpenLocalMachineResponse())

    def open_users(self, request: Any, assoc: Association) -> NDRCALL:
        return self._open_root("HKU", request, assoc, rrp.OpenUsersResponse())

    def open_classes_root(self, request: Any, assoc: Association) -> NDRCALL:
        return self._open_root("HKCR", request, assoc, rrp.OpenClassesRootResponse())

    def open_current_user(self, request: Any, assoc: Association) -> NDRCALL:
        return self._open_root("HKCU", request, assoc, rrp.OpenCurrentUserResponse())

    def _granted(self, path: str, desired: int) -> int | None:
        """The access a handle gets, None when the key's ACL refuses it."""
        rule = self.host.registry.access(path)
        if rule == "none":
            return None
        if desired & MAXIMUM_ALLOWED:
            return 0xF003F if rule == "full" else 0x20019
        if rule == "read" and desired & KEY_WRITE_BITS:
            return None
        return desired

    def _key(self, request: Any, assoc: Association, field: str = "hKey") -> dict[str, Any] | None:
        return assoc.handles.get(_raw(request[field]))

    @staticmethod
    def _join(base: str, sub: str) -> str:
        sub = sub.strip("\\")
        return f"{base}\\{sub}" if sub else base

    def close_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegCloseKeyResponse()
        handle = _raw(request["hKey"])
        response["hKey"] = _hkey(b"\x00" * 20)
        response["ErrorCode"] = ERROR_SUCCESS if assoc.handles.pop(handle, None) is not None else ERROR_INVALID_HANDLE
        return response

    def open_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegOpenKeyResponse()
        response["phkResult"] = _hkey(b"\x00" * 20)
        parent = self._key(request, assoc)
        if parent is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        path = self._join(parent["path"], _text(request["lpSubKey"]))
        if self.host.registry.open(path) is None:
            response["ErrorCode"] = ERROR_FILE_NOT_FOUND
            return response
        access = self._granted(path, int(request["samDesired"]))
        if access is None:
            response["ErrorCode"] = ERROR_ACCESS_DENIED
            return response
        response["phkResult"] = _hkey(assoc.new_handle(path=path, access=access))
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def create_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegCreateKeyResponse()
        parent = self._key(request, assoc)
        code, handle, existed = ERROR_INVALID_HANDLE, b"\x00" * 20, False
        if parent is not None:
            path = self._join(parent["path"], _text(request["lpSubKey"]))
            registry = self.host.registry
            existed = registry.open(path) is not None
            access = self._granted(path, int(request["samDesired"]))
            if access is None or (not existed and (not parent["access"] & KEY_CREATE_SUB_KEY
                                                   or registry.access(path) != "full")):
                code = ERROR_ACCESS_DENIED
            else:
                try:
                    registry.create(path, volatile=bool(int(request["dwOptions"]) & REG_OPTION_VOLATILE))
                    handle, code = assoc.new_handle(path=path, access=access), ERROR_SUCCESS
                except (KeyError, ValueError):
                    code = ERROR_INVALID_PARAMETER
        response["phkResult"] = _hkey(handle)
        if code == ERROR_SUCCESS:
            response["lpdwDisposition"] = 2 if existed else 1  # REG_OPENED_EXISTING_KEY / REG_CREATED_NEW_KEY
        else:
            response["lpdwDisposition"] = NULL
        response["ErrorCode"] = code
        return response

    def delete_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegDeleteKeyResponse()
        parent = self._key(request, assoc)
        if parent is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        path = self._join(parent["path"], _text(request["lpSubKey"]))
        if self.host.registry.access(path) != "full":
            response["ErrorCode"] = ERROR_ACCESS_DENIED
            return response
        response["ErrorCode"] = self.host.registry.delete_key(path)
        return response

    # --- values -----------------------------------------------------------------------------------

    def _writable(self, key: dict[str, Any]) -> bool:
        return bool(key["access"] & KEY_SET_VALUE) and self.host.registry.access(key["path"]) == "full"

    def set_value(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegSetValueResponse()
        key = self._key(request, assoc)
        if key is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        if not self._writable(key):
            response["ErrorCode"] = ERROR_ACCESS_DENIED
            return response
        raw = b"".join(bytes([b]) if isinstance(b, int) else bytes(b, "latin-1") if isinstance(b, str) else bytes(b)
                       for b in request["lpData"])[: int(request["cbData"])]
        try:
            data = decode_value(int(request["dwType"]), raw)
            self.host.registry.set(key["path"], _text(request["lpValueName"]), int(request["dwType"]), data,
                                   create=False)
        except ValueError:
            response["ErrorCode"] = ERROR_INVALID_PARAMETER
            return response
        except KeyError:
            response["ErrorCode"] = ERROR_FILE_NOT_FOUND  # the key was deleted under the handle
            return response
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def delete_value(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegDeleteValueResponse()
        key = self._key(request, assoc)
        if key is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
        elif not self._writable(key):
            response["ErrorCode"] = ERROR_ACCESS_DENIED
        elif self.host.registry.delete_value(key["path"], _text(request["lpValueName"])):
            response["ErrorCode"] = ERROR_SUCCESS
        else:
            response["ErrorCode"] = ERROR_FILE_NOT_FOUND
        return response

    @staticmethod
    def _fill_data(response: NDRCALL, request: Any, type_: int, data: bytes) -> int:
        """Type, data and sizes as RegQueryValueEx answers them; the Win32 code."""
        response["lpType"] = type_
        response["lpcbData"] = len(data)
        response["lpcbLen"] = len(data)
        if _is_null(request, "lpData") or _is_null(request, "lpcbData"):
            response["lpData"] = NULL
            return ERROR_SUCCESS
        if int(request["lpcbData"]) < len(data):
            response["lpData"] = NULL
            return ERROR_MORE_DATA
        response["lpData"] = list(data)
        return ERROR_SUCCESS

    def _empty_data(self, response: NDRCALL) -> None:
        response["lpType"] = NULL
        response["lpData"] = NULL
        response["lpcbData"] = NULL
        response["lpcbLen"] = NULL

    def query_value(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegQueryValueResponse()
        key = self._key(request, assoc)
        value = None
        if key is not None:
            value = self.host.registry.get(key["path"], _text(request["lpValueName"]))
        if value is None:
            self._empty_data(response)
            response["ErrorCode"] = ERROR_INVALID_HANDLE if key is None else ERROR_FILE_NOT_FOUND
            return response
        response["ErrorCode"] = self._fill_data(response, request, value.type, encode_value(value.type, value.data))
        return response

    def enum_value(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegEnumValueResponse()
        key = self._key(request, assoc)
        node = self.host.registry.open(key["path"]) if key is not None else None
        values = list(node.values.values()) if node is not None else []
        index = int(request["dwIndex"])
        if node is None or index >= len(values):
            response["lpValueNameOut"] = ""
            self._empty_data(response)
            response["ErrorCode"] = ERROR_INVALID_HANDLE if key is None else ERROR_NO_MORE_ITEMS
            return response
        value = values[index]
        response["lpValueNameOut"] = value.name + "\x00"
        if (len(value.name) + 1) * 2 > _max_length(request, "lpValueNameIn"):
            response["lpValueNameOut"] = ""
            self._empty_data(response)
            response["ErrorCode"] = ERROR_MORE_DATA
            return response
        response["ErrorCode"] = self._fill_data(response, request, value.type, encode_value(value.type, value.data))
        return response

    # --- keys -------------------------------------------------------------------------------------

    def enum_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegEnumKeyResponse()
        key = self._key(request, assoc)
        node = self.host.registry.open(key["path"]) if key is not None else None
        names = sorted((child.name for child in node.subkeys.values()), key=str.upper) if node is not None else []
        index = int(request["dwIndex"])
        response["lplpClassOut"] = NULL
        name = names[index] if node is not None and index < len(names) else None
        if name is None or (len(name) + 1) * 2 > _max_length(request, "lpNameIn"):
            response["lpNameOut"] = ""
            response["lpftLastWriteTime"] = NULL
            response["ErrorCode"] = (ERROR_INVALID_HANDLE if key is None else ERROR_NO_MORE_ITEMS if name is None
                                     else ERROR_MORE_DATA)
            return response
        response["lpNameOut"] = name + "\x00"
        if not _is_null(request, "lpClassIn"):
            response["lplpClassOut"] = "\x00"
        if not _is_null(request, "lpftLastWriteTime"):
            low, high = _filetime(self.host.boot_time)
            response["lpftLastWriteTime"]["dwLowDateTime"] = low
            response["lpftLastWriteTime"]["dwHighDateTime"] = high
        else:
            response["lpftLastWriteTime"] = NULL
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def query_info_key(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegQueryInfoKeyResponse()
        key = self._key(request, assoc)
        node = self.host.registry.open(key["path"]) if key is not None else None
        # Keys have no class here; the empty name still carries its NUL (Samba's NDR refuses a zero-length
        # [string]).
        response["lpClassOut"] = "\x00"
        if node is None:
            for name in ("lpcSubKeys", "lpcbMaxSubKeyLen", "lpcbMaxClassLen", "lpcValues", "lpcbMaxValueNameLen",
                         "lpcbMaxValueLen", "lpcbSecurityDescriptor"):
                response[name] = 0
            response["ErrorCode"] = ERROR_INVALID_HANDLE if key is None else ERROR_FILE_NOT_FOUND
            return response
        subkeys = list(node.subkeys.values())
        values = list(node.values.values())
        response["lpcSubKeys"] = len(subkeys)
        # On the wire these are bytes without the NUL (the kernel's KEY_FULL_INFORMATION); advapi32 turns them
        # into the characters RegQueryInfoKeyW documents. Samba's client sizes its EnumKey buffer as this + 2.
        response["lpcbMaxSubKeyLen"] = 2 * max((len(k.name) for k in subkeys), default=0)
        response["lpcbMaxClassLen"] = 0
        response["lpcValues"] = len(values)
        response["lpcbMaxValueNameLen"] = 2 * max((len(v.name) for v in values), default=0)
        response["lpcbMaxValueLen"] = max((len(encode_value(v.type, v.data)) for v in values), default=0)
        response["lpcbSecurityDescriptor"] = 0x78  # a plain owner/group/DACL descriptor; winsim keeps no SDs
        # Windows keeps the time per key; a key untouched since the host was set up predates the last boot.
        low, high = _filetime(node.written or self.host.boot_time)
        response["lpftLastWriteTime"]["dwLowDateTime"] = low
        response["lpftLastWriteTime"]["dwHighDateTime"] = high
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def get_version(self, request: Any, assoc: Association) -> NDRCALL:
        response = rrp.BaseRegGetVersionResponse()
        response["lpdwVersion"] = 5  # what every Windows registry server answers
        response["ErrorCode"] = ERROR_SUCCESS if self._key(request, assoc) is not None else ERROR_INVALID_HANDLE
        return response

    # --- shutdown ---------------------------------------------------------------------------------

    def shutdown(self, request: Any, assoc: Association) -> NDRCALL:
        response = ShutdownResponse()
        if self.host.reboot_scheduled():
            response["ErrorCode"] = ERROR_SHUTDOWN_IN_PROGRESS
            return response
        delay = float(int(request["dwTimeout"]))
        log.info("%s: remote shutdown (reboot=%s) in %.0f s", self.host.name, bool(request["bRebootAfterShutdown"]),
                 delay)
        if request["bRebootAfterShutdown"]:
            self.host.reboot(delay)
        else:
            self.host.power_off(delay)
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def abort_shutdown(self, request: Any, assoc: Association) -> NDRCALL:
        response = ShutdownResponse()
        response["ErrorCode"] = ERROR_SUCCESS if self.host.cancel_reboot() else ERROR_NO_SHUTDOWN_IN_PROGRESS
        return response


class SvcCtl(Interface):
    name = "svcctl"
    uuid = ("367ABB81-9844-35F1-AD32-98F038001003", "2.0")
    calls = {
        0: ("CloseServiceHandle", scmr.RCloseServiceHandle, "close_handle"),
        2: ("DeleteService", scmr.RDeleteService, "delete_service"),
        6: ("QueryServiceStatus", scmr.RQueryServiceStatus, "query_status"),
        12: ("CreateServiceW", scmr.RCreateServiceW, "create_service"),
        15: ("OpenSCManagerW", scmr.ROpenSCManagerW, "open_manager"),
        16: ("OpenServiceW", scmr.ROpenServiceW, "open_service"),
        19: ("StartServiceW", scmr.RStartServiceW, "start_service"),
    }

    @staticmethod
    def _wire(handle: bytes) -> scmr.SC_RPC_HANDLE:
        out = scmr.SC_RPC_HANDLE()
        out["Data"] = handle
        return out

    def _service(self, request: Any, assoc: Association, field: str = "hService") -> dict[str, Any] | None:
        info = assoc.handles.get(_raw(request[field]))
        return info if info is not None and info.get("kind") == "service" else None

    def _key_path(self, name: str) -> str:
        return f"{SERVICES_KEY}\\{name}"

    def open_manager(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.ROpenSCManagerWResponse()
        response["lpScHandle"] = self._wire(assoc.new_handle(kind="manager"))
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def close_handle(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.RCloseServiceHandleResponse()
        known = assoc.handles.pop(_raw(request["hSCObject"]), None)
        response["hSCObject"] = self._wire(b"\x00" * 20)
        response["ErrorCode"] = ERROR_SUCCESS if known is not None else ERROR_INVALID_HANDLE
        return response

    def create_service(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.RCreateServiceWResponse()
        response["lpdwTagId"] = NULL
        response["lpServiceHandle"] = self._wire(b"\x00" * 20)
        manager = assoc.handles.get(_raw(request["hSCManager"]))
        name = _text(request["lpServiceName"])
        if manager is None or manager.get("kind") != "manager":
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        if not name or "\\" in name or "/" in name or len(name) > 256:
            response["ErrorCode"] = ERROR_INVALID_NAME
            return response
        registry = self.host.registry
        path = self._key_path(name)
        if registry.open(path) is not None:
            response["ErrorCode"] = ERROR_SERVICE_EXISTS
            return response
        registry.create(path)
        registry.set(path, "Type", REG_DWORD, int(request["dwServiceType"]))
        registry.set(path, "Start", REG_DWORD, int(request["dwStartType"]))
        registry.set(path, "ErrorControl", REG_DWORD, int(request["dwErrorControl"]))
        registry.set(path, "ImagePath", REG_EXPAND_SZ, _text(request["lpBinaryPathName"]))
        registry.set(path, "DisplayName", REG_SZ, _text(request["lpDisplayName"]) or name)
        registry.set(path, "ObjectName", REG_SZ, _text(request["lpServiceStartName"]) or "LocalSystem")
        self.host.service_state[name.casefold()] = "Stopped"
        log.info("%s: service %s created", self.host.name, name)
        response["lpServiceHandle"] = self._wire(assoc.new_handle(kind="service", name=name))
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def open_service(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.ROpenServiceWResponse()
        response["lpServiceHandle"] = self._wire(b"\x00" * 20)
        manager = assoc.handles.get(_raw(request["hSCManager"]))
        name = _text(request["lpServiceName"])
        key = self.host.registry.open(self._key_path(name)) if name else None
        if manager is None or manager.get("kind") != "manager":
            response["ErrorCode"] = ERROR_INVALID_HANDLE
        elif key is None:
            response["ErrorCode"] = ERROR_SERVICE_DOES_NOT_EXIST
        else:
            response["lpServiceHandle"] = self._wire(assoc.new_handle(kind="service", name=key.name))
            response["ErrorCode"] = ERROR_SUCCESS
        return response

    def _status(self, name: str) -> tuple[int, int]:
        type_value = self.host.registry.get(self._key_path(name), "Type")
        service_type = int(type_value.data) if type_value is not None and isinstance(type_value.data, int) else 0x10
        running = self.host.service_running_state(name) == "Running"
        return service_type, SERVICE_RUNNING if running else SERVICE_STOPPED

    def query_status(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.RQueryServiceStatusResponse()
        service = self._service(request, assoc)
        status = response["lpServiceStatus"]
        for name in ("dwServiceType", "dwCurrentState", "dwControlsAccepted", "dwWin32ExitCode",
                     "dwServiceSpecificExitCode", "dwCheckPoint", "dwWaitHint"):
            status[name] = 0
        if service is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        if service.get("deleted"):
            response["ErrorCode"] = ERROR_SERVICE_MARKED_FOR_DELETE
            return response
        service_type, state = self._status(service["name"])
        status["dwServiceType"] = service_type
        status["dwCurrentState"] = state
        status["dwControlsAccepted"] = 1 if state == SERVICE_RUNNING else 0  # SERVICE_ACCEPT_STOP
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def delete_service(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.RDeleteServiceResponse()
        service = self._service(request, assoc)
        if service is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
        elif service.get("deleted") or self.host.registry.open(self._key_path(service["name"])) is None:
            response["ErrorCode"] = ERROR_SERVICE_MARKED_FOR_DELETE
        else:
            self.host.registry.delete_key(self._key_path(service["name"]), recursive=True)
            self.host.service_state.pop(service["name"].casefold(), None)
            service["deleted"] = True
            log.info("%s: service %s deleted", self.host.name, service["name"])
            response["ErrorCode"] = ERROR_SUCCESS
        return response

    def start_service(self, request: Any, assoc: Association) -> NDRCALL:
        response = scmr.RStartServiceWResponse()
        service = self._service(request, assoc)
        if service is None:
            response["ErrorCode"] = ERROR_INVALID_HANDLE
            return response
        name = service["name"]
        image = self.host.registry.get(self._key_path(name), "ImagePath")
        if service.get("deleted") or image is None:
            response["ErrorCode"] = ERROR_SERVICE_MARKED_FOR_DELETE
            return response
        if self.host.service_running_state(name) == "Running":
            response["ErrorCode"] = ERROR_SERVICE_ALREADY_RUNNING
            return response
        command = self.host.expand(str(image.data))
        if not self._program_exists(command):
            response["ErrorCode"] = ERROR_FILE_NOT_FOUND
            return response
        process = self.host.start_process(command, [], self.host.system32)
        _, err, code = process.read()
        if code is None:
            process.terminate()
        log.info("%s: service %s ran %r: exit %s, stderr %r", self.host.name, name, command, code,
                 err[:200].decode("cp437", "replace"))
        self.host.service_state[name.casefold()] = "Stopped"
        response["ErrorCode"] = ERROR_SERVICE_REQUEST_TIMEOUT
        return response

    def _program_exists(self, command: str) -> bool:
        """Would CreateProcess find the image? cmd.exe and the tools are virtual in winsim (no files)."""
        text = command.strip()
        if text.startswith('"'):
            program = text[1:].split('"', 1)[0]
        else:
            program = text.split(None, 1)[0] if text else ""
        candidates = [program] if ntpath.splitext(program)[1] else [program + ".exe", program]
        for candidate in candidates:
            directory, base = ntpath.split(candidate)
            if not directory:
                candidate = ntpath.join(self.host.system32, candidate)
                directory = self.host.system32
            if self.host.fs.entry(candidate) is not None:
                return True
            stem = ntpath.splitext(base)[0].casefold()
            in_system32 = directory.casefold().rstrip("\\") == self.host.system32.casefold()
            if in_system32 and (stem == "cmd" or self.host.has_tool(stem)):
                return True
        return False


class _Unread(NDRCALL):  # type: ignore[misc]  # impacket is untyped
    """A request whose arguments the answer does not depend on. LsarOpenPolicy's SystemName is a pointer to one
    wchar_t in MS-LSAD (what Samba sends) but a string in impacket's ``lsad``, which cannot parse Samba's."""

    structure = ()


class Lsa(Interface):
    """The little of ``\\pipe\\lsarpc`` (MS-LSAD) that clients ask before anything else: Samba's ``net rpc``
    looks up the server's domain there. A workgroup NT 4.0 server: its primary domain is the workgroup (no
    SID), its account domain the machine (the SID of its local accounts)."""

    name = "lsarpc"
    uuid = ("12345778-1234-ABCD-EF00-0123456789AB", "0.0")
    calls = {
        0: ("Close", lsad.LsarClose, "close"),
        6: ("OpenPolicy", _Unread, "open_policy"),
        7: ("QueryInformationPolicy", lsad.LsarQueryInformationPolicy, "query_policy"),
        44: ("OpenPolicy2", _Unread, "open_policy"),
    }

    def open_policy(self, request: Any, assoc: Association) -> NDRCALL:
        response = lsad.LsarOpenPolicy2Response()
        response["PolicyHandle"] = assoc.new_handle(kind="policy")
        response["ErrorCode"] = 0
        return response

    def close(self, request: Any, assoc: Association) -> NDRCALL:
        response = lsad.LsarCloseResponse()
        known = assoc.handles.pop(_raw(request["ObjectHandle"]), None)
        response["ObjectHandle"] = b"\x00" * 20
        response["ErrorCode"] = 0 if known is not None else STATUS_INVALID_HANDLE
        return response

    def query_policy(self, request: Any, assoc: Association) -> NDRCALL:
        response = lsad.LsarQueryInformationPolicyResponse()
        level = int(request["InformationClass"])
        if _raw(request["PolicyHandle"]) not in assoc.handles:
            response["PolicyInformation"] = NULL
            response["ErrorCode"] = STATUS_INVALID_HANDLE
            return response
        info = response["PolicyInformation"]
        info["tag"] = level
        machine_sid = self.host.registry.user_sid.rsplit("-", 1)[0]
        if level == 3:
            info["PolicyPrimaryDomainInfo"]["Name"] = str(getattr(self.host, "domain", "WORKGROUP")).upper()
            info["PolicyPrimaryDomainInfo"]["Sid"] = NULL
        elif level == 5:
            info["PolicyAccountDomainInfo"]["DomainName"] = self.host.name.upper()
            info["PolicyAccountDomainInfo"]["DomainSid"].fromCanonical(machine_sid)
        else:
            response["PolicyInformation"] = NULL
            response["ErrorCode"] = STATUS_INVALID_PARAMETER
            return response
        response["ErrorCode"] = 0
        return response


# The shares of an NT 4.0 server as NetShareEnum lists them: (name, type, remark). STYPE_SPECIAL (0x80000000)
# marks the administrative shares; IPC$ is STYPE_IPC (3).
NT4_SHARES = (("ADMIN$", 0x80000000, "Remote Admin"), ("C$", 0x80000000, "Default share"),
              ("IPC$", 0x80000003, "Remote IPC"))
ERROR_INVALID_LEVEL = 124
NERR_NET_NAME_NOT_FOUND = 2310


class Srvsvc(Interface):
    """``\\pipe\\srvsvc`` (MS-SRVS), enough for a share list (``smbclient -L``, impacket's ``listShares``):
    NetrShareEnum and NetrShareGetInfo at level 1, NetrServerGetInfo at level 101 (platform 500, version 4.0,
    SV_TYPE_WORKSTATION | SV_TYPE_SERVER | SV_TYPE_SERVER_NT), and NetrServerStatisticsGet at level 0, whose
    ``sts0_start`` (MS-SRVS 3.1.4.20, 2.2.4.39: when statistics collection started, seconds since 1970) is
    when the Server service started: at boot (``Host.boot_time``; ``net statistics server`` shows it as
    "Statistics since")."""

    name = "srvsvc"
    uuid = ("4B324FC8-1670-01D3-1278-5A47BF6EE188", "3.0")
    calls = {
        15: ("NetrShareEnum", srvs.NetrShareEnum, "share_enum"),
        16: ("NetrShareGetInfo", srvs.NetrShareGetInfo, "share_get_info"),
        21: ("NetrServerGetInfo", srvs.NetrServerGetInfo, "server_get_info"),
        24: ("NetrServerStatisticsGet", srvs.NetrServerStatisticsGet, "server_statistics_get"),
    }

    @staticmethod
    def _info(entry: Any, share: tuple[str, int, str]) -> None:
        entry["shi1_netname"] = share[0] + "\x00"
        entry["shi1_type"] = share[1]
        entry["shi1_remark"] = share[2] + "\x00"

    def share_enum(self, request: Any, assoc: Association) -> NDRCALL:
        response = srvs.NetrShareEnumResponse()
        response["InfoStruct"]["Level"] = 1
        response["InfoStruct"]["ShareInfo"]["tag"] = 1
        container = response["InfoStruct"]["ShareInfo"]["Level1"]
        if int(request["InfoStruct"]["Level"]) != 1:
            container["EntriesRead"] = 0
            container["Buffer"] = NULL
            response["TotalEntries"], response["ResumeHandle"] = 0, NULL
            response["ErrorCode"] = ERROR_INVALID_LEVEL
            return response
        container["EntriesRead"] = len(NT4_SHARES)
        for share in NT4_SHARES:
            entry = srvs.SHARE_INFO_1()
            self._info(entry, share)
            container["Buffer"].append(entry)
        response["TotalEntries"] = len(NT4_SHARES)
        response["ResumeHandle"] = NULL
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def share_get_info(self, request: Any, assoc: Association) -> NDRCALL:
        response = srvs.NetrShareGetInfoResponse()
        response["InfoStruct"]["tag"] = 1
        wanted = _text(request["NetName"]).casefold()
        share = next((s for s in NT4_SHARES if s[0].casefold() == wanted), None)
        if share is None or int(request["Level"]) != 1:
            response["InfoStruct"]["ShareInfo1"] = NULL
            response["ErrorCode"] = NERR_NET_NAME_NOT_FOUND if share is None else ERROR_INVALID_LEVEL
            return response
        self._info(response["InfoStruct"]["ShareInfo1"], share)
        response["ErrorCode"] = ERROR_SUCCESS
        return response

    def server_get_info(self, request: Any, assoc: Association) -> NDRCALL:
        response = srvs.NetrServerGetInfoResponse()
        response["InfoStruct"]["tag"] = 101
        info = response["InfoStruct"]["ServerInfo101"]
        info["sv101_platform_id"] = 500
        info["sv101_name"] = self.host.name.upper() + "\x00"
        info["sv101_version_major"], info["sv101_version_minor"] = 4, 0
        info["sv101_type"] = 0x1 | 0x2 | 0x8000
        info["sv101_comment"] = "\x00"
        response["ErrorCode"] = ERROR_SUCCESS if int(request["Level"]) == 101 else ERROR_INVALID_LEVEL
        return response

    def server_statistics_get(self, request: Any, assoc: Association) -> NDRCALL:
        response = srvs.NetrServerStatisticsGetResponse()
        stats = response["InfoStruct"]
        for field_name in stats.fields:
            stats[field_name] = 0
        if int(request["Level"]) != 0:
            response["ErrorCode"] = ERROR_INVALID_LEVEL
            return response
        stats["sts0_start"] = int(self.host.boot_time.timestamp())
        response["ErrorCode"] = ERROR_SUCCESS
        return response


# --- the connection-oriented DCE/RPC server -----------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_pdu(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 16)
    if head is None:
        return None
    frag_len = struct.unpack("<H", head[8:10])[0]
    rest = _recv_exact(sock, frag_len - 16) if frag_len > 16 else b""
    return None if rest is None else head + rest


class PipeServer:
    """The loopback endpoint one named pipe of one host is connected to.

    ``before_call(peer, name)`` runs before a request is applied (False: drop it, the face resets the client's
    SMB connection); ``after_call(peer, name)`` once it was applied, before its answer is written."""

    def __init__(self, interface: Interface, before_call: Callable[[tuple[str, int], str], bool],
                 after_call: Callable[[tuple[str, int], str], None]) -> None:
        self.interface = interface
        self.before_call = before_call
        self.after_call = after_call
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.serve(self.request, self.client_address)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.server.server_activate()
        self.address: tuple[str, int] = self.server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"winsim-{interface.name}-{interface.host.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        assoc = Association(peer)
        max_xmit = MAX_FRAGMENT
        pending = bytearray()
        try:
            while True:
                pdu = _read_pdu(sock)
                if pdu is None:
                    return
                header = rpcrt.MSRPCHeader(pdu)
                kind = header["type"]
                if kind in (rpcrt.MSRPC_BIND, rpcrt.MSRPC_ALTERCTX):
                    bind = rpcrt.MSRPCBind(header["pduData"])
                    max_xmit = min(MAX_FRAGMENT, int(bind["max_rfrag"]) or MAX_FRAGMENT)
                    sock.sendall(self._bind_ack(header, bind, kind == rpcrt.MSRPC_BIND))
                elif kind == rpcrt.MSRPC_REQUEST:
                    request = rpcrt.MSRPCRequestHeader(pdu)
                    if header["flags"] & rpcrt.PFC_FIRST_FRAG:
                        pending = bytearray()
                    pending += request["pduData"]
                    if not header["flags"] & rpcrt.PFC_LAST_FRAG:
                        continue
                    if not self._answer(sock, request, bytes(pending), assoc, max_xmit):
                        return
                else:
                    return  # orphaned, cancel, shutdown: Windows drops the association
        except OSError:
            return

    def _bind_ack(self, header: Any, bind: Any, first: bool) -> bytes:
        """bind_ack (or alter_context_resp): accept the contexts that ask for this interface in NDR."""
        ack = rpcrt.MSRPCBindAck()
        ack["type"] = rpcrt.MSRPC_BINDACK if first else rpcrt.MSRPC_ALTERCTX_R
        ack["flags"] = rpcrt.PFC_FIRST_FRAG | rpcrt.PFC_LAST_FRAG
        ack["call_id"] = header["call_id"]
        ack["max_tfrag"] = min(MAX_FRAGMENT, int(bind["max_tfrag"]) or MAX_FRAGMENT)
        ack["max_rfrag"] = min(MAX_FRAGMENT, int(bind["max_rfrag"]) or MAX_FRAGMENT)
        ack["assoc_group"] = int(bind["assoc_group"]) or 0x53F0
        # The secondary address is the pipe's name as the server knows it. Windows leaves it empty in an
        # alter_context answer; impacket's structure cannot, and clients ignore it there.
        ack["SecondaryAddr"] = f"\\PIPE\\{self.interface.name}"
        ack["SecondaryAddrLen"] = len(ack["SecondaryAddr"]) + 1
        ack["auth_data"] = b""
        ack["sec_trailer"] = b""
        ack["Pad"] = b"\x00" * ((4 - ((ack["SecondaryAddrLen"] + rpcrt.MSRPCBindAck._SIZE) % 4)) % 4)
        wanted = uuidtup_to_bin(self.interface.uuid)
        items, data = b"", bind["ctx_items"]
        for _ in range(bind["ctx_num"]):
            item = rpcrt.CtxItem(data)
            data = data[len(item):]
            result = rpcrt.CtxItemResult()
            if item["TransferSyntax"] != NDR_SYNTAX:
                result["Result"], result["Reason"] = 2, 2  # provider rejection: transfer syntax not supported
                result["TransferSyntax"] = b"\x00" * 20
            elif item["AbstractSyntax"] != wanted:
                result["Result"], result["Reason"] = 2, 1  # abstract syntax not supported
                result["TransferSyntax"] = b"\x00" * 20
            else:
                result["TransferSyntax"] = NDR_SYNTAX
            items += result.getData()
        ack["ctx_num"] = bind["ctx_num"]
        ack["ctx_items"] = items
        ack["frag_len"] = 0
        ack["frag_len"] = len(ack.getData())
        return bytes(ack.getData())

    def _answer(self, sock: socket.socket, request: Any, stub: bytes, assoc: Association, max_xmit: int) -> bool:
        opnum = int(request["op_num"])
        name = self.interface.call_name(opnum)
        if not self.before_call(assoc.peer, name):
            return False
        try:
            body = self.interface.dispatch(opnum, stub, assoc)
            status = None
        except RpcFailure as failure:
            body, status = b"", failure.status
        except Exception:
            log.exception("%s: %s failed", self.interface.host.name, name)
            body, status = b"", NCA_S_PROTO_ERROR
        # Before the answer goes back: the SMB side must know about a reset before the reply can reach it.
        self.after_call(assoc.peer, name)
        if status is not None:
            sock.sendall(self._pdu(rpcrt.MSRPC_FAULT, request, struct.pack("<LL", status, 0), True, True))
        else:
            room = max_xmit - 24
            chunks = [body[i:i + room] for i in range(0, len(body), room)] or [b""]
            for index, chunk in enumerate(chunks):
                sock.sendall(self._pdu(rpcrt.MSRPC_RESPONSE, request, chunk, index == 0, index == len(chunks) - 1,
                                       alloc_hint=len(body) - index * room))
        return True

    @staticmethod
    def _pdu(kind: int, request: Any, data: bytes, first: bool, last: bool, alloc_hint: int | None = None) -> bytes:
        response = rpcrt.MSRPCRespHeader()
        response["type"] = kind
        response["flags"] = (rpcrt.PFC_FIRST_FRAG if first else 0) | (rpcrt.PFC_LAST_FRAG if last else 0)
        response["call_id"] = request["call_id"]
        response["ctx_id"] = request["ctx_id"]
        response["alloc_hint"] = len(data) if alloc_hint is None else alloc_hint
        response["pduData"] = data
        response["auth_data"] = b""
        response["sec_trailer"] = b""
        response["pad"] = b""
        return bytes(response.getData())
