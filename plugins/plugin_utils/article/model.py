# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data exchanged between the engine, the transports and the Ansible plugins.

The flow of one article audit:

1. ``engine.fact_request(spec, os_facts, variables)`` says which files, registry values and keys and
   which hotfix ids the article needs for this OS (``FactRequest``).
2. A transport (WinRM today, SMB + remote registry later) gathers exactly those into ``HostFacts``.
3. ``engine.evaluate(spec, host_facts, variables)`` returns a ``Verdict`` with its checks and plan.

Everything here is plain data: no I/O, no Ansible imports. ``to_dict()`` gives the JSON shape that task
results, the callback and the report use (documented in docs/report-format.md).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, cast

from ..errors import KbfixError
from .versions import parse_build_line

# alpha, mips and ppc: NT 4.0-era platforms whose articles still print their rows; hosts of those are judged
# like any other and reported as they are.
Architecture = Literal["x86", "x64", "ia64", "alpha", "mips", "ppc"]
ARCHITECTURES: tuple[str, ...] = ("x86", "x64", "ia64", "alpha", "mips", "ppc")
RegistryType = Literal["string", "expandstring", "multistring", "dword", "qword", "binary", "none"]
RegistryData = Union[str, int, list[str], bytes, None]
VerdictStatus = Literal["compliant", "noncompliant", "not_applicable", "reboot_pending", "unknown"]

REGISTRY_TYPES: tuple[str, ...] = ("string", "expandstring", "multistring", "dword", "qword", "binary", "none")
VERDICT_STATUSES: tuple[str, ...] = ("compliant", "noncompliant", "not_applicable", "reboot_pending", "unknown")


@dataclass(frozen=True)
class OsFacts:
    """What identifies the operating system. ``version`` is major.minor.build (``5.1.2600``)."""

    version: str
    service_pack: int
    architecture: Architecture
    product_type: int  # 1 workstation, 2 domain controller, 3 server (Win32_OperatingSystem.ProductType)
    caption: str = ""
    r2: bool = False  # Windows Server 2003 R2 (Win32_OperatingSystem.OtherTypeDescription == "R2")
    system_root: str = "C:\\WINDOWS"  # Win32_OperatingSystem.WindowsDirectory; C:\WINNT on NT 4.0 / 2000
    # When the running system started (timezone-aware; WinRM: Win32_OperatingSystem.LastBootUpTime, read with
    # the rest of this class). None when the transport could not tell. It is state, not identity: two reads
    # of one host compare equal across a restart, and ``to_dict`` leaves it out (the facts module reports it
    # as ``kbfix_last_boot``), so an OS fact cached before a restart never carries a stale boot time.
    last_boot: datetime.datetime | None = field(default=None, compare=False)
    # ``version`` as numbers, parsed once here: (5, 1, 2600). A version that is not major.minor[.build] is a
    # ValueError at construction.
    numbers: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", parse_build_line(self.version))

    @property
    def major(self) -> int:
        return self.numbers[0]

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor): (5, 1) is XP, (6, 0) Vista / 2008."""
        return (self.numbers[0], self.numbers[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "service_pack": self.service_pack, "architecture": self.architecture,
            "product_type": self.product_type, "caption": self.caption, "r2": self.r2,
            "system_root": self.system_root,
        }


OsFactsError = Callable[[str, str], KbfixError]  # (field, message) -> the error to raise
_OS_FIELDS: tuple[tuple[str, type], ...] = (("caption", str), ("r2", bool), ("system_root", str))


def os_facts_from_mapping(data: Any, where: str, error: OsFactsError) -> OsFacts:
    """``OsFacts`` from its ``to_dict()`` form (the ``kbfix_os`` fact, a snapshot's ``os``), plus an optional
    ``last_boot`` (ISO 8601 with a time zone). Other keys are ignored. Every problem is ``error(field, why)``
    with the field under ``where``; the version is parsed here, once."""
    if not isinstance(data, Mapping):
        raise error(where, f"must be a mapping like the kbfix_os fact, got {type(data).__name__}")

    def typed(key: str, kind: type, required: bool = True) -> Any:
        value = data.get(key)
        if value is None:
            if required:
                raise error(f"{where}.{key}", "is required")
            return None
        # bool is an int subclass: a YAML `true` must not pass as a service pack number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise error(f"{where}.{key}", f"must be {'an' if kind is int else 'a'} {kind.__name__}, got {value!r}")
        return value

    version = typed("version", str)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise error(f"{where}.version", f"{version!r} is not major.minor.build like 5.1.2600")
    architecture = typed("architecture", str)
    if architecture not in ARCHITECTURES:
        raise error(f"{where}.architecture", f"{architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    service_pack = typed("service_pack", int)
    if service_pack < 0:
        raise error(f"{where}.service_pack", f"must be 0 or more, got {service_pack}")
    product_type = typed("product_type", int)
    if product_type not in (1, 2, 3):
        raise error(f"{where}.product_type", f"must be 1, 2 or 3, got {product_type}")
    optional = {key: typed(key, kind, required=False) for key, kind in _OS_FIELDS}
    boot_value = data.get("last_boot")
    boot = boot_time(boot_value)
    if boot_value is not None and boot is None:
        raise error(f"{where}.last_boot", f"{boot_value!r} is not an ISO 8601 date and time with a time zone, "
                                          "as kbfix_last_boot is")
    return OsFacts(version=version, service_pack=service_pack, architecture=cast(Architecture, architecture),
                   product_type=product_type, last_boot=boot, **{k: v for k, v in optional.items() if v is not None})


def boot_time(value: Any) -> datetime.datetime | None:
    """A boot time (ISO 8601 text or a datetime, with a time zone) in UTC; None for anything else.

    kbfix_os leaves the boot time out; a value from before a restart is earlier than the real boot, which
    only makes the engine more careful (docs/engine.md, "reboot_pending, exactly")."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        return None
    return value.astimezone(datetime.UTC)


@dataclass(frozen=True)
class FileFacts:
    """One file as the host reports it. ``path`` is the expanded Windows path as requested."""

    path: str
    exists: bool
    version: str | None = None  # the FileVersion string, suffix included ("5.1.2600.1276 (xpsp2.030422-1633)")
    size: int | None = None
    modified: datetime.datetime | None = None  # timezone-aware, UTC

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "exists": self.exists, "version": self.version, "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
        }


