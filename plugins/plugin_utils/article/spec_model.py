# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a validated article spec is: its data classes and the names and values the format allows.

The loader (``spec.load_spec``) builds these from a spec file; the engine reads them. Format in
docs/spec-format.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .model import ARCHITECTURES, Architecture, RegistryData, RegistryType
from .versions import Branch, WinVersion, parse_build_line

SCHEMA_VERSION = 1

VariableType = Literal["str", "int", "bool", "list"]
VariableValue = str | int | bool | list[str] | None
Installer = Literal["update", "hotfix", "msu"]
ExitMeaning = Literal["success", "restart_required", "already_installed", "not_applicable"]
FileCheck = Literal["version", "size_date", "version_size_date", "info"]
Platform = Literal["x86", "x64", "ia64", "alpha", "mips", "ppc", "none"]
MultiStringMode = Literal["replace", "merge"]

PRODUCT_TYPES: tuple[int, ...] = (1, 2, 3)
VARIABLE_TYPES: tuple[str, ...] = ("str", "int", "bool", "list")
INSTALLERS: tuple[str, ...] = ("update", "hotfix", "msu")
EXIT_MEANINGS: tuple[str, ...] = ("success", "restart_required", "already_installed", "not_applicable")
FILE_CHECKS: tuple[str, ...] = ("version", "size_date", "version_size_date", "info")
# The checks that compare the host file's version with the row's (and so need branch_floor).
VERSION_CHECKS: tuple[str, ...] = ("version", "version_size_date")
# The checks that compare size and date.
SIZE_DATE_CHECKS: tuple[str, ...] = ("size_date", "version_size_date")
PLATFORMS: tuple[str, ...] = (*ARCHITECTURES, "none")
ROW_BRANCHES: tuple[str, ...] = ("gdr", "ldr", "baseline")
SETTING_TYPES: tuple[str, ...] = ("string", "expandstring", "multistring", "dword", "qword")
MULTISTRING_MODES: tuple[str, ...] = ("replace", "merge")

# Every key the loader accepts, per section. docs/spec-format.md documents each one; a unit test compares.
FIELDS: dict[str, tuple[str, ...]] = {
    "top": ("schema", "article", "variables", "applicability", "hotfix", "packages", "files", "registry",
            "prerequisites", "review"),
    "article": ("id", "title", "url", "summary", "supersedes", "superseded_by"),
    "variables": ("type", "description", "required", "default", "min", "max"),
    "applicability": ("id", "name", "version", "product_types", "architectures", "service_packs",
                      "fixed_in_service_pack", "r2", "caption_contains"),
    "hotfix": ("ids", "records"),
    "hotfix.records": ("os", "key"),
    "packages": ("os", "architectures", "service_packs", "file", "installer", "arguments", "exit_codes",
                 "restart", "sha256"),
    "files": ("table", "name", "dir", "installed_as", "os", "architectures", "service_packs", "check", "version",
              "branch", "branch_floor", "size", "date", "time", "platform", "wow", "note", "inferred_from"),
    "registry": ("key", "name", "type", "value", "value_from", "default", "range", "mode", "case_insensitive",
                 "os", "when", "restart", "description"),
    "registry.when": ("product_types", "variable"),
    "prerequisites": ("id", "description", "os", "registry_key", "file"),
    "review": ("field", "reason"),
}

# A value the importer could not take from the article carries this prefix until someone fills it in
# (docs/spec-format.md, "review"): such a package file is never installed.
REVIEW_PREFIX = "REVIEW-"


# ---------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Variable:
    """A role variable the spec reads (``value_from`` of a registry setting, ``when.variable``)."""

    name: str
    type: VariableType
    description: str
    required: bool = False
    default: VariableValue = None
    min: int | None = None  # int: smallest value; list: fewest entries
    max: int | None = None


@dataclass(frozen=True)
class OsEntry:
    """One operating system the article applies to."""

    id: str
    name: str
    version: str  # "5.1.2600" or "6.0": compared with OsFacts.version at dot boundaries
    product_types: tuple[int, ...]
    architectures: tuple[Architecture, ...]
    service_packs: tuple[int, ...] | None  # None: every service pack below fixed_in_service_pack
    fixed_in_service_pack: int | None
    r2: bool | None  # Windows Server 2003 R2; None: either
    caption_contains: tuple[str, ...]  # case-insensitive; any one must occur in OsFacts.caption

    def matches_version(self, os_numbers: tuple[int, ...]) -> bool:
        """Whether an OS version (``OsFacts.numbers``) is this entry's, compared at dot boundaries."""
        want = parse_build_line(self.version)
        return os_numbers[: len(want)] == want


