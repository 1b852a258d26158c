"""The simulated Windows machine: registry, files, services, hotfix records, boot state, persistence.

A ``Host`` is created from a profile (``winsim/profiles/<name>.yml``) plus overrides, and persisted as one JSON
state file written atomically after every change; ``Host.load`` gives the same machine back. File contents
live outside the state: system files and packages as immutable blobs named by their SHA-256 in a blob
directory shared by every host of a fleet, files written by commands (``echo >>``, ``certutil -decode``) as
host-private files next to the state (appends must not rewrite a blob or the state).

Windows semantics kept here because clients trip on them:

* Registry keys and value names are case-insensitive and case-preserving; values keep insertion order
  (``RegEnumValue`` order). ``HKCR`` is ``HKLM\\SOFTWARE\\Classes``, ``HKCU`` the profile user's hive under HKU.
* ``HKLM\\SAM\\SAM`` and ``HKLM\\SECURITY`` are closed even to Administrators (only SYSTEM may read them); on
  6.x the CBS store (``...\\Component Based Servicing``) belongs to TrustedInstaller: readable, not writable.
* A file that is in use (a loaded driver, the image of a running service, a DLL the profile marks in use)
  cannot be replaced: installers queue ``PendingFileRenameOperations`` (XP/2003) or ``pending.xml`` (CBS),
  applied at the next boot.
* A reboot has a down window (``reboot_seconds``); the boot at its end applies pending operations, removes
  volatile keys (``UpdateExeVolatile``) and the CBS ``RebootPending`` key, moves ``LastBootUpTime`` and
  increments ``boot_id``. Processes still running when the restart begins are killed.

Profiles (``profiles/<name>.yml``; ``_*.yml`` are shared pieces merged through ``extends``): ``os`` (OsInfo
fields), ``winrm_version``, ``listener``, ``credentials``, ``reboot_seconds``, ``domain``, ``uptime_hours``,
``features`` (``wmi``, ``tools`` -- the programs that Windows has --, ``wsh_version``, ``wmic_first_run_banner``),
``files`` (path -> ``version``/``size``/``modified``/``in_use``, or ``text`` for a file without VERSIONINFO),
``services`` (name -> ``image_path``, ``type``, ``start``, ``state``, ``keys`` (subkey -> values), ``files`` it
owns), ``registry`` (key -> {value: [type, data]}), ``hotfixes`` (id -> record written the way the era does).

``Host.create`` overrides (an unknown one is an error): every profile key above (mappings merge into the
profile's; a ``null`` entry removes a file, service or value), ``remove_services`` (names; their files go too),
``installed`` / ``pending`` (KB ids from winsim's catalogue, applied with or without the reboot that completes
them), ``acl`` (key -> "deny_all" | "deny_write"), ``shares`` ({"\\\\server\\share": local dir}) and
``share_root`` (local dir whose ``<server>/<share>/...`` tree backs any UNC path), ``blob_dir``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import json
import ntpath
import os
import re
import secrets
import threading
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import pe
from .wmi import Instance, WmiError

if TYPE_CHECKING:
    from .cmd import Process

__all__ = [
    "REG_BINARY", "REG_DWORD", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_NONE", "REG_QWORD", "REG_SZ",
    "FileSystem", "Host", "Instance", "OsInfo", "Process", "RegKey", "RegValue", "Registry", "WmiError",
    "load_profile", "profile_names",
]

UTC = dt.UTC
STATE_FORMAT = 1
PROFILE_DIR = Path(__file__).parent / "profiles"

# Registry value types (winnt.h). winsim keeps the seven that hotfix work meets.
REG_NONE, REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 0, 1, 2, 3, 4, 7, 11
TYPE_BY_NAME = {"none": REG_NONE, "string": REG_SZ, "expandstring": REG_EXPAND_SZ, "binary": REG_BINARY,
                "dword": REG_DWORD, "multistring": REG_MULTI_SZ, "qword": REG_QWORD}
NAME_BY_TYPE = {v: k for k, v in TYPE_BY_NAME.items()}
REG_TYPE_NAMES = {REG_NONE: "REG_NONE", REG_SZ: "REG_SZ", REG_EXPAND_SZ: "REG_EXPAND_SZ", REG_BINARY: "REG_BINARY",
                  REG_DWORD: "REG_DWORD", REG_MULTI_SZ: "REG_MULTI_SZ", REG_QWORD: "REG_QWORD"}

HIVE_ALIASES = {
    "hklm": "HKLM", "hkey_local_machine": "HKLM", "hku": "HKU", "hkey_users": "HKU",
    "hkcr": "HKCR", "hkey_classes_root": "HKCR", "hkcu": "HKCU", "hkey_current_user": "HKCU",
    "hkcc": "HKCC", "hkey_current_config": "HKCC",
}
HIVE_LONG = {"HKLM": "HKEY_LOCAL_MACHINE", "HKU": "HKEY_USERS", "HKCR": "HKEY_CLASSES_ROOT",
             "HKCU": "HKEY_CURRENT_USER", "HKCC": "HKEY_CURRENT_CONFIG"}

CBS_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
SESSION_MANAGER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
ENVIRONMENT_KEY = SESSION_MANAGER + "\\Environment"
SERVICES_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services"
UPDATES_KEY = "HKLM\\SOFTWARE\\Microsoft\\Updates"
NT_HOTFIX_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix"
CURRENT_VERSION_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
ADMIN_SID = "S-1-5-21-1214440339-682003330-839522115-500"

# CBS package CurrentState values (Windows servicing stack).
CBS_UNINSTALL_PENDING = 0x05
CBS_INSTALL_PENDING = 0x60
CBS_INSTALLED = 0x70


# --- registry -----------------------------------------------------------------------------------------


@dataclass
class RegValue:
    name: str
    type: int
    data: Any  # str (SZ, EXPAND_SZ), list[str] (MULTI_SZ), int (DWORD, QWORD), bytes (BINARY, NONE)


@dataclass
class RegKey:
    name: str
    subkeys: dict[str, RegKey] = field(default_factory=dict)  # casefolded name -> key
    values: dict[str, RegValue] = field(default_factory=dict)  # casefolded name -> value, insertion order
    volatile: bool = False  # REG_OPTION_VOLATILE: gone after the next boot
    # When a value of the key (or the key) last changed, as Windows keeps it per key (RegQueryInfoKey's
    # lpftLastWriteTime); None: not since the host was set up, before its last boot.
    written: dt.datetime | None = None

    def child(self, name: str) -> RegKey | None:
        return self.subkeys.get(name.casefold())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.name}
        if self.values:
            out["v"] = [[v.name, v.type, _value_to_json(v)] for v in self.values.values()]
        if self.subkeys:
            out["k"] = [k.to_json() for k in self.subkeys.values()]
        if self.volatile:
            out["vol"] = True
        if self.written is not None:
            out["w"] = self.written.isoformat()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegKey:
        key = cls(str(data["n"]), volatile=bool(data.get("vol", False)),
                  written=dt.datetime.fromisoformat(data["w"]) if data.get("w") else None)
        for name, type_, raw in data.get("v", []):
            key.values[name.casefold()] = RegValue(name, type_, _value_from_json(type_, raw))
        for sub in data.get("k", []):
            child = cls.from_json(sub)
            key.subkeys[child.name.casefold()] = child
        return key


def _value_to_json(value: RegValue) -> Any:
    return value.data.hex() if isinstance(value.data, bytes) else value.data


def _value_from_json(type_: int, raw: Any) -> Any:
    if type_ in (REG_BINARY, REG_NONE):
        return bytes.fromhex(raw or "")
    return raw


def check_value(type_: int, data: Any) -> Any:
    """``data`` in the Python shape of ``type_``; ValueError when it does not fit (a DWORD above 2**32-1)."""
    if type_ in (REG_SZ, REG_EXPAND_SZ):
        if not isinstance(data, str):
            raise ValueError(f"{REG_TYPE_NAMES[type_]} needs a string")
        return data
    if type_ == REG_MULTI_SZ:
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise ValueError("REG_MULTI_SZ needs a list of strings")
        return list(data)
    if type_ in (REG_DWORD, REG_QWORD):
        limit = 2**32 if type_ == REG_DWORD else 2**64
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data < limit:
            raise ValueError(f"{REG_TYPE_NAMES[type_]} needs an integer in 0..{limit - 1}")
        return data
    if type_ in (REG_BINARY, REG_NONE):
        if isinstance(data, str):
            return bytes.fromhex(data)
        if data is None:
            return b""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"{REG_TYPE_NAMES[type_]} needs bytes")
        return bytes(data)
    raise ValueError(f"unknown registry type {type_}")


class Registry:
    """Hives HKLM and HKU; HKCR, HKCU and HKCC are views into them, as on Windows."""

    def __init__(self, roots: dict[str, RegKey] | None = None, acl: dict[str, str] | None = None,
                 user_sid: str = ADMIN_SID) -> None:
        self.roots = roots or {"HKLM": RegKey("HKEY_LOCAL_MACHINE"), "HKU": RegKey("HKEY_USERS")}
        self.acl = dict(acl or {})  # canonical key path (casefolded) -> "deny_all" | "deny_write"
        self.user_sid = user_sid

    # path handling -------------------------------------------------------------------------------------

    def split(self, path: str) -> tuple[str, list[str]]:
        """``"HKEY_CURRENT_USER\\Software\\X"`` -> ``("HKU", [sid, "Software", "X"])``.

        KeyError for an unknown hive; ValueError for an empty component (``A\\\\B``) or a leading backslash,
        which RegOpenKeyEx does not accept either."""
        text = path.rstrip("\\")
        if text.startswith("\\"):
            raise ValueError(f"key path starts with a backslash: {path!r}")
        hive, _, rest = text.partition("\\")
        canonical = HIVE_ALIASES.get(hive.casefold())
        if canonical is None:
            raise KeyError(hive)
        parts = rest.split("\\") if rest else []
        if any(not p for p in parts):
            raise ValueError(f"empty key name in {path!r}")
        if canonical == "HKCR":
            return "HKLM", ["SOFTWARE", "Classes", *parts]
        if canonical == "HKCU":
            return "HKU", [self.user_sid, *parts]
        if canonical == "HKCC":
            return "HKLM", ["SYSTEM", "CurrentControlSet", "Hardware Profiles", "Current", *parts]
        return canonical, parts

    def canonical(self, path: str) -> str:
        root, parts = self.split(path)
        return "\\".join([root, *parts])

    def open(self, path: str) -> RegKey | None:
        try:
            root, parts = self.split(path)
        except (KeyError, ValueError):
            return None
        key: RegKey | None = self.roots[root]
        for part in parts:
            key = key.child(part) if key is not None else None
        return key

    def display_path(self, path: str) -> str:
        """The key's full name with its stored case, as reg.exe prints it (``HKEY_LOCAL_MACHINE\\SOFTWARE``)."""
        root, parts = self.split(path)
        names = [HIVE_LONG[root]]
        key: RegKey | None = self.roots[root]
        for part in parts:
            key = key.child(part) if key is not None else None
            names.append(key.name if key is not None else part)
        return "\\".join(names)

    # access --------------------------------------------------------------------------------------------

    def access(self, path: str) -> str:
        """"full", "read" or "none" for the Administrator, from the closest ACL rule at or above the key."""
        try:
            root, parts = self.split(path)
        except (KeyError, ValueError):
            return "full"
        for depth in range(len(parts), -1, -1):
            rule = self.acl.get("\\".join([root, *parts[:depth]]).casefold())
            if rule == "deny_all":
                return "none"
            if rule == "deny_write":
                return "read"
        return "full"

    # changes (no ACL checks: callers that act for a user check ``access`` first) -------------------------

    def create(self, path: str, volatile: bool = False) -> RegKey:
        root, parts = self.split(path)
        key = self.roots[root]
        for part in parts:
            child = key.child(part)
            if child is None:
                child = RegKey(part, volatile=volatile, written=utcnow())
                key.subkeys[part.casefold()] = child
            key = child
        return key

    def get(self, path: str, name: str) -> RegValue | None:
        key = self.open(path)
        return None if key is None else key.values.get(name.casefold())

    def set(self, path: str, name: str, type_: int, data: Any, create: bool = True) -> None:
        key = self.create(path) if create else self.open(path)
        if key is None:
            raise KeyError(path)
        existing = key.values.get(name.casefold())
        stored_name = existing.name if existing is not None else name
        key.values[name.casefold()] = RegValue(stored_name, type_, check_value(type_, data))
        key.written = utcnow()

    def delete_value(self, path: str, name: str) -> bool:
        key = self.open(path)
        if key is None or key.values.pop(name.casefold(), None) is None:
            return False
        key.written = utcnow()
        return True

    def delete_key(self, path: str, recursive: bool = False) -> int:
        """0, 2 (missing) or 5: RegDeleteKey refuses a key that still has subkeys with ERROR_ACCESS_DENIED."""
        try:
            root, parts = self.split(path)
        except (KeyError, ValueError):
            return 2
        if not parts:
            return 5
        parent = self.open("\\".join([root, *parts[:-1]]))
        key = parent.child(parts[-1]) if parent is not None else None
        if parent is None or key is None:
            return 2
        if key.subkeys and not recursive:
            return 5
        del parent.subkeys[parts[-1].casefold()]
        return 0

    def walk(self, path: str) -> Iterator[tuple[str, RegKey]]:
        key = self.open(path)
        if key is None:
            return
        stack = [(path.rstrip("\\"), key)]
        while stack:
            key_path, current = stack.pop()
            yield key_path, current
            for child in reversed(list(current.subkeys.values())):
                stack.append((key_path + "\\" + child.name, child))

    def forget_write_times(self) -> None:
        """The state a host is set up in counts as written before its last boot."""
        for root in self.roots.values():
            stack = [root]
            while stack:
                key = stack.pop()
                key.written = None
                stack.extend(key.subkeys.values())

    def drop_volatile(self) -> None:
        def prune(key: RegKey) -> None:
            for folded, child in list(key.subkeys.items()):
                if child.volatile:
                    del key.subkeys[folded]
                else:
                    prune(child)
        for root in self.roots.values():
            prune(root)

    def to_json(self) -> dict[str, Any]:
        return {"roots": {name: key.to_json() for name, key in self.roots.items()}, "acl": self.acl,
                "user_sid": self.user_sid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Registry:
        roots = {name: RegKey.from_json(raw) for name, raw in data["roots"].items()}
        return cls(roots, dict(data.get("acl", {})), str(data.get("user_sid", ADMIN_SID)))


# --- files --------------------------------------------------------------------------------------------


@dataclass
class FileEntry:
    path: str  # full Windows path with its stored case
    ref: str  # "blob:<sha256>" (immutable, shared) or "local:<name>" (host-private, appendable)
    size: int
    modified: dt.datetime
    created: dt.datetime
    in_use: bool = False  # a loaded image: installers must queue the replacement for the next boot

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"p": self.path, "r": self.ref, "s": self.size, "m": self.modified.isoformat(),
                               "c": self.created.isoformat()}
        if self.in_use:
            out["u"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(data["p"], data["r"], int(data["s"]), dt.datetime.fromisoformat(data["m"]),
                   dt.datetime.fromisoformat(data["c"]), bool(data.get("u", False)))


class FileSystemError(Exception):
    """A file operation failed the way Windows fails it; ``winerror`` is the Win32 error code."""

    def __init__(self, winerror: int, message: str) -> None:
        self.winerror = winerror
        super().__init__(message)


def not_found(path: str) -> FileSystemError:
    return FileSystemError(2, f"The system cannot find the file specified: {path}")


def path_not_found(path: str) -> FileSystemError:
    return FileSystemError(3, f"The system cannot find the path specified: {path}")


_version_cache: dict[str, pe.VersionInfo | None] = {}
_blob_memo: dict[tuple[str, int, int], str] = {}
_version_lock = threading.Lock()


class FileSystem:
    """Drive C: only. Paths are full Windows paths; lookups are case-insensitive."""

    def __init__(self, blob_dir: Path, local_dir: Path) -> None:
        self.blob_dir = blob_dir
        self.local_dir = local_dir
        self.files: dict[str, FileEntry] = {}
        self.dirs: dict[str, str] = {}  # casefolded -> stored case

    @staticmethod
    def key(path: str) -> str:
        return normalize_path(path).casefold()

    # queries -------------------------------------------------------------------------------------------

    def entry(self, path: str) -> FileEntry | None:
        return self.files.get(self.key(path))

    def is_dir(self, path: str) -> bool:
        norm = normalize_path(path)
        return norm.casefold() in self.dirs or _is_drive_root(norm)

    def exists(self, path: str) -> bool:
        return self.entry(path) is not None or self.is_dir(path)

    def listdir(self, path: str) -> list[str]:
        """Full paths of the files and directories directly in ``path``."""
        prefix = normalize_path(path).rstrip("\\").casefold() + "\\"
        found = [e.path for k, e in self.files.items() if k.startswith(prefix) and "\\" not in k[len(prefix):]]
        found += [d for k, d in self.dirs.items() if k.startswith(prefix) and "\\" not in k[len(prefix):]]
        return sorted(found, key=str.casefold)

    def read(self, path: str) -> bytes:
        entry = self.entry(path)
        if entry is None:
            raise path_not_found(path) if not self.is_dir(ntpath.dirname(normalize_path(path))) else not_found(path)
        return self._read_ref(entry.ref)

    def version_info(self, path: str) -> pe.VersionInfo | None:
        entry = self.entry(path)
        if entry is None:
            return None
        cache_key = entry.ref if entry.ref.startswith("blob:") else f"{entry.ref}:{entry.size}:{entry.modified}"
        with _version_lock:
            if cache_key in _version_cache:
                return _version_cache[cache_key]
        info = pe.read_version_info(self._read_ref(entry.ref))
        with _version_lock:
            _version_cache[cache_key] = info
        return info

    # changes -------------------------------------------------------------------------------------------

    def mkdir(self, path: str, parents: bool = True) -> None:
        norm = normalize_path(path)
        if self.entry(norm) is not None:
            raise FileSystemError(183, f"Cannot create a file when that file already exists: {norm}")
        chain = []
        current = norm
        while not _is_drive_root(current):
            chain.append(current)
            current = ntpath.dirname(current)
        if not _is_drive_root(current) or current[:2].upper() != "C:":
            raise path_not_found(path)
        for directory in reversed(chain):
            if directory.casefold() in self.dirs:
                continue
            if not parents and directory != norm:
                raise path_not_found(path)
            self.dirs[directory.casefold()] = directory

    def rmdir(self, path: str) -> None:
        norm = normalize_path(path)
        if norm.casefold() not in self.dirs:
            raise not_found(path)
        if self.listdir(norm):
            raise FileSystemError(145, "The directory is not empty.")
        del self.dirs[norm.casefold()]

    def store_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.blob_dir / digest
        if not target.exists():
            self.blob_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, data)
        return digest

    def link_blob(self, source: Path) -> tuple[str, int]:
        """Put a cached file (a built PE) into the blob store; its digest is remembered per process so a
        fleet of hosts does not hash the same multi-megabyte file again and again."""
        stat = source.stat()
        memo_key = (str(source), stat.st_size, stat.st_mtime_ns)
        with _version_lock:
            known = _blob_memo.get(memo_key)
        if known is not None and (self.blob_dir / known).exists():
            return known, stat.st_size
        data = source.read_bytes()
        digest = self.store_blob(data)
        with _version_lock:
            _blob_memo[memo_key] = digest
        return digest, len(data)

    def place(self, path: str, ref: str, size: int, modified: dt.datetime, in_use: bool = False) -> FileEntry:
        norm = normalize_path(path)
        parent = ntpath.dirname(norm)
        if not self.is_dir(parent):
            raise path_not_found(path)
        if norm.casefold() in self.dirs:
            raise FileSystemError(5, f"Access is denied: {norm}")
        old = self.files.get(norm.casefold())
        entry = FileEntry(old.path if old else norm, ref, size, modified,
                          old.created if old else modified, in_use or (old.in_use if old else False))
        self.files[norm.casefold()] = entry
        if old is not None and old.ref != ref:
            self._release(old.ref)
        return entry

    def write(self, path: str, data: bytes, append: bool = False, now: dt.datetime | None = None) -> FileEntry:
        """Write or append to a file through a host-private local file (cmd redirection, decoders)."""
        moment = now or utcnow()
        norm = normalize_path(path)
        old = self.entry(norm)
        if old is not None and old.in_use:
            raise FileSystemError(32, "The process cannot access the file because it is being used by another "
                                      "process.")
        if append and old is not None and old.ref.startswith("local:"):
            target = self._local_path(old.ref)
            with open(target, "ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            old.size += len(data)
            old.modified = moment
            return old
        content = (self._read_ref(old.ref) if (append and old is not None) else b"") + data
        name = secrets.token_hex(8)
        self.local_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.local_dir / name, content)
        try:
            return self.place(norm, f"local:{name}", len(content), moment)
        except FileSystemError:
            (self.local_dir / name).unlink(missing_ok=True)
            raise

    def delete(self, path: str) -> None:
        entry = self.files.pop(self.key(path), None)
        if entry is None:
            raise not_found(path)
        self._release(entry.ref)

    def move(self, source: str, dest: str, replace: bool) -> None:
        entry = self.entry(source)
        if entry is None:
            raise not_found(source)
        if self.entry(dest) is not None and not replace:
            raise FileSystemError(183, f"Cannot create a file when that file already exists: {dest}")
        del self.files[self.key(source)]
        old = self.files.pop(self.key(dest), None)
        dest_norm = normalize_path(dest)
        self.files[dest_norm.casefold()] = FileEntry(old.path if old else dest_norm, entry.ref, entry.size,
                                                     entry.modified, entry.created, old.in_use if old else False)
        if old is not None and old.ref != entry.ref:
            self._release(old.ref)

    # internals -----------------------------------------------------------------------------------------

    def _local_path(self, ref: str) -> Path:
        return self.local_dir / ref.split(":", 1)[1]

    def _read_ref(self, ref: str) -> bytes:
        kind, _, name = ref.partition(":")
        return (self.blob_dir / name if kind == "blob" else self.local_dir / name).read_bytes()

    def _release(self, ref: str) -> None:
        # Blobs are shared by every host of the state directory: never deleted here. Local files are ours,
        # unless another entry (a backup copy) still points at the same one.
        if ref.startswith("local:") and not any(e.ref == ref for e in self.files.values()):
            self._local_path(ref).unlink(missing_ok=True)

    def to_json(self) -> dict[str, Any]:
        return {"files": [e.to_json() for e in self.files.values()], "dirs": sorted(self.dirs.values())}

    def load_json(self, data: Mapping[str, Any]) -> None:
        self.files = {}
        for raw in data.get("files", []):
            entry = FileEntry.from_json(raw)
            self.files[entry.path.casefold()] = entry
        self.dirs = {d.casefold(): d for d in data.get("dirs", [])}


