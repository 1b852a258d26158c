"""WMI classes of a simulated host: instances for Enumerate/Get, and method calls (StdRegProv, reboot).

Windows behaviour mirrored here, because clients must cope with it:

* ``Win32_OperatingSystem.OSArchitecture`` does not exist before Vista (the property is absent, not null);
  ``OtherTypeDescription`` is "R2" on Windows Server 2003 R2; Windows Server 2008 R2's Caption ends in a space.
* ``Win32_QuickFixEngineering`` reads ``HKLM\\SOFTWARE\\Microsoft\\Updates\\<product>\\<SPn>\\<KB>`` and the NT
  ``Hotfix`` key on 5.x, and installed CBS packages on 6.x (an install that waits for its reboot is not listed).
  On 6.0 ``InstalledOn`` is the package's FILETIME in hex (``01ca9631e5f8a280``), the well-known Vista/2008
  quirk; on 6.1 it is ``m/d/yyyy``. Its key is HotFixID + ServicePackInEffect (blank on 6.x).
* ``CIM_DataFile`` without a filter is refused with ``invalid_parameter``: on a real host it walks every file
  of every disk and ends in an operation timeout or quota fault, which no client may rely on either.
  ``Name`` is the lowercased full path, ``Version`` the FileVersion string of the VERSIONINFO (build-tag suffix
  included, e.g. ``5.1.2600.1106 (xpsp1.020828-1920)``), null for files without one.
* ``StdRegProv`` lives in ``root/default`` on every version and also in ``root/cimv2`` from Vista on. Inputs
  arrive as text (the protocol half does not know the signatures) and are converted here. ReturnValue codes:
  0 ok, 1 value missing (Get), 2 key missing (also DeleteValue of a missing value: the raw Win32 error),
  5 access denied (also DeleteKey of a key that has subkeys), 6 invalid hDefKey, 2147749893 type mismatch.
  Set* on a missing key returns 2 (they do not create keys). ``hDefKey`` defaults to HKLM and, as in the MOF,
  SetDWORDValue's ``uValue`` to 3 and SetStringValue's ``sValue`` to "hello". Get/SetQWORDValue appeared with
  Vista: on 5.x they are ``invalid_method``. Empty arrays come back as null (``sNames`` of a key without
  subkeys), as Windows returns them.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .machine import Host, RegKey

HKEY_CLASSES_ROOT = 2147483648
HKEY_CURRENT_USER = 2147483649
HKEY_LOCAL_MACHINE = 2147483650
HKEY_USERS = 2147483651
HKEY_CURRENT_CONFIG = 2147483653
HIVES = {HKEY_CLASSES_ROOT: "HKCR", HKEY_CURRENT_USER: "HKCU", HKEY_LOCAL_MACHINE: "HKLM", HKEY_USERS: "HKU",
         HKEY_CURRENT_CONFIG: "HKCC"}

RV_OK, RV_VALUE_MISSING, RV_KEY_MISSING, RV_ACCESS_DENIED, RV_INVALID_HANDLE = 0, 1, 2, 5, 6
RV_TYPE_MISMATCH = 2147749893  # WBEM_E_TYPE_MISMATCH 0x80041005

# KEY_QUERY_VALUE 1, KEY_SET_VALUE 2, KEY_CREATE_SUB_KEY 4, KEY_ENUMERATE_SUB_KEYS 8, KEY_NOTIFY 16,
# KEY_CREATE 32, DELETE 65536, READ_CONTROL 131072, WRITE_DAC 262144, WRITE_OWNER 524288.
_WRITE_ACCESS = 2 | 4 | 32 | 65536 | 262144 | 524288


class WmiError(Exception):
    """A WMI failure; the protocol half maps ``kind`` to a WS-Man fault."""

    KINDS = ("not_found", "invalid_class", "invalid_method", "invalid_parameter", "access_denied")

    def __init__(self, kind: str, message: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown WmiError kind {kind!r}")
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")


@dataclass
class Instance:
    class_name: str
    properties: dict[str, object]  # str | int | bool | datetime (aware, UTC) | list | None
    cim_types: dict[str, str] = field(default_factory=dict)  # "string", "uint32", "datetime", "string[]" ...

    def get(self, name: str) -> object:
        """Case-insensitive property lookup (WMI property names are)."""
        for key, value in self.properties.items():
            if key.casefold() == name.casefold():
                return value
        raise KeyError(name)


def _instance(class_name: str, props: list[tuple[str, str, object]]) -> Instance:
    return Instance(class_name, {n: v for n, _, v in props}, {n: t for n, t, _ in props})


def _namespace(namespace: str) -> str:
    return namespace.replace("\\", "/").strip("/").casefold()


# --- classes ------------------------------------------------------------------------------------------


def _operating_system(host: Host) -> list[Instance]:
    o = host.os
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    props: list[tuple[str, str, object]] = [
        ("BootDevice", "string", "\\Device\\HarddiskVolume1"),
        ("BuildNumber", "string", o.build),
        ("BuildType", "string", "Multiprocessor Free"),
        ("Caption", "string", o.caption),
        ("CodeSet", "string", "1252"),
        ("CountryCode", "string", "1"),
        ("CreationClassName", "string", "Win32_OperatingSystem"),
        ("CSCreationClassName", "string", "Win32_ComputerSystem"),
        ("CSDVersion", "string", o.csd_version),
        ("CSName", "string", host.name.upper()),
        ("CurrentTimeZone", "sint16", 0),
        ("Debug", "boolean", False),
        ("Description", "string", ""),
        ("Distributed", "boolean", False),
        ("FreePhysicalMemory", "uint64", 1048576),
        ("InstallDate", "datetime", dt.datetime.fromisoformat(o.install_date)),
        ("LastBootUpTime", "datetime", host.boot_time),
        ("LocalDateTime", "datetime", now),
        ("Locale", "string", "0409"),
        ("Manufacturer", "string", "Microsoft Corporation"),
        ("Name", "string", _os_name(host)),
        ("NumberOfProcesses", "uint32", 38),
        ("NumberOfUsers", "uint32", 1),
        ("Organization", "string", o.organization),
        ("OSLanguage", "uint32", 1033),
        ("OSType", "uint16", 18),
        ("OtherTypeDescription", "string", o.other_type_description),
        ("Primary", "boolean", True),
        ("ProductType", "uint32", o.product_type),
        ("RegisteredUser", "string", o.registered_owner),
        ("SerialNumber", "string", o.serial_number),
        ("ServicePackMajorVersion", "uint16", o.sp_major),
        ("ServicePackMinorVersion", "uint16", o.sp_minor),
        ("Status", "string", "OK"),
        ("SystemDevice", "string", "\\Device\\HarddiskVolume1"),
        ("SystemDirectory", "string", host.system32),
        ("SystemDrive", "string", "C:"),
        ("TotalVisibleMemorySize", "uint64", 2097152),
        ("Version", "string", o.version),
        ("WindowsDirectory", "string", o.system_root),
    ]
    if o.major >= 5 and (o.major, o.minor) >= (5, 1):
        props.append(("SuiteMask", "uint32", o.suite_mask))
    if o.nt6:
        # OSArchitecture and OperatingSystemSKU were added to the class in Vista; older hosts lack them.
        props.append(("OSArchitecture", "string", "32-bit" if o.architecture == "x86" else "64-bit"))
        props.append(("OperatingSystemSKU", "uint32", 10 if o.product_type != 1 else 6))
    props.sort(key=lambda p: p[0].casefold())
    return [_instance("Win32_OperatingSystem", props)]


def _os_name(host: Host) -> str:
    return f"{host.os.caption}|{host.os.system_root}|\\Device\\Harddisk0\\Partition1"


def _computer_system(host: Host) -> list[Instance]:
    o = host.os
    in_domain = host.domain.upper() != "WORKGROUP"
    if o.product_type == 2:
        role = 5 if in_domain else 4
    elif o.product_type == 3:
        role = 3 if in_domain else 2
    else:
        role = 1 if in_domain else 0
    system_type = {"x86": "X86-based PC", "x64": "x64-based PC", "ia64": "Itanium (TM) -based System"}[o.architecture]
    props: list[tuple[str, str, object]] = [
        ("Caption", "string", host.name.upper()),
        ("CurrentTimeZone", "sint16", 0),
        ("Description", "string", "AT/AT COMPATIBLE"),
        ("Domain", "string", host.domain),
        ("DomainRole", "uint16", role),
        ("Manufacturer", "string", "Microsoft Corporation"),
        ("Model", "string", "Virtual Machine"),
        ("Name", "string", host.name.upper()),
        ("NumberOfProcessors", "uint32", 2),
        ("PrimaryOwnerName", "string", o.registered_owner),
        ("Status", "string", "OK"),
        ("SystemType", "string", system_type),
        ("TotalPhysicalMemory", "uint64", 2147483648),
        ("UserName", "string", f"{host.name.upper()}\\{host.user}"),
    ]
    if (o.major, o.minor) >= (5, 1):
        props += [("DNSHostName", "string", host.name), ("PartOfDomain", "boolean", in_domain),
                  ("Workgroup", "string", None if in_domain else host.domain)]
    props.sort(key=lambda p: p[0].casefold())
    return [_instance("Win32_ComputerSystem", props)]


_QFE_TYPES = {"Caption": "string", "CSName": "string", "Description": "string", "FixComments": "string",
              "HotFixID": "string", "InstallDate": "datetime", "InstalledBy": "string", "InstalledOn": "string",
              "Name": "string", "ServicePackInEffect": "string", "Status": "string"}


def _qfe(host: Host, hotfix_id: str, sp: str, description: str, installed_by: str, installed_on: str) -> Instance:
    number = re.sub(r"^(KB|Q)", "", hotfix_id, flags=re.IGNORECASE)
    props: dict[str, object] = {
        "Caption": f"http://support.microsoft.com/?kbid={number}" if number.isdigit() else "",
        "CSName": host.name.upper(), "Description": description, "FixComments": "", "HotFixID": hotfix_id,
        "InstallDate": None, "InstalledBy": installed_by, "InstalledOn": installed_on, "Name": None,
        "ServicePackInEffect": sp, "Status": None,
    }
    return Instance("Win32_QuickFixEngineering", props, dict(_QFE_TYPES))


def _quick_fix_engineering(host: Host) -> list[Instance]:
    from .machine import CBS_INSTALLED, CBS_KEY, NT_HOTFIX_KEY, UPDATES_KEY

    out: list[Instance] = []
    reg = host.registry
    if not host.os.nt6:
        nt = reg.open(NT_HOTFIX_KEY)
        for key in (nt.subkeys.values() if nt else []):
            sp = key.values.get("service pack")
            out.append(_qfe(host, key.name, f"SP{sp.data}" if sp and isinstance(sp.data, int) else "",
                            _text(key.values.get("fix description")), _text(key.values.get("installed by")),
                            _text(key.values.get("installed on"))))
        updates = reg.open(UPDATES_KEY)
        for product in (updates.subkeys.values() if updates else []):
            for sp_key in product.subkeys.values():
                for fix in sp_key.subkeys.values():
                    out.append(_qfe(host, fix.name, sp_key.name, _text(fix.values.get("description")),
                                    _text(fix.values.get("installedby")), _text(fix.values.get("installeddate"))))
        return out
    packages = reg.open(CBS_KEY + "\\Packages")
    seen: set[str] = set()
    for key in (packages.subkeys.values() if packages else []):
        match = re.match(r"Package_(?:\d+_)?for_(KB\d+)", key.name, re.IGNORECASE)
        state = key.values.get("currentstate")
        if not match or state is None or not isinstance(state.data, int) or state.data < CBS_INSTALLED:
            continue
        hotfix_id = match.group(1).upper()
        if hotfix_id in seen:
            continue
        seen.add(hotfix_id)
        out.append(_qfe(host, hotfix_id, "", _release_type(host, key.name), _install_user(host, key),
                        _installed_on(host, key)))
    return out


def _text(value: Any) -> str:
    return value.data if value is not None and isinstance(value.data, str) else ""


def _release_type(host: Host, package: str) -> str:
    mum = f"{host.system_root}\\servicing\\Packages\\{package}.mum"
    try:
        text = host.fs.read(mum).decode("utf-8", "replace")
    except Exception:
        return "Update"
    found = re.search(r'releaseType="([^"]+)"', text)
    return found.group(1) if found else "Update"


def _install_user(host: Host, key: Any) -> str:
    sid = _text(key.values.get("installuser"))
    if sid == "S-1-5-18":
        return "NT AUTHORITY\\SYSTEM"
    if sid == host.registry.user_sid:
        return f"{host.name.upper()}\\{host.user}"
    return sid


def _installed_on(host: Host, key: Any) -> str:
    high, low = key.values.get("installtimehigh"), key.values.get("installtimelow")
    if high is None or low is None:
        return ""
    filetime = (int(high.data) << 32) | int(low.data)
    if host.os.minor == 0:
        return f"{filetime:016x}"
    moment = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=filetime // 10)
    return f"{moment.month}/{moment.day}/{moment.year}"


_FILE_TYPES = {"sys": "System file", "exe": "Application", "dll": "Application Extension", "txt": "Text Document",
               "mui": "MUI File", "mof": "MOF File", "log": "Text Document", "xml": "XML Document",
               "msu": "Microsoft Update Standalone Package", "vbs": "VBScript Script File"}


def _data_file(host: Host, entry: Any) -> Instance:
    name = entry.path.casefold()
    directory, _, base = name.rpartition("\\")
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    info = host.fs.version_info(entry.path)
    props: list[tuple[str, str, object]] = [
        ("AccessMask", "uint32", 2032127),
        ("Archive", "boolean", True),
        ("Caption", "string", name),
        ("Compressed", "boolean", False),
        ("CreationClassName", "string", "CIM_LogicalFile"),
        ("CreationDate", "datetime", entry.created),
        ("CSCreationClassName", "string", "Win32_ComputerSystem"),
        ("CSName", "string", host.name.upper()),
        ("Description", "string", name),
        ("Drive", "string", name[:2]),
        ("EightDotThreeFileName", "string", name),
        ("Encrypted", "boolean", False),
        ("Extension", "string", extension),
        ("FileName", "string", stem),
        ("FileSize", "uint64", entry.size),
        ("FileType", "string", _FILE_TYPES.get(extension, f"{extension.upper()} File" if extension else "File")),
        ("FSCreationClassName", "string", "Win32_FileSystem"),
        ("FSName", "string", "NTFS"),
        ("Hidden", "boolean", False),
        ("InstallDate", "datetime", entry.created),
        ("LastAccessed", "datetime", entry.modified),
        ("LastModified", "datetime", entry.modified),
        ("Manufacturer", "string", info.strings.get("CompanyName") if info else None),
        ("Name", "string", name),
        ("Path", "string", directory[2:] + "\\"),
        ("Readable", "boolean", True),
        ("Status", "string", "OK"),
        ("System", "boolean", False),
        ("Version", "string", (info.file_version or info.fixed_version) if info else None),
        ("Writeable", "boolean", True),
    ]
    return _instance("CIM_DataFile", props)


def _data_files(host: Host) -> list[Instance]:
    return [_data_file(host, e) for e in sorted(host.fs.files.values(), key=lambda e: e.path.casefold())]


def _pid(name: str) -> int:
    return zlib.crc32(name.casefold().encode()) % 3000 + 400  # stable across processes, unlike hash()


_START_MODES = {0: "Boot", 1: "System", 2: "Auto", 3: "Manual", 4: "Disabled"}


def _services(host: Host) -> list[Instance]:
    out = []
    for service in sorted(host.services(), key=lambda s: str(s["name"]).casefold()):
        running = service["state"] == "Running"
        props: list[tuple[str, str, object]] = [
            ("AcceptPause", "boolean", False),
            ("AcceptStop", "boolean", running),
            ("Caption", "string", service["display_name"]),
            ("DisplayName", "string", service["display_name"]),
            ("ExitCode", "uint32", 0 if running else 1077),
            ("Name", "string", service["name"]),
            ("PathName", "string", host.expand(str(service["image_path"]))),
            ("ProcessId", "uint32", _pid(str(service["name"])) if running else 0),
            ("ServiceType", "string", "Own Process" if int(service["type"]) & 0x10 else "Share Process"),
            ("Started", "boolean", running),
            ("StartMode", "string", _START_MODES.get(int(service["start"]), "Unknown")),
            ("StartName", "string", _text(host.registry.get(
                f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{service['name']}", "ObjectName")) or "LocalSystem"),
            ("State", "string", service["state"]),
            ("Status", "string", "OK"),
            ("SystemName", "string", host.name.upper()),
        ]
        out.append(_instance("Win32_Service", props))
    return out


@dataclass(frozen=True)
class _ClassDef:
    name: str
    keys: tuple[str, ...]
    instances: Callable[[Host], list[Instance]]
    singleton: bool = False


_CIMV2: dict[str, _ClassDef] = {c.name.casefold(): c for c in (
    _ClassDef("Win32_OperatingSystem", ("Name",), _operating_system, singleton=True),
    _ClassDef("Win32_ComputerSystem", ("Name",), _computer_system, singleton=True),
    _ClassDef("Win32_QuickFixEngineering", ("HotFixID", "ServicePackInEffect"), _quick_fix_engineering),
    _ClassDef("CIM_DataFile", ("Name",), _data_files),
    _ClassDef("Win32_Service", ("Name",), _services),
)}


def _check_wmi(host: Host) -> None:
    if not host.features.get("wmi", True):
        # NT 4.0 has no WMI core unless it was installed separately.
        raise WmiError("invalid_class", "Invalid namespace: WMI is not installed on this host")


def _class(host: Host, namespace: str, class_name: str) -> _ClassDef | None:
    """The instance class, None for StdRegProv; WmiError for anything unknown in that namespace."""
    _check_wmi(host)
    ns = _namespace(namespace)
    if class_name.casefold() == "stdregprov" and (ns == "root/default" or (ns == "root/cimv2" and host.os.nt6)):
        return None
    if ns == "root/cimv2" and class_name.casefold() in _CIMV2:
        return _CIMV2[class_name.casefold()]
    if ns not in ("root/cimv2", "root/default"):
        raise WmiError("invalid_class", f"Invalid namespace {namespace!r}")
    raise WmiError("invalid_class", f"Invalid class {class_name!r} in {namespace}")


# --- Enumerate / Get ----------------------------------------------------------------------------------


def enumerate_instances(host: Host, namespace: str, class_name: str, filtered: bool = False) -> list[Instance]:
    cls = _class(host, namespace, class_name)
    if cls is None:
        return []  # StdRegProv is a static provider class without instances
    if cls.name == "CIM_DataFile" and not filtered:
        raise WmiError("invalid_parameter",
                       "CIM_DataFile cannot be enumerated without a filter (every file of every disk)")
    return cls.instances(host)


def get_instance(host: Host, namespace: str, class_name: str, selectors: dict[str, str]) -> Instance:
    cls = _class(host, namespace, class_name)
    if cls is None:
        raise WmiError("invalid_parameter", "StdRegProv has no instances; invoke its methods statically")
    return _find(host, cls, selectors)


def _find(host: Host, cls: _ClassDef, selectors: dict[str, str]) -> Instance:
    wanted = {k.casefold(): v for k, v in selectors.items()}
    keys = {k.casefold() for k in cls.keys}
    unknown = set(wanted) - keys
    if unknown:
        raise WmiError("invalid_parameter", f"{cls.name} has no key property {sorted(unknown)}")
    if cls.name == "CIM_DataFile":
        # Looked up directly, as the provider does for a key lookup, rather than listing every file.
        if "name" not in wanted:
            raise WmiError("invalid_parameter", "CIM_DataFile needs the Name selector")
        entry = host.fs.entry(wanted["name"]) if _is_abs(wanted["name"]) else None
        if entry is None:
            raise WmiError("not_found", f"No CIM_DataFile with Name {wanted['name']!r}")
        return _data_file(host, entry)
    instances = cls.instances(host)
    if not wanted:
        if cls.singleton and len(instances) == 1:
            return instances[0]
        raise WmiError("invalid_parameter", f"{cls.name} needs the selectors {', '.join(cls.keys)}")
    for instance in instances:
        if all(str(instance.get(k) or "").casefold() == str(v).casefold() for k, v in wanted.items()):
            missing = keys - set(wanted)
            if missing and not cls.singleton:
                raise WmiError("invalid_parameter", f"{cls.name} needs the selectors {', '.join(cls.keys)}")
            return instance
    raise WmiError("not_found", f"No {cls.name} instance matches {selectors}")


def _is_abs(path: str) -> bool:
    return len(path) >= 3 and path[1] == ":" and path[2] in "\\/"


# --- methods ------------------------------------------------------------------------------------------


def invoke(host: Host, namespace: str, class_name: str, method: str, selectors: dict[str, str],
           params: dict[str, object]) -> dict[str, object]:
    cls = _class(host, namespace, class_name)
    if cls is None:
        return _StdRegProv(host).call(method, params)
    if cls.name == "Win32_OperatingSystem":
        _find(host, cls, selectors)
        return _os_method(host, method, params)
    raise WmiError("invalid_method", f"{cls.name} has no method {method!r} in winsim")


def _os_method(host: Host, method: str, params: dict[str, object]) -> dict[str, object]:
    if method.casefold() == "reboot":
        host.reboot(0)
        return {"ReturnValue": 0}
    if method.casefold() == "shutdown":
        host.power_off(0)
        return {"ReturnValue": 0}
    if method.casefold() == "win32shutdown":
        flags = _int(params, "Flags", "sint32", default=None)
        if flags is None:
            raise WmiError("invalid_parameter", "Win32Shutdown needs Flags")
        # 0 log off, 1 shut down, 2 reboot, 8 power off; +4 forces. Reboot wins when both bits are set.
        if flags & 2:
            host.reboot(0)
        elif flags & (1 | 8):
            host.power_off(0)
        return {"ReturnValue": 0}
    raise WmiError("invalid_method", f"Win32_OperatingSystem has no method {method!r}")


def _param(params: dict[str, object], name: str) -> object:
    for key, value in params.items():
        if key.casefold() == name.casefold():
            return value
    return None


_LIMITS = {"uint8": (0, 2**8), "uint32": (0, 2**32), "uint64": (0, 2**64), "sint32": (-(2**31), 2**31)}


def _to_int(value: object, cim_type: str, name: str) -> int:
    if isinstance(value, bool):
        raise WmiError("invalid_parameter", f"{name}: not an integer")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise WmiError("invalid_parameter", f"{name}: {text!r} is not a decimal {cim_type}")
        number = int(text)
    low, high = _LIMITS[cim_type]
    if not low <= number < high:
        raise WmiError("invalid_parameter", f"{name}: {number} is out of range for {cim_type}")
    return number


def _int(params: dict[str, object], name: str, cim_type: str, default: int | None) -> int | None:
    value = _param(params, name)
    if value is None or value == "":
        return default
    return _to_int(value, cim_type, name)


def _str(params: dict[str, object], name: str, default: str | None = None) -> str | None:
    value = _param(params, name)
    if value is None:
        return default
    if isinstance(value, list):
        raise WmiError("invalid_parameter", f"{name}: one value expected")
    return str(value)


def _list(params: dict[str, object], name: str) -> list[object] | None:
    value = _param(params, name)
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


class _StdRegProv:
    """The registry provider, acting as the connected Administrator (ACLs apply)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.reg = host.registry

    def call(self, method: str, params: dict[str, object]) -> dict[str, object]:
        handler = {
            "enumkey": self.enum_key, "enumvalues": self.enum_values, "checkaccess": self.check_access,
            "createkey": self.create_key, "deletekey": self.delete_key, "deletevalue": self.delete_value,
        }.get(method.casefold())
        if handler is not None:
            return handler(params)
        getter = _GETTERS.get(method.casefold())
        if getter is not None:
            return self.get_value(method, getter, params)
        setter = _SETTERS.get(method.casefold())
        if setter is not None:
            return self.set_value(method, setter, params)
        raise WmiError("invalid_method", f"StdRegProv has no method {method!r}")

    def _path(self, params: dict[str, object]) -> tuple[str | None, int]:
        hive = _int(params, "hDefKey", "uint32", default=HKEY_LOCAL_MACHINE)
        assert hive is not None
        if hive not in HIVES:
            return None, RV_INVALID_HANDLE
        sub = _str(params, "sSubKeyName", "") or ""
        path = HIVES[hive] + ("\\" + sub if sub else "")
        try:
            self.reg.split(path)
        except (KeyError, ValueError):
            return None, RV_KEY_MISSING
        return path, RV_OK

    def _readable_key(self, params: dict[str, object]) -> tuple[RegKey | None, int]:
        """The key named by hDefKey/sSubKeyName for a read, or None and the ReturnValue Windows gives:
        a bad handle or path first, then access denied, then a missing key."""
        path, rv = self._path(params)
        if path is None:
            return None, rv
        if self.reg.access(path) == "none":
            return None, RV_ACCESS_DENIED
        key = self.reg.open(path)
        if key is None:
            return None, RV_KEY_MISSING
        return key, RV_OK

    def _qword_available(self, method: str) -> None:
        if "qword" in method.casefold() and not self.host.os.nt6:
            raise WmiError("invalid_method", f"StdRegProv.{method} does not exist before Windows Vista")

    def enum_key(self, params: dict[str, object]) -> dict[str, object]:
        key, rv = self._readable_key(params)
        if key is None:
            return {"ReturnValue": rv}
        names = [k.name for k in key.subkeys.values()]
        return {"sNames": names or None, "ReturnValue": RV_OK}

    def enum_values(self, params: dict[str, object]) -> dict[str, object]:
        key, rv = self._readable_key(params)
        if key is None:
            return {"ReturnValue": rv}
        values = list(key.values.values())
        return {"sNames": [v.name for v in values] or None, "Types": [v.type for v in values] or None,
                "ReturnValue": RV_OK}

    def check_access(self, params: dict[str, object]) -> dict[str, object]:
        path, rv = self._path(params)
        required = _int(params, "uRequired", "uint32", default=3)
        if path is None:
            return {"bGranted": False, "ReturnValue": rv}
        if self.reg.open(path) is None:
            return {"bGranted": False, "ReturnValue": RV_KEY_MISSING}
        access = self.reg.access(path)
        granted = access == "full" or (access == "read" and not (required or 0) & _WRITE_ACCESS)
        return {"bGranted": granted, "ReturnValue": RV_OK if granted else RV_ACCESS_DENIED}

    def create_key(self, params: dict[str, object]) -> dict[str, object]:
        path, rv = self._path(params)
        if path is None:
            return {"ReturnValue": rv}
        if self.reg.open(path) is not None:
            return {"ReturnValue": RV_OK}
        if self.reg.access(path) != "full":
            return {"ReturnValue": RV_ACCESS_DENIED}
        self.reg.create(path)
        return {"ReturnValue": RV_OK}

    def delete_key(self, params: dict[str, object]) -> dict[str, object]:
        path, rv = self._path(params)
        if path is None:
            return {"ReturnValue": rv}
        if self.reg.open(path) is None:
            return {"ReturnValue": RV_KEY_MISSING}
        if self.reg.access(path) != "full":
            return {"ReturnValue": RV_ACCESS_DENIED}
        return {"ReturnValue": self.reg.delete_key(path)}

    def delete_value(self, params: dict[str, object]) -> dict[str, object]:
        path, rv = self._path(params)
        if path is None:
            return {"ReturnValue": rv}
        name = _str(params, "sValueName", "") or ""
        if self.reg.open(path) is None:
            return {"ReturnValue": RV_KEY_MISSING}
        if self.reg.access(path) != "full":
            return {"ReturnValue": RV_ACCESS_DENIED}
        # RegDeleteValue's ERROR_FILE_NOT_FOUND passes through unchanged: 2, not the Get methods' 1.
        return {"ReturnValue": RV_OK if self.reg.delete_value(path, name) else RV_KEY_MISSING}

    def get_value(self, method: str, getter: tuple[int, str], params: dict[str, object]) -> dict[str, object]:
        from .machine import REG_MULTI_SZ

        self._qword_available(method)
        reg_type, out_name = getter
        key, rv = self._readable_key(params)
        if key is None:
            return {"ReturnValue": rv}
        value = key.values.get((_str(params, "sValueName", "") or "").casefold())
        if value is None:
            return {"ReturnValue": RV_VALUE_MISSING}
        if value.type != reg_type:
            return {"ReturnValue": RV_TYPE_MISMATCH}
        data: object = value.data
        if method.casefold() == "getexpandedstringvalue" and isinstance(data, str):
            data = self.host.expand(data)
        elif isinstance(data, bytes):
            data = list(data) or None
        elif reg_type == REG_MULTI_SZ and isinstance(data, list):
            data = list(data) or None
        return {out_name: data, "ReturnValue": RV_OK}

    def set_value(self, method: str, setter: tuple[int, str, Any], params: dict[str, object]) -> dict[str, object]:
        self._qword_available(method)
        reg_type, in_name, default = setter
        path, rv = self._path(params)
        if path is None:
            return {"ReturnValue": rv}
        data = self._input_data(reg_type, in_name, default, params)
        if self.reg.open(path) is None:
            return {"ReturnValue": RV_KEY_MISSING}
        if self.reg.access(path) != "full":
            return {"ReturnValue": RV_ACCESS_DENIED}
        self.reg.set(path, _str(params, "sValueName", "") or "", reg_type, data, create=False)
        return {"ReturnValue": RV_OK}

    def _input_data(self, reg_type: int, name: str, default: Any, params: dict[str, object]) -> Any:
        from .machine import REG_BINARY, REG_DWORD, REG_MULTI_SZ

        raw = _param(params, name)
        if raw is None:
            if default is None:
                raise WmiError("invalid_parameter", f"{name} is required")
            return default
        if reg_type == REG_MULTI_SZ:
            return ["" if item is None else str(item) for item in (_list(params, name) or [])]
        if reg_type == REG_BINARY:
            return bytes(_to_int(item, "uint8", name) for item in (_list(params, name) or []))
        if reg_type == REG_DWORD:
            return _to_int(raw, "uint32", name)
        if isinstance(raw, list):
            raise WmiError("invalid_parameter", f"{name}: one value expected")
        if reg_type in (1, 2):
            return str(raw)
        return _to_int(raw, "uint64", name)