@dataclass(frozen=True)
class RegistryValue:
    """A registry value's type and data. ``data``: str, int (dword/qword), list[str] (multistring),
    bytes (binary), None (type none)."""

    type: RegistryType
    data: RegistryData

    def to_dict(self) -> dict[str, Any]:
        data: Any = self.data
        if isinstance(data, bytes):
            data = data.hex()
        return {"type": self.type, "data": data}


def registry_key_id(key: str) -> str:
    """Canonical, case-folded form of a registry key path used as a dictionary key
    (``HKLM\\SYSTEM\\CurrentControlSet\\...``; hive abbreviations already applied by the caller)."""
    return key.strip("\\").casefold()


@dataclass(frozen=True)
class FactRequest:
    """What an article needs to know about one host, given its OS."""

    files: tuple[str, ...] = ()  # expanded Windows paths
    registry_values: tuple[tuple[str, str], ...] = ()  # (key "HKLM\\...", value name)
    registry_keys: tuple[str, ...] = ()  # keys whose existence matters (hotfix records, prerequisites)
    hotfix_ids: tuple[str, ...] = ()  # "KB828753", "Q253729"
    # (key, value name, type the spec expects) for requested values whose type is known: a transport can then
    # read each with one typed request. A value left out here is still read, with its type looked up first.
    registry_value_types: tuple[tuple[str, str, RegistryType], ...] = ()
    # Keys whose last-write time matters: they hold values a service reads only when it starts.
    registry_key_times: tuple[str, ...] = ()

    def merged(self, other: FactRequest) -> FactRequest:
        def union(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(dict.fromkeys(a + b))
        return FactRequest(
            files=union(self.files, other.files),
            registry_values=union(self.registry_values, other.registry_values),
            registry_keys=union(self.registry_keys, other.registry_keys),
            hotfix_ids=union(self.hotfix_ids, other.hotfix_ids),
            registry_value_types=union(self.registry_value_types, other.registry_value_types),
            registry_key_times=union(self.registry_key_times, other.registry_key_times),
        )


@dataclass
class HostFacts:
    """Everything the engine may look at for one host. A fact that was requested but could not be read
    is simply absent from its mapping; the engine then answers ``unknown`` and names what is missing."""

    os: OsFacts
    files: dict[str, FileFacts] = field(default_factory=dict)  # key: path.casefold()
    registry: dict[tuple[str, str], RegistryValue | None] = field(default_factory=dict)
    # key: (registry_key_id(key), name.casefold()); None = the value does not exist
    registry_keys: dict[str, bool] = field(default_factory=dict)  # key: registry_key_id(key)
    hotfixes: frozenset[str] = frozenset()  # upper-case ids found by any detection source
    hotfix_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> ("qfe", "registry", ...)
    reboot_pending: bool = False
    reboot_pending_sources: tuple[str, ...] = ()
    # The PendingFileRenameOperations entries as read ("\\??\\C:\\...", "!\\??\\C:\\..."): which files the next start
    # replaces. () when the value is absent or empty, None when it could not be read.
    pending_renames: tuple[str, ...] | None = None
    # Last-write time of the keys in ``FactRequest.registry_key_times`` (key: registry_key_id(key)), where the
    # transport can read it (the remote registry's BaseRegQueryInfoKey); absent where it cannot (StdRegProv).
    key_write_times: dict[str, datetime.datetime] = field(default_factory=dict)

    def file(self, path: str) -> FileFacts | None:
        return self.files.get(path.casefold())

    def value(self, key: str, name: str) -> RegistryValue | Literal["missing"] | None:
        """The value; None when the host says it does not exist; "missing" when it was never read."""
        return self.registry.get((registry_key_id(key), name.casefold()), "missing")


@dataclass(frozen=True)
class CheckResult:
    """One check of an article against one host."""

    id: str  # stable, e.g. "file:%SystemRoot%\\system32\\drivers\\mrxsmb.sys", "registry:HKLM\\...\\Name"
    kind: Literal["applicability", "service_pack", "prerequisite", "file", "registry", "hotfix", "reboot",
                  "installer"]
    passed: bool | None  # None: could not be decided (missing data) or informational only
    expected: str
    found: str
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "passed": self.passed, "expected": self.expected,
                "found": self.found, "message": self.message}


