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
from dataclasses import dataclass, field
from typing import Any, Literal, Union

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "service_pack": self.service_pack, "architecture": self.architecture,
            "product_type": self.product_type, "caption": self.caption, "r2": self.r2,
            "system_root": self.system_root,
        }


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

    def merged(self, other: FactRequest) -> FactRequest:
        def union(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(dict.fromkeys(a + b))
        return FactRequest(
            files=union(self.files, other.files),
            registry_values=union(self.registry_values, other.registry_values),
            registry_keys=union(self.registry_keys, other.registry_keys),
            hotfix_ids=union(self.hotfix_ids, other.hotfix_ids),
            registry_value_types=union(self.registry_value_types, other.registry_value_types),
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
class PlanStep:
    """One change that would bring the host to compliance."""

    # "manual": a remedy no executor can carry out (it names the step in description and details).
    action: Literal["install_package", "set_registry", "delete_registry", "reboot", "manual"]
    description: str  # for people: "set HKLM\\...\\ReconnectTimeout from 60 to 120 (dword)"
    details: dict[str, Any] = field(default_factory=dict)  # machine-readable; see docs/engine.md

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "description": self.description, "details": dict(self.details)}


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