def normalize_path(path: str) -> str:
    """Collapse ``.``/``..`` and doubled separators; ``C:`` -> ``C:\\``. Forward slashes count as separators
    (the Win32 file API accepts them)."""
    text = path.replace("/", "\\")
    if len(text) == 2 and text[1] == ":":
        text += "\\"
    norm = ntpath.normpath(text)
    if len(norm) >= 2 and norm[1] == ":":
        norm = norm[0].upper() + norm[1:]
    return norm


def _is_drive_root(path: str) -> bool:
    return len(path) == 3 and path[1:] == ":\\"


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


# --- operating system identity ------------------------------------------------------------------------


@dataclass
class OsInfo:
    caption: str
    version: str  # "5.1.2600"
    sp_major: int
    sp_minor: int
    csd_version: str | None  # "Service Pack 1"; None before the first service pack
    product_type: int  # 1 workstation, 2 domain controller, 3 server
    architecture: str  # "x86" | "x64" | "ia64"
    system_root: str  # "C:\\WINDOWS"
    product_name: str
    build_lab: str
    other_type_description: str | None = None  # "R2" on Windows Server 2003 R2
    registered_owner: str = "Administrator"
    organization: str = ""
    serial_number: str = ""
    install_date: str = "2008-01-01T00:00:00+00:00"
    suite_mask: int = 272
    edition: str = ""

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def build(self) -> str:
        return self.version.split(".")[2]

    @property
    def nt6(self) -> bool:
        return self.major >= 6

    @property
    def processor_architecture(self) -> str:
        return {"x86": "x86", "x64": "AMD64", "ia64": "IA64"}[self.architecture]