@dataclass(frozen=True)
class InstallDetails:
    """What an ``install_package`` step runs (docs/engine.md, "The plan")."""

    hotfix_id: str
    package: str  # the package file name
    installer: str  # update | hotfix | msu
    arguments: tuple[str, ...]
    success_codes: Mapping[int, str]  # exit code -> meaning
    restart: bool
    # XP / 2003: files update.exe moves to the QFE branch from $hf_mig$ ("GDR files above the QFE fix").
    qfe_migration: tuple[str, ...] = ()
    sha256: str | None = None  # the spec's pinned hash of the package file

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hotfix_id": self.hotfix_id, "package": self.package, "installer": self.installer,
            "arguments": list(self.arguments), "success_codes": dict(self.success_codes), "restart": self.restart,
        }
        if self.qfe_migration:
            data["qfe_migration"] = list(self.qfe_migration)
        if self.sha256:
            data["sha256"] = self.sha256
        return data


@dataclass(frozen=True)
class RegistryDetails:
    """What a ``set_registry`` (or ``delete_registry``) step writes, and what it found before."""

    key: str
    name: str
    type: RegistryType
    data: RegistryData
    before: RegistryValue | None
    before_read: bool = True  # False: the current value could not be read (the executor reads it first)
    mode: str = "replace"  # multistring: replace | merge
    case_insensitive: bool = False
    restart: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "type": self.type, "data": self.data,
                "before": self.before.to_dict() if self.before is not None else None,
                "before_read": self.before_read, "mode": self.mode, "case_insensitive": self.case_insensitive,
                "restart": self.restart}


@dataclass(frozen=True)
class ManualDetails:
    """A remedy no executor carries out: why, what a person does, and the files concerned."""

    reason: str
    remedy: str
    files: tuple[str, ...] = ()
    switch: str | None = None  # update.exe's branch switch (/B:SP2QFE) when reinstalling is the remedy
    restart: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "remedy": self.remedy, "files": list(self.files), "switch": self.switch,
                "restart": self.restart}


@dataclass(frozen=True)
class RebootDetails:
    """Why the plan ends with a restart."""

    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason}