# method -> (registry type, output parameter)
_GETTERS: dict[str, tuple[int, str]] = {
    "getstringvalue": (1, "sValue"), "getexpandedstringvalue": (2, "sValue"), "getmultistringvalue": (7, "sValue"),
    "getdwordvalue": (4, "uValue"), "getqwordvalue": (11, "uValue"), "getbinaryvalue": (3, "uValue"),
}
# method -> (registry type, input parameter, MOF default or None when required)
_SETTERS: dict[str, tuple[int, str, Any]] = {
    "setstringvalue": (1, "sValue", "hello"), "setexpandedstringvalue": (2, "sValue", "%path%"),
    "setmultistringvalue": (7, "sValue", None), "setdwordvalue": (4, "uValue", 3),
    "setqwordvalue": (11, "uValue", None), "setbinaryvalue": (3, "uValue", None),
}

# Output parameter CIM types, for the protocol half's reply serialisation.
OUTPUT_TYPES: dict[str, dict[str, str]] = {
    "enumkey": {"sNames": "string[]", "ReturnValue": "uint32"},
    "enumvalues": {"sNames": "string[]", "Types": "sint32[]", "ReturnValue": "uint32"},
    "getstringvalue": {"sValue": "string", "ReturnValue": "uint32"},
    "getexpandedstringvalue": {"sValue": "string", "ReturnValue": "uint32"},
    "getmultistringvalue": {"sValue": "string[]", "ReturnValue": "uint32"},
    "getdwordvalue": {"uValue": "uint32", "ReturnValue": "uint32"},
    "getqwordvalue": {"uValue": "uint64", "ReturnValue": "uint32"},
    "getbinaryvalue": {"uValue": "uint8[]", "ReturnValue": "uint32"},
    "checkaccess": {"bGranted": "boolean", "ReturnValue": "uint32"},
}


def output_types(method: str) -> dict[str, str]:
    """CIM types of a method's OUT parameters (ReturnValue uint32 for the rest)."""
    return dict(OUTPUT_TYPES.get(method.casefold(), {"ReturnValue": "uint32"}))