# --- profiles -----------------------------------------------------------------------------------------


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yml") if not p.stem.startswith("_"))


def load_profile(name: str) -> dict[str, Any]:
    """The profile with its ``extends`` chain merged (mappings merge key by key, anything else replaces)."""
    path = PROFILE_DIR / f"{name}.yml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path.exists():
        raise ValueError(f"unknown winsim profile {name!r}; known: {', '.join(profile_names())}")
    data = copy.deepcopy(_read_profile(path))
    parent = data.pop("extends", None)
    if parent:
        return deep_merge(load_profile(parent), data)
    return dict(data)


@functools.lru_cache(maxsize=64)
def _read_profile(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Overrides accepted by ``Host.create`` (anything else is a typo and fails loudly).
OVERRIDE_KEYS = {
    "winrm_version", "listener", "credentials", "reboot_seconds", "domain", "os", "features", "files", "registry",
    "remove_services", "services", "installed", "pending", "acl", "shares", "share_root", "blob_dir", "hotfixes",
    "uptime_hours",
}


# --- the host -----------------------------------------------------------------------------------------


class Host:
    """One simulated Windows machine. Thread-safe: every public method holds the host's lock."""

    def __init__(self, state: dict[str, Any], state_path: Path) -> None:
        self.state_path = Path(state_path)
        self._lock = threading.RLock()
        self._processes: weakref.WeakSet[Process] = weakref.WeakSet()
        self._saved: bytes | None = None
        self._restore(state)

    # construction and persistence -----------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, profile: str, state_path: Path, **overrides: Any) -> Host:
        unknown = set(overrides) - OVERRIDE_KEYS
        if unknown:
            raise ValueError(f"unknown override(s) {sorted(unknown)}; accepted: {sorted(OVERRIDE_KEYS)}")
        state_path = Path(state_path)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state, spec = _initial_state(name, profile, state_path, overrides)
        host = cls(state, state_path)
        _populate(host, spec, overrides)
        host.registry.forget_write_times()
        host.save()
        return host

    @classmethod
    def load(cls, state_path: Path) -> Host:
        state = json.loads(Path(state_path).read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{state_path}: unsupported winsim state format {state.get('format')!r}")
        return cls(state, Path(state_path))

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.name: str = state["name"]
        self.profile_name: str = state["profile"]
        self.winrm_version: str = state["winrm_version"]
        self.listener: bool = bool(state["listener"])
        self.credentials: dict[str, str] = dict(state["credentials"])
        self.reboot_seconds: float = float(state["reboot_seconds"])
        self.domain: str = state.get("domain", "WORKGROUP")
        self.os = OsInfo(**state["os"])
        self.features: dict[str, Any] = dict(state["features"])
        self.registry = Registry.from_json(state["registry"])
        self.fs = FileSystem(Path(state["blob_dir"]), self.local_dir)
        self.fs.load_json(state["fs"])
        self.service_state: dict[str, str] = dict(state.get("service_state", {}))
        self.shares: dict[str, str] = dict(state.get("shares", {}))
        self.share_root: str | None = state.get("share_root")
        self.boot_time = dt.datetime.fromisoformat(state["boot_time"])
        self.boot_id: int = int(state.get("boot_id", 1))
        self.flags: dict[str, Any] = dict(state.get("flags", {}))
        # Every run of a hotfix installer that got as far as judging the host ({hotfix_id, installer,
        # exit_code, installed}): a fleet campaign proves from it that no package was installed twice.
        self.installer_runs: list[dict[str, Any]] = [dict(r) for r in state.get("installer_runs", [])]
        self._reboot_at: float | None = state.get("reboot_at")
        self._down_until: float | None = state.get("down_until")
        self._powered_off: bool = bool(state.get("powered_off", False))
        self._shutdown_started: bool = bool(state.get("shutdown_started", False))

    @property
    def local_dir(self) -> Path:
        return self.state_path.with_name(self.state_path.stem + ".files")

    def to_state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT, "name": self.name, "profile": self.profile_name,
            "winrm_version": self.winrm_version, "listener": self.listener, "credentials": self.credentials,
            "reboot_seconds": self.reboot_seconds, "domain": self.domain, "os": self.os.__dict__.copy(),
            "features": self.features, "registry": self.registry.to_json(), "blob_dir": str(self.fs.blob_dir),
            "fs": self.fs.to_json(), "service_state": self.service_state, "shares": self.shares,
            "share_root": self.share_root, "boot_time": self.boot_time.isoformat(), "boot_id": self.boot_id,
            "flags": self.flags, "installer_runs": self.installer_runs, "reboot_at": self._reboot_at,
            "down_until": self._down_until,
            "powered_off": self._powered_off, "shutdown_started": self._shutdown_started,
        }

    def save(self) -> None:
        """Atomic write: a reader (or a crash) sees the old state or the new one, never half of one.
        Skipped when nothing changed since the last write (reads are far more frequent than changes)."""
        with self._lock:
            data = json.dumps(self.to_state(), separators=(",", ":")).encode()
            if data == self._saved:
                return
            _write_atomic(self.state_path, data)
            self._saved = data

    # convenience views ---------------------------------------------------------------------------------

    @property
    def system_root(self) -> str:
        return self.os.system_root

    @property
    def system32(self) -> str:
        return self.os.system_root + "\\system32"

    @property
    def user(self) -> str:
        return next(iter(self.credentials), "Administrator")

    @property
    def user_profile(self) -> str:
        if self.os.major < 5:
            return f"{self.os.system_root}\\Profiles\\{self.user}"
        if self.os.nt6:
            return f"C:\\Users\\{self.user}"
        return f"C:\\Documents and Settings\\{self.user}"

    def has_tool(self, name: str) -> bool:
        return name.casefold() in {t.casefold() for t in self.features.get("tools", [])}

    def environment(self) -> dict[str, str]:
        """The environment a process started by WinRS sees (system + user variables, expanded)."""
        with self._lock:
            env: dict[str, str] = {}
            system = self.registry.open(ENVIRONMENT_KEY)
            raw = list(system.values.values()) if system else []
            user_env = self.registry.open(f"HKU\\{self.registry.user_sid}\\Environment")
            base = self._fixed_environment()
            for value in raw + (list(user_env.values.values()) if user_env else []):
                text = value.data if isinstance(value.data, str) else ""
                if value.type == REG_EXPAND_SZ:
                    text = expand_vars(text, {**base, **env})
                if value.name.casefold() == "path" and "Path" in env:
                    text = env["Path"] + ";" + text  # user PATH is appended to the system PATH
                    env["Path"] = text
                    continue
                env[value.name] = text
            merged = {**base, **env}
            return dict(sorted(merged.items(), key=lambda kv: kv[0].casefold()))

    def _fixed_environment(self) -> dict[str, str]:
        # Variables Windows computes at logon rather than reading from the Environment key.
        env = {
            "ALLUSERSPROFILE": "C:\\ProgramData" if self.os.nt6 else "C:\\Documents and Settings\\All Users",
            "APPDATA": (self.user_profile + "\\AppData\\Roaming") if self.os.nt6
            else (self.user_profile + "\\Application Data"),
            "COMPUTERNAME": self.name.upper(),
            "CommonProgramFiles": "C:\\Program Files\\Common Files",
            "HOMEDRIVE": "C:", "HOMEPATH": self.user_profile[2:],
            "LOGONSERVER": "\\\\" + self.name.upper(),
            "ProgramFiles": "C:\\Program Files",
            "SystemDrive": "C:", "SystemRoot": self.os.system_root,
            "USERDOMAIN": self.name.upper() if self.domain == "WORKGROUP" else self.domain.split(".")[0].upper(),
            "USERNAME": self.user, "USERPROFILE": self.user_profile,
        }
        if self.os.nt6:
            env.update({"LOCALAPPDATA": self.user_profile + "\\AppData\\Local", "ProgramData": "C:\\ProgramData",
                        "PUBLIC": "C:\\Users\\Public"})
        if self.os.architecture != "x86":
            env.update({"ProgramFiles(x86)": "C:\\Program Files (x86)",
                        "CommonProgramFiles(x86)": "C:\\Program Files (x86)\\Common Files"})
        return env

    def expand(self, text: str) -> str:
        return expand_vars(text, self.environment())

    def file_version(self, path: str) -> str | None:
        info = self.fs.version_info(self.expand(path))
        if info is None:
            return None
        return info.file_version or info.fixed_version

    # services ------------------------------------------------------------------------------------------

    def services(self) -> list[dict[str, Any]]:
        """Win32 services (not drivers) from ``HKLM\\SYSTEM\\CurrentControlSet\\Services``."""
        with self._lock:
            root = self.registry.open(SERVICES_KEY)
            out = []
            for key in (root.subkeys.values() if root else []):
                type_value = key.values.get("type")
                service_type = type_value.data if type_value and isinstance(type_value.data, int) else 0
                if not service_type & 0x30:  # 0x10 own process, 0x20 shared process; 1/2 are drivers
                    continue
                start = key.values.get("start")
                image = key.values.get("imagepath")
                display = key.values.get("displayname")
                out.append({
                    "name": key.name, "type": service_type,
                    "start": start.data if start else 3,
                    "image_path": image.data if image else "",
                    "display_name": display.data if display else key.name,
                    "state": self.service_running_state(key.name),
                })
            return out

    def service_running_state(self, name: str) -> str:
        known = self.service_state.get(name.casefold())
        if known:
            return known
        start = self.registry.get(f"{SERVICES_KEY}\\{name}", "Start")
        return "Running" if start is not None and start.data in (0, 1, 2) else "Stopped"

    def file_in_use(self, path: str) -> bool:
        """Would Windows refuse to overwrite this file now? Loaded drivers, running service images and
        DLLs the profile marks as loaded."""
        norm = normalize_path(self.expand(path))
        entry = self.fs.entry(norm)
        if entry is None:
            return False
        if entry.in_use:
            return True
        drivers = normalize_path(self.system32 + "\\drivers").casefold() + "\\"
        if norm.casefold().startswith(drivers) and norm.casefold().endswith(".sys"):
            return True
        for service in self.services():
            if service["state"] != "Running":
                continue
            image = _image_from_command(self.expand(str(service["image_path"])), self.system_root)
            if image and image.casefold() == norm.casefold():
                return True
        return False

    # reboot --------------------------------------------------------------------------------------------

    def is_up(self) -> bool:
        with self._lock:
            self._tick()
            return not self._is_down()

    def _is_down(self) -> bool:
        if self._powered_off:
            return True
        return self._reboot_at is not None and time.time() >= self._reboot_at

    def reboot(self, delay_seconds: float = 0) -> None:
        """Schedule a restart in ``delay_seconds``; the host is then down for ``reboot_seconds``."""
        with self._lock:
            self._schedule_down(delay_seconds, self.reboot_seconds)

    def power_off(self, delay_seconds: float = 0) -> None:
        """``shutdown /s``: down until ``power_on``."""
        with self._lock:
            self._schedule_down(delay_seconds, None)

    def _schedule_down(self, delay_seconds: float, down_for: float | None) -> None:
        """Start (or bring forward) a shutdown; ``down_for`` None = stay off until ``power_on``.

        The end of the down window is set before the state is saved and the clock ticks again: with a very
        short window, saving alone can outlast it, and a power-off must never boot on that tick."""
        self._tick()
        if self._is_down():
            if down_for is None:
                self._down_until = None
                self.save()
            return
        start = time.time() + max(0.0, float(delay_seconds))
        if self._reboot_at is not None:
            start = min(start, self._reboot_at)
        self._reboot_at = start
        self._down_until = None if down_for is None else start + down_for
        self._shutdown_started = False
        self.save()
        self._tick()

    def power_on(self) -> None:
        with self._lock:
            if self._reboot_at is None or self._down_until is not None:
                return
            self._down_until = time.time()
            self.save()
            self._tick()

    def reboot_scheduled(self) -> bool:
        with self._lock:
            self._tick()
            return self._reboot_at is not None and time.time() < self._reboot_at

    def cancel_reboot(self) -> bool:
        """``shutdown /a``: True when a scheduled restart that has not begun was cancelled."""
        with self._lock:
            if not self.reboot_scheduled():
                return False
            self._reboot_at = self._down_until = None
            self.save()
            return True

    def _tick(self) -> None:
        now = time.time()
        if self._reboot_at is None or now < self._reboot_at:
            return
        if not self._shutdown_started:
            self._shutdown_started = True
            for process in list(self._processes):
                process.kill_for_shutdown()
            self.save()
        if self._down_until is not None and now >= self._down_until:
            self._boot(dt.datetime.fromtimestamp(self._down_until, UTC).replace(microsecond=0))

    def _boot(self, at: dt.datetime) -> None:
        self.apply_pending_operations()
        self.boot_time = at
        self.boot_id += 1
        self.service_state = {}
        self._reboot_at = self._down_until = None
        self._shutdown_started = False
        self.save()

    def apply_pending_operations(self) -> None:
        """What the session manager and the servicing stack do early in a boot."""
        with self._lock:
            self._apply_file_renames()
            self._apply_cbs_pending()
            self.registry.drop_volatile()

    def _apply_file_renames(self) -> None:
        value = self.registry.get(SESSION_MANAGER, "PendingFileRenameOperations")
        if value is None:
            return
        items = list(value.data) if isinstance(value.data, list) else []
        for source, dest in zip(items[0::2], items[1::2], strict=False):
            src = _strip_nt_prefix(source)
            try:
                if not dest:
                    self.fs.delete(src)
                else:
                    replace = dest.startswith("!")
                    self.fs.move(src, _strip_nt_prefix(dest.lstrip("!")), replace=replace)
            except FileSystemError:
                continue  # Windows skips an operation whose source vanished
        self.registry.delete_value(SESSION_MANAGER, "PendingFileRenameOperations")

    def _apply_cbs_pending(self) -> None:
        pending = normalize_path(self.system_root + "\\winsxs\\pending.xml")
        if self.fs.entry(pending) is not None:
            root = ET.fromstring(self.fs.read(pending))
            for op in root:
                try:
                    if op.tag == "HardlinkFile":
                        self._hardlink(_strip_nt_prefix(op.get("source", "")), self._from_system_root(
                            op.get("destination", "")))
                    elif op.tag == "DeleteFile":
                        self.fs.delete(self._from_system_root(op.get("path", "")))
                except FileSystemError:
                    continue  # the servicing stack skips an operation whose file is gone
            self.fs.delete(pending)
        self.registry.delete_key(CBS_KEY + "\\RebootPending", recursive=True)
        packages = self.registry.open(CBS_KEY + "\\Packages")
        for key in list(packages.subkeys.values()) if packages else []:
            state = key.values.get("currentstate")
            if state is not None and state.data == CBS_INSTALL_PENDING:
                state.data = CBS_INSTALLED
            elif state is not None and state.data == CBS_UNINSTALL_PENDING:
                self.registry.delete_key(f"{CBS_KEY}\\Packages\\{key.name}", recursive=True)
                mum = f"{self.system_root}\\servicing\\Packages\\{key.name}.mum"
                if self.fs.entry(mum) is not None:
                    self.fs.delete(mum)

    def _from_system_root(self, path: str) -> str:
        return self.system_root + path[len("\\SystemRoot"):] if path.casefold().startswith("\\systemroot") \
            else path

    def _hardlink(self, source: str, dest: str) -> None:
        entry = self.fs.entry(source)
        if entry is None:
            raise FileSystemError(2, source)
        ref = entry.ref if entry.ref.startswith("blob:") else "blob:" + self.fs.store_blob(self.fs.read(source))
        self.fs.place(dest, ref, entry.size, entry.modified)

    def reboot_pending_indicators(self) -> list[str]:
        """Where Windows records that a restart is needed (for tests; clients read the registry)."""
        with self._lock:
            found = []
            if self.registry.get(SESSION_MANAGER, "PendingFileRenameOperations") is not None:
                found.append("PendingFileRenameOperations")
            if self.registry.open(CBS_KEY + "\\RebootPending") is not None:
                found.append("CBS RebootPending")
            if self.registry.open(UPDATES_KEY + "\\UpdateExeVolatile") is not None:
                found.append("UpdateExeVolatile")
            return found

    # WMI -----------------------------------------------------------------------------------------------

    def wmi_enumerate(self, namespace: str, class_name: str, filtered: bool = False) -> list[Instance]:
        """Every instance of the class. ``filtered``: the caller applies a WQL WHERE clause to the result
        (CIM_DataFile refuses an unfiltered enumeration, see ``wmi.py``)."""
        from . import wmi

        with self._lock:
            self._tick()
            return wmi.enumerate_instances(self, namespace, class_name, filtered)

    def wmi_get(self, namespace: str, class_name: str, selectors: dict[str, str]) -> Instance:
        from . import wmi

        with self._lock:
            self._tick()
            return wmi.get_instance(self, namespace, class_name, selectors)

    def wmi_invoke(self, namespace: str, class_name: str, method: str, selectors: dict[str, str],
                   params: dict[str, object]) -> dict[str, object]:
        from . import wmi

        with self._lock:
            self._tick()
            result = wmi.invoke(self, namespace, class_name, method, selectors, params)
            self.save()
            return result

    # processes -----------------------------------------------------------------------------------------

    def start_process(self, command: str, arguments: list[str], cwd: str | None) -> Process:
        from .cmd import Process

        with self._lock:
            self._tick()
            process = Process(self, command, list(arguments), cwd)
            self._processes.add(process)
            process.start()
            return process

    @property
    def lock(self) -> threading.RLock:
        return self._lock


# --- helpers shared with cmd.py and packages.py ---------------------------------------------------------

_VAR = re.compile(r"%([^%\r\n]+)%")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """``%Name%`` expansion, case-insensitive; unknown variables stay as written (ExpandEnvironmentStrings)."""
    folded = {k.casefold(): v for k, v in env.items()}

    def sub(match: re.Match[str]) -> str:
        return folded.get(match.group(1).casefold(), match.group(0))

    return _VAR.sub(sub, text)


def _strip_nt_prefix(path: str) -> str:
    for prefix in ("\\??\\", "\\\\?\\"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _image_from_command(command: str, system_root: str) -> str | None:
    """The executable of a service ImagePath (``"C:\\x.exe" -k y``, ``system32\\DRIVERS\\x.sys``)."""
    text = command.strip()
    if not text:
        return None
    if text.startswith('"'):
        image = text[1:].split('"', 1)[0]
    else:
        image = text.split(" ", 1)[0]
    if image.casefold().startswith("\\systemroot\\"):
        image = system_root + image[len("\\SystemRoot"):]
    elif not (len(image) > 1 and image[1] == ":"):
        image = system_root + "\\" + image
    return normalize_path(image)


def filetime(moment: dt.datetime) -> int:
    """100-ns intervals since 1601-01-01 UTC."""
    epoch = dt.datetime(1601, 1, 1, tzinfo=UTC)
    return int((moment - epoch).total_seconds() * 10_000_000)


# --- building a host from its profile -------------------------------------------------------------------


def _initial_state(name: str, profile_name: str, state_path: Path,
                   overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = load_profile(profile_name)
    for key in ("os", "features", "files", "services", "registry", "hotfixes", "acl", "credentials"):
        if key in overrides and overrides[key] is not None:
            spec[key] = deep_merge(spec.get(key) or {}, overrides[key]) if key != "credentials" \
                else dict(overrides[key])
    for key in ("winrm_version", "listener", "reboot_seconds", "domain", "uptime_hours"):
        if key in overrides:
            spec[key] = overrides[key]
    os_fields = dict(spec["os"])
    if isinstance(os_fields.get("install_date"), dt.datetime):
        os_fields["install_date"] = _aware(os_fields["install_date"]).isoformat()
    uptime = dt.timedelta(hours=float(spec.get("uptime_hours", 72)))
    blob_dir = Path(overrides.get("blob_dir") or state_path.parent / "blobs")
    state: dict[str, Any] = {
        "format": STATE_FORMAT, "name": name, "profile": profile_name,
        "winrm_version": str(spec.get("winrm_version") or ""), "listener": bool(spec.get("listener", True)),
        "credentials": dict(spec.get("credentials") or {"Administrator": "W1nsim!Pass"}),
        "reboot_seconds": float(spec.get("reboot_seconds", 2)), "domain": spec.get("domain", "WORKGROUP"),
        "os": os_fields, "features": dict(spec.get("features") or {}),
        "registry": Registry(acl={k.casefold(): v for k, v in _default_acl(os_fields).items()}).to_json(),
        "blob_dir": str(blob_dir.resolve()), "fs": {"files": [], "dirs": []},
        "shares": {k: str(v) for k, v in (overrides.get("shares") or {}).items()},
        "share_root": str(overrides["share_root"]) if overrides.get("share_root") else None,
        "boot_time": (utcnow() - uptime).isoformat(), "boot_id": 1, "flags": {},
    }
    for key, rule in (spec.get("acl") or {}).items():
        root, parts = Registry().split(key)
        state["registry"]["acl"]["\\".join([root, *parts]).casefold()] = rule
    return state, spec


def _default_acl(os_fields: Mapping[str, Any]) -> dict[str, str]:
    acl = {"HKLM\\SAM\\SAM": "deny_all", "HKLM\\SECURITY": "deny_all"}
    if int(str(os_fields["version"]).split(".")[0]) >= 6:
        # The CBS store is owned by TrustedInstaller; Administrators may read it but not change it.
        acl[CBS_KEY] = "deny_write"
    return acl


def _aware(moment: dt.datetime | dt.date | str) -> dt.datetime:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _populate(host: Host, spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    from . import packages

    removed = {s.casefold() for s in overrides.get("remove_services") or []}
    services = {n: s for n, s in (spec.get("services") or {}).items() if s is not None and n.casefold() not in removed}
    removed_files = {
        f.casefold() for n, s in (spec.get("services") or {}).items() if s and n.casefold() in removed
        for f in s.get("files", [])
    }
    _standard_dirs(host, spec.get("dirs") or [])
    _standard_registry(host, spec)
    for name, service in services.items():
        _add_service(host, name, service)
    for key, values in (spec.get("registry") or {}).items():
        _apply_registry_spec(host, key, values)
    for path, file_spec in (spec.get("files") or {}).items():
        if file_spec is None or path.casefold() in removed_files:
            continue
        add_file(host, path, file_spec)
    for hotfix_id, record in (spec.get("hotfixes") or {}).items():
        if record is not None:
            packages.write_profile_hotfix(host, hotfix_id, record)
    for kb in overrides.get("installed") or []:
        packages.preinstall(host, kb, rebooted=True)
    for kb in overrides.get("pending") or []:
        packages.preinstall(host, kb, rebooted=False)


def _standard_dirs(host: Host, extra: list[str]) -> None:
    root = host.system_root
    dirs = [root, root + "\\system32", root + "\\system32\\drivers", root + "\\system32\\config",
            root + "\\system32\\wbem", root + "\\Temp", "C:\\Program Files", host.user_profile]
    if host.os.nt6:
        dirs += [root + "\\winsxs", root + "\\system32\\en-US", host.user_profile + "\\AppData\\Local\\Temp",
                 "C:\\ProgramData", "C:\\Users\\Public"]
    elif host.os.major == 5:
        dirs += [host.user_profile + "\\Local Settings\\Temp", "C:\\Documents and Settings\\All Users"]
    if host.os.architecture != "x86" and host.os.major >= 5:
        dirs += [root + "\\SysWOW64", "C:\\Program Files (x86)"]
    for directory in dirs + [host.expand(d) for d in extra]:
        host.fs.mkdir(directory)


# VER_SUITE_* bits of OSVERSIONINFOEX.wSuiteMask and the ProductSuite words Windows writes for them.
_PRODUCT_SUITES = ((0x2, "Enterprise"), (0x4, "BackOffice"), (0x10, "Terminal Server"),
                   (0x20, "Small Business(Restricted)"), (0x80, "DataCenter"), (0x200, "Blade"))


def _standard_registry(host: Host, spec: Mapping[str, Any]) -> None:
    """Keys every Windows of the era has, generated from the OS identity so profiles do not repeat them."""
    reg, os_info = host.registry, host.os
    nt6 = os_info.nt6
    cv = CURRENT_VERSION_KEY
    install_epoch = int(_aware(os_info.install_date).timestamp())
    values: dict[str, tuple[int, Any]] = {
        "ProductName": (REG_SZ, os_info.product_name),
        "CurrentVersion": (REG_SZ, f"{os_info.major}.{os_info.minor}"),
        "CurrentBuildNumber": (REG_SZ, os_info.build),
        # XP and 2003 keep a meaningless CurrentBuild; Vista made it the build number again.
        "CurrentBuild": (REG_SZ, os_info.build if nt6 or os_info.major < 5
                         else "1.511.1 () (Obsolete data - do not use)"),
        "BuildLab": (REG_SZ, os_info.build_lab),
        "CurrentType": (REG_SZ, "Multiprocessor Free"),
        "SystemRoot": (REG_SZ, os_info.system_root),
        "RegisteredOwner": (REG_SZ, os_info.registered_owner),
        "RegisteredOrganization": (REG_SZ, os_info.organization),
        "ProductId": (REG_SZ, os_info.serial_number),
        "InstallDate": (REG_DWORD, install_epoch),
        "SoftwareType": (REG_SZ, "System"),
        "PathName": (REG_SZ, os_info.system_root),
    }
    if os_info.csd_version:
        values["CSDVersion"] = (REG_SZ, os_info.csd_version)
    if nt6 and os_info.edition:
        values["EditionID"] = (REG_SZ, os_info.edition)
    for name, (type_, data) in values.items():
        reg.set(cv, name, type_, data)
    reg.create(NT_HOTFIX_KEY)

    pathext = ".COM;.EXE;.BAT;.CMD" if os_info.major < 5 else ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH"
    if nt6:
        pathext += ";.MSC"
    cpu = {"x86": "x86 Family 6 Model 15 Stepping 11, GenuineIntel",
           "x64": ("Intel64" if nt6 else "EM64T") + " Family 6 Model 15 Stepping 11, GenuineIntel",
           "ia64": "ia64 Family 32 Model 1 Stepping 5, GenuineIntel"}[os_info.architecture]
    env: dict[str, tuple[int, str]] = {
        "ComSpec": (REG_EXPAND_SZ, "%SystemRoot%\\system32\\cmd.exe"),
        "NUMBER_OF_PROCESSORS": (REG_SZ, "2"),
        "OS": (REG_SZ, "Windows_NT"),
        "Path": (REG_EXPAND_SZ, "%SystemRoot%\\system32;%SystemRoot%" +
                 (";%SystemRoot%\\System32\\Wbem" if os_info.major >= 5 else "")),
        "PATHEXT": (REG_SZ, pathext),
        "PROCESSOR_ARCHITECTURE": (REG_SZ, os_info.processor_architecture),
        "PROCESSOR_IDENTIFIER": (REG_SZ, cpu),
        "PROCESSOR_LEVEL": (REG_SZ, "6"),
        "PROCESSOR_REVISION": (REG_SZ, "0f0b"),
        "TEMP": (REG_EXPAND_SZ, "%SystemRoot%\\TEMP"),
        "TMP": (REG_EXPAND_SZ, "%SystemRoot%\\TEMP"),
        "windir": (REG_EXPAND_SZ, "%SystemRoot%"),
    }
    for name, (type_, data) in env.items():
        reg.set(ENVIRONMENT_KEY, name, type_, data)
    user_temp = "%USERPROFILE%\\AppData\\Local\\Temp" if nt6 else "%USERPROFILE%\\Local Settings\\Temp"
    for name in ("TEMP", "TMP"):
        reg.set(f"HKU\\{reg.user_sid}\\Environment", name, REG_EXPAND_SZ, user_temp)
    reg.create("HKU\\.DEFAULT\\Software\\Microsoft")
    reg.create("HKU\\S-1-5-18\\Software\\Microsoft")
    reg.create(f"HKU\\{reg.user_sid}\\Software\\Microsoft")

    # ProductOptions: what every NT since 3.1 records its product type in (what GetVersionEx's wProductType and
    # wSuiteMask are derived from; NT 4.0 has no WMI, so a remote registry reader learns the edition here).
    options = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\ProductOptions"
    reg.set(options, "ProductType", REG_SZ, {1: "WinNT", 2: "LanmanNT", 3: "ServerNT"}[os_info.product_type])
    suites = [name for bit, name in _PRODUCT_SUITES if os_info.suite_mask & bit]
    reg.set(options, "ProductSuite", REG_MULTI_SZ, suites)
    computer = host.name.upper()
    control = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\ComputerName"
    reg.set(control + "\\ComputerName", "ComputerName", REG_SZ, computer)
    reg.set(control + "\\ActiveComputerName", "ComputerName", REG_SZ, computer)
    tcpip = SERVICES_KEY + "\\Tcpip\\Parameters"
    reg.set(tcpip, "Hostname", REG_SZ, host.name)
    reg.set(tcpip, "NV Hostname", REG_SZ, host.name)
    reg.set(tcpip, "Domain", REG_SZ, "" if host.domain == "WORKGROUP" else host.domain)
    reg.create(SESSION_MANAGER)
    reg.set("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion", "ProgramFilesDir", REG_SZ, "C:\\Program Files")
    reg.set("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion", "CommonFilesDir", REG_SZ,
            "C:\\Program Files\\Common Files")
    reg.set("HKLM\\SOFTWARE\\Classes\\.txt", "", REG_SZ, "txtfile")
    reg.create("HKLM\\SAM\\SAM\\Domains\\Account")
    reg.create("HKLM\\SECURITY\\Policy")
    reg.create("HKLM\\HARDWARE\\DESCRIPTION\\System")
    if os_info.major == 5:
        reg.create(UPDATES_KEY)
    if nt6:
        reg.create(CBS_KEY + "\\Packages")
        reg.set(CBS_KEY + "\\Version", "6.0.6000.16386" if os_info.minor == 0 else "6.1.7600.16385",
                REG_EXPAND_SZ, "%SystemRoot%\\winsxs\\" + ("x86" if os_info.architecture == "x86" else "amd64") +
                "_microsoft-windows-servicingstack_31bf3856ad364e35_none")


def _add_service(host: Host, name: str, service: Mapping[str, Any]) -> None:
    key = f"{SERVICES_KEY}\\{name}"
    reg = host.registry
    reg.set(key, "DisplayName", REG_SZ, str(service.get("display_name", name)))
    reg.set(key, "ImagePath", REG_EXPAND_SZ, str(service["image_path"]))
    reg.set(key, "Type", REG_DWORD, int(service.get("type", 0x10)))
    reg.set(key, "Start", REG_DWORD, int(service.get("start", 2)))
    reg.set(key, "ErrorControl", REG_DWORD, int(service.get("error_control", 1)))
    if int(service.get("type", 0x10)) & 0x30:
        reg.set(key, "ObjectName", REG_SZ, str(service.get("object_name", "LocalSystem")))
    if service.get("group"):
        reg.set(key, "Group", REG_SZ, str(service["group"]))
    for sub, values in (service.get("keys") or {}).items():
        _apply_registry_spec(host, f"{key}\\{sub}", values or {})
    if service.get("state"):
        host.service_state[name.casefold()] = str(service["state"])


def _apply_registry_spec(host: Host, key: str, values: Mapping[str, Any] | None) -> None:
    """``{name: [type, data]}`` sets values (``null`` data deletes one); a ``null`` mapping deletes the key."""
    if values is None:
        host.registry.delete_key(key, recursive=True)
        return
    host.registry.create(key)
    for name, item in values.items():
        value_name = "" if name in ("(Default)", "@") else name
        if item is None:
            host.registry.delete_value(key, value_name)
            continue
        type_name, data = (item["type"], item.get("data")) if isinstance(item, Mapping) else item
        type_ = TYPE_BY_NAME[type_name]
        if type_ in (REG_BINARY, REG_NONE) and isinstance(data, str):
            data = bytes.fromhex(data)
        host.registry.set(key, value_name, type_, data)


def add_file(host: Host, path: str, spec: Mapping[str, Any]) -> FileEntry:
    """Place a profile or package file: a real PE when it has a version, padded text otherwise."""
    full = normalize_path(host.expand(path))
    size = spec.get("size")
    modified = _aware(spec.get("modified") or host.os.install_date)
    if spec.get("version"):
        built = pe.build_pe(ntpath.basename(full), str(spec["version"]), int(size) if size else None,
                            spec.get("strings"))
        digest, length = host.fs.link_blob(built)
    else:
        text = str(spec.get("text") or f"// {ntpath.basename(full)}\r\n").encode("latin-1")
        if size:
            text = (text + b" " * int(size))[: int(size)]
        digest, length = host.fs.store_blob(text), len(text)
    host.fs.mkdir(ntpath.dirname(full))
    return host.fs.place(full, f"blob:{digest}", length, modified, in_use=bool(spec.get("in_use", False)))