StepDetails = Union[InstallDetails, RegistryDetails, ManualDetails, RebootDetails]
StepAction = Literal["install_package", "set_registry", "delete_registry", "reboot", "manual"]
D = TypeVar("D", InstallDetails, RegistryDetails, ManualDetails, RebootDetails)


@dataclass(frozen=True)
class PlanStep:
    """One change that would bring the host to compliance."""

    # "manual": a remedy no executor can carry out (it names the step in description and details).
    action: StepAction
    description: str  # for people: "set HKLM\\...\\ReconnectTimeout from 60 to 120 (dword)"
    details: StepDetails  # machine-readable; see docs/engine.md

    @property
    def restart(self) -> bool:
        """Whether carrying out this step needs a restart to take effect."""
        return not isinstance(self.details, RebootDetails) and self.details.restart

    def details_as(self, kind: type[D]) -> D:
        """The details as the kind this step's action carries (a step built otherwise is a programming error)."""
        if not isinstance(self.details, kind):
            raise TypeError(f"a {self.action} step carries {type(self.details).__name__}, not {kind.__name__}")
        return self.details

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "description": self.description, "details": self.details.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanStep:
        """A step from its ``to_dict`` form, as task results carry it (the report reads them back). Lenient:
        a missing or odd field takes a neutral value, since the report only shows what it can."""
        action = str(data.get("action") or "manual")
        raw = data.get("details")
        details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        return cls(action=cast(StepAction, action), description=str(data.get("description") or ""),
                   details=_details_from_dict(action, details))


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()


def _details_from_dict(action: str, data: Mapping[str, Any]) -> StepDetails:
    restart = bool(data.get("restart", False))
    if action == "install_package":
        codes = data.get("success_codes")
        return InstallDetails(
            hotfix_id=str(data.get("hotfix_id") or ""), package=str(data.get("package") or ""),
            installer=str(data.get("installer") or ""), arguments=_texts(data.get("arguments")),
            success_codes={int(k): str(v) for k, v in codes.items() if str(k).lstrip("-").isdigit()}
            if isinstance(codes, Mapping) else {},
            restart=restart, qfe_migration=_texts(data.get("qfe_migration")),
            sha256=str(data["sha256"]) if data.get("sha256") else None)
    if action in ("set_registry", "delete_registry"):
        before = data.get("before")
        return RegistryDetails(
            key=str(data.get("key") or ""), name=str(data.get("name") or ""),
            type=cast(RegistryType, data.get("type") if data.get("type") in REGISTRY_TYPES else "none"),
            data=data.get("data"),
            before=registry_value_from_dict(before) if isinstance(before, Mapping) else None,
            before_read=bool(data.get("before_read", True)), mode=str(data.get("mode") or "replace"),
            case_insensitive=bool(data.get("case_insensitive", False)), restart=restart)
    if action == "reboot":
        return RebootDetails(reason=str(data.get("reason") or ""))
    return ManualDetails(reason=str(data.get("reason") or ""), remedy=str(data.get("remedy") or ""),
                         files=_texts(data.get("files")),
                         switch=str(data["switch"]) if data.get("switch") is not None else None,
                         restart=restart)


def registry_value_from_dict(data: Mapping[str, Any]) -> RegistryValue:
    """A ``RegistryValue`` from its ``to_dict`` form (binary data as hex)."""
    value = data.get("data")
    reg_type = data.get("type")
    if reg_type == "binary" and isinstance(value, str):
        value = bytes.fromhex(value)
    return RegistryValue(cast(RegistryType, reg_type if reg_type in REGISTRY_TYPES else "none"), value)


@dataclass
class Verdict:
    """The engine's answer for one article on one host."""

    article: str  # "KB828753"
    title: str
    status: VerdictStatus
    reason: str  # one line for people: why this status
    checks: list[CheckResult] = field(default_factory=list)
    plan: list[PlanStep] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # facts that could not be read (status unknown)
    restart_required: bool = False  # applying the plan needs a restart

    def to_dict(self) -> dict[str, Any]:
        return {
            "article": self.article, "title": self.title, "status": self.status, "reason": self.reason,
            "checks": [c.to_dict() for c in self.checks], "plan": [p.to_dict() for p in self.plan],
            "missing": list(self.missing), "restart_required": self.restart_required,
        }