@dataclass(frozen=True)
class HotfixRecord:
    """Where the installer records the hotfix on this OS (a registry key that exists once installed)."""

    os: str
    key: str


@dataclass(frozen=True)
class Package:
    """The installer for one OS / architecture (/ service packs)."""

    os: str
    architectures: tuple[Architecture, ...]
    service_packs: tuple[int, ...] | None
    file: str
    installer: Installer
    arguments: tuple[str, ...]
    exit_codes: Mapping[int, ExitMeaning]
    restart: bool
    sha256: str | None = None  # pinned hash of the file Microsoft published; a different file is refused

    @property
    def needs_review(self) -> bool:
        """The file name is the importer's placeholder, not a real package (never installed)."""
        return self.file.startswith(REVIEW_PREFIX)


@dataclass(frozen=True)
class FileRow:
    """One row of the article's file table, placed on the host."""

    table: str  # which table of the article the row comes from (seed fidelity is checked per table)
    name: str  # the file name as the article prints it
    dir: str | None  # "%SystemRoot%\\system32\\drivers"; None only for info rows the host cannot be asked about
    installed_as: str | None  # the name on disk when it differs (WOW copies: Ww03a3409.dll -> W03a3409.dll)
    os: str
    architectures: tuple[Architecture, ...]
    service_packs: tuple[int, ...] | None
    check: FileCheck
    version: WinVersion | None
    branch: Branch | None
    branch_floor: WinVersion | None
    size: int | None
    date: datetime.date | None
    time: datetime.time | None
    platform: Platform
    wow: bool
    note: str
    # (I) rows: the component whose manifest (a row of the article) names this file's fixed version. The
    # article does not list the file; docs/spec-format.md says when such a row may be added.
    inferred_from: str | None = None

    @property
    def path(self) -> str | None:
        """``%SystemRoot%\\...`` path of the file on the host, or None."""
        if self.dir is None:
            return None
        return f"{self.dir}\\{self.installed_as or self.name}"

    @property
    def modified(self) -> datetime.datetime | None:
        """The article's date and time (UTC, as KB file tables give them)."""
        if self.date is None:
            return None
        return datetime.datetime.combine(self.date, self.time or datetime.time(0, 0), datetime.UTC)


@dataclass(frozen=True)
class When:
    """Extra conditions for a registry setting."""

    product_types: tuple[int, ...] | None = None
    variable: str | None = None  # a bool variable that must be true


@dataclass(frozen=True)
class RegistrySetting:
    """A registry value the article wants."""

    key: str
    name: str
    type: RegistryType
    value: RegistryData  # literal value, or None when value_from names a variable
    value_from: str | None
    default: RegistryData  # what Windows uses while the value is absent (None: no such behaviour)
    range: tuple[int, int] | None
    mode: MultiStringMode
    case_insensitive: bool
    os: tuple[str, ...] | None
    when: When | None
    restart: bool
    description: str

    @property
    def path(self) -> str:
        return f"{self.key}\\{self.name}"


@dataclass(frozen=True)
class Prerequisite:
    """Something that must be present for the article to apply (read in the same fact request)."""

    id: str
    description: str
    os: tuple[str, ...] | None = None  # None: wherever the article applies
    # Exactly one of the two is set (the loader refuses both or neither): what shows the prerequisite.
    registry_key: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """A value the importer could not take from the article: ``field`` is its dotted path in the spec."""

    field: str
    reason: str

    def text(self) -> str:
        return f"review {self.field}: {self.reason}"


@dataclass(frozen=True)
class ArticleSpec:
    """A validated article spec, as ``spec.load_spec`` returns it and the engine reads it. Frozen, so one loaded
    spec is shared by every host a worker runs (``spec._LOADED``)."""

    schema: int
    id: str
    title: str
    url: str
    summary: str
    variables: tuple[Variable, ...]
    applicability: tuple[OsEntry, ...]
    hotfix_ids: tuple[str, ...]
    hotfix_records: tuple[HotfixRecord, ...]
    packages: tuple[Package, ...]
    files: tuple[FileRow, ...]
    registry: tuple[RegistrySetting, ...]
    prerequisites: tuple[Prerequisite, ...]
    source: str
    # Informational: the articles this one replaces and the ones that replace it (KB/Q ids).
    supersedes: tuple[str, ...] = ()
    superseded_by: tuple[str, ...] = ()
    # What a person must still check before trusting the spec (the importer's ``review`` list).
    review: tuple[ReviewItem, ...] = ()
    # What loaded but looks wrong (a row printed twice): kb_article reports these with its result.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def os_entry(self, entry_id: str) -> OsEntry:
        for entry in self.applicability:
            if entry.id == entry_id:
                return entry
        raise KeyError(entry_id)

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)
