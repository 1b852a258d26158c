# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Article specs: load, validate, resolve role variables.

A spec (``roles/kbNNNNNN/files/kbNNNNNN.yml``, format in docs/spec-format.md) is data: which Windows
versions an article applies to, the files and versions its fix installs, its registry settings, packages
and prerequisites. Loading validates all of it, so that a typo fails when the spec is read, naming the file
and the field (``kb977381.yml: files[3].version: '6.0.6001' is not a four-part version``), and never halfway
through a fleet run.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import yaml

from ..errors import ArgumentError, SpecError
from .model import Architecture, RegistryData, RegistryType
from .versions import Branch, WinVersion, parse_build_line

SCHEMA_VERSION = 1

VariableType = Literal["str", "int", "bool", "list"]
VariableValue = str | int | bool | list[str] | None
Installer = Literal["update", "hotfix", "msu"]
ExitMeaning = Literal["success", "restart_required", "already_installed", "not_applicable"]
FileCheck = Literal["version", "size_date", "info"]
Platform = Literal["x86", "x64", "ia64", "none"]
MultiStringMode = Literal["replace", "merge"]

ARCHITECTURES: tuple[str, ...] = ("x86", "x64", "ia64")
PRODUCT_TYPES: tuple[int, ...] = (1, 2, 3)
VARIABLE_TYPES: tuple[str, ...] = ("str", "int", "bool", "list")
INSTALLERS: tuple[str, ...] = ("update", "hotfix", "msu")
EXIT_MEANINGS: tuple[str, ...] = ("success", "restart_required", "already_installed", "not_applicable")
FILE_CHECKS: tuple[str, ...] = ("version", "size_date", "info")
PLATFORMS: tuple[str, ...] = ("x86", "x64", "ia64", "none")
ROW_BRANCHES: tuple[str, ...] = ("gdr", "ldr", "baseline")
SETTING_TYPES: tuple[str, ...] = ("string", "expandstring", "multistring", "dword", "qword")
MULTISTRING_MODES: tuple[str, ...] = ("replace", "merge")

# Every key the loader accepts, per section. docs/spec-format.md documents each one; a unit test compares.
FIELDS: dict[str, tuple[str, ...]] = {
    "top": ("schema", "article", "variables", "applicability", "hotfix", "packages", "files", "registry",
            "prerequisites"),
    "article": ("id", "title", "url", "summary"),
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
}

_ARTICLE_ID = re.compile(r"^KB\d{5,7}$")
_HOTFIX_ID = re.compile(r"^(KB|Q)\d{5,7}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SYSTEM_ROOT = "%systemroot%\\"
_DWORD_MAX = 0xFFFFFFFF
_QWORD_MAX = 0xFFFFFFFFFFFFFFFF

T = TypeVar("T")


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

    def matches_version(self, os_version: str) -> bool:
        want = parse_build_line(self.version)
        try:
            have = parse_build_line(os_version)
        except ValueError:
            return False
        return have[: len(want)] == want


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
    os: tuple[str, ...] | None
    registry_key: str | None
    file: str | None


@dataclass(frozen=True)
class ArticleSpec:
    """A validated article spec."""

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


# ------------------------------------------------------------------------------------------------- reading


class _Reader:
    """Typed access to one mapping of the spec, with the field path for error messages."""

    def __init__(self, data: Any, source: str, where: str, section: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(source, where, f"must be a mapping, got {type(data).__name__}")
        self.data: Mapping[Any, Any] = data
        self.source = source
        self.where = where
        unknown = sorted(str(k) for k in data if k not in FIELDS[section])
        if unknown:
            raise SpecError(source, self._at(unknown[0]),
                            f"unknown key (allowed: {', '.join(FIELDS[section])})")

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(self.source, self._at(key), message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def _typed(self, key: str, kind: type[T], label: str, required: bool) -> T | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        # bool is an int subclass: never let `true` pass as a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {label}, got {value!r}")
        return value

    def text(self, key: str, required: bool = True) -> str | None:
        value = self._typed(key, str, "a string", required)
        if value is not None and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def req_text(self, key: str) -> str:
        return cast(str, self.text(key))

    def integer(self, key: str, required: bool = True, minimum: int | None = None) -> int | None:
        value = self._typed(key, int, "an integer", required)
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, "true or false", False)
        return default if value is None else value

    def items(self, key: str, required: bool = True) -> list[Any] | None:
        value = self._typed(key, list, "a list", required)
        if value is not None and required and not value:
            raise self.error(key, "must not be empty")
        return value

    def choice(self, key: str, allowed: Iterable[str], required: bool = True, default: str | None = None) -> str:
        allowed = tuple(allowed)
        value = self.text(key, required=required and default is None)
        if value is None:
            return cast(str, default)
        if value not in allowed:
            raise self.error(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def choices(self, key: str, allowed: Iterable[Any], required: bool = True) -> tuple[Any, ...] | None:
        allowed = tuple(allowed)
        values = self.items(key, required)
        if values is None:
            return None
        for index, value in enumerate(values):
            if value not in allowed or isinstance(value, bool):
                raise SpecError(self.source, f"{self._at(key)}[{index}]",
                                f"{value!r} is not one of {', '.join(str(a) for a in allowed)}")
        if len(set(values)) != len(values):
            raise self.error(key, "lists a value twice")
        return tuple(values)

    def numbers(self, key: str, required: bool = False) -> tuple[int, ...] | None:
        values = self.items(key, required)
        if values is None:
            return None
        for index, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpecError(self.source, f"{self._at(key)}[{index}]", f"must be an integer >= 0, got {value!r}")
        if len(set(values)) != len(values):
            raise self.error(key, "lists a value twice")
        return tuple(values)

    def version(self, key: str, required: bool = True) -> WinVersion | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"{value!r} is not a four-part version (quote it)")
        try:
            parsed = WinVersion.parse(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if parsed.tag:
            raise self.error(key, f"{value!r}: give the four numbers only, without a build tag")
        return parsed

    def hklm_key(self, key: str, required: bool = True) -> str | None:
        value = self.text(key, required)
        if value is None:
            return None
        # The WMI registry provider takes the hive as a number, so only HKLM paths are meaningful here;
        # a trailing backslash would make two spellings of one key.
        if not value.startswith("HKLM\\") or value.endswith("\\") or "\\\\" in value:
            raise self.error(key, f"{value!r} must be a key path like 'HKLM\\SOFTWARE\\...' (no trailing '\\')")
        return value


def _reader_list(parent: _Reader, key: str, section: str, required: bool = True) -> list[_Reader]:
    values = parent.items(key, required) or []
    where = parent._at(key)
    return [_Reader(value, parent.source, f"{where}[{index}]", section) for index, value in enumerate(values)]


# ---------------------------------------------------------------------------------------------- sections


def _article(top: _Reader) -> _Reader:
    article = _Reader(top.raw("article"), top.source, "article", "article")
    article_id = article.req_text("id")
    if not _ARTICLE_ID.match(article_id):
        raise article.error("id", f"{article_id!r} is not a KB article id like 'KB828753'")
    url = article.req_text("url")
    if not url.startswith(("https://", "http://")):
        raise article.error("url", f"{url!r} is not an http(s) URL")
    article.req_text("title")
    article.req_text("summary")
    return article


def _variables(top: _Reader) -> tuple[Variable, ...]:
    raw = top.raw("variables")
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise top.error("variables", "must be a mapping of variable name to definition")
    result = []
    for name, body in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise top.error("variables", f"{name!r} is not a variable name (lower case, digits, _)")
        result.append(_variable(_Reader(body, top.source, f"variables.{name}", "variables"), name))
    return tuple(result)


def _variable(reader: _Reader, name: str) -> Variable:
    var_type = cast(VariableType, reader.choice("type", VARIABLE_TYPES))
    required = reader.flag("required", False)
    minimum = reader.integer("min", required=False)
    maximum = reader.integer("max", required=False)
    if (minimum is not None or maximum is not None) and var_type not in ("int", "list"):
        raise reader.error("min" if minimum is not None else "max", "only int and list variables take a range")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise reader.error("min", f"min {minimum} is greater than max {maximum}")
    variable = Variable(name=name, type=var_type, description=reader.req_text("description"), required=required,
                        min=minimum, max=maximum)
    if reader.has("default"):
        if required:
            raise reader.error("default", "a required variable has no default")
        try:
            default = coerce_variable(variable, reader.raw("default"))
        except ArgumentError as exc:
            raise reader.error("default", exc.message) from None
        variable = Variable(name=name, type=var_type, description=variable.description, default=default,
                            min=minimum, max=maximum)
    return variable


def _applicability(top: _Reader) -> tuple[OsEntry, ...]:
    entries = []
    for reader in _reader_list(top, "applicability", "applicability"):
        entry_id = reader.req_text("id")
        if not _NAME.match(entry_id):
            raise reader.error("id", f"{entry_id!r} is not an id (lower case, digits, _)")
        version = reader.req_text("version")
        try:
            parse_build_line(version)
        except ValueError as exc:
            raise reader.error("version", str(exc)) from None
        service_packs = reader.numbers("service_packs")
        fixed_in = reader.integer("fixed_in_service_pack", required=False, minimum=1)
        if service_packs is not None and fixed_in is not None and max(service_packs) >= fixed_in:
            raise reader.error("service_packs", f"lists a service pack at or above fixed_in_service_pack {fixed_in}")
        captions = reader.items("caption_contains", required=False) or []
        if not all(isinstance(c, str) and c.strip() for c in captions):
            raise reader.error("caption_contains", "must be a list of non-empty strings")
        r2 = reader.raw("r2")
        if r2 is not None and not isinstance(r2, bool):
            raise reader.error("r2", f"must be true or false, got {r2!r}")
        entries.append(OsEntry(
            id=entry_id, name=reader.req_text("name"), version=version,
            product_types=cast(tuple[int, ...], reader.choices("product_types", PRODUCT_TYPES)),
            architectures=cast(tuple[Architecture, ...], reader.choices("architectures", ARCHITECTURES)),
            service_packs=service_packs, fixed_in_service_pack=fixed_in, r2=r2, caption_contains=tuple(captions),
        ))
    _unique(top, "applicability", [e.id for e in entries], "id")
    return tuple(entries)


def _unique(reader: _Reader, key: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise SpecError(reader.source, f"{reader._at(key)}[{index}].{what}", f"{value!r} is used twice")
        seen.add(value)


class _Context:
    """What later sections check their references against."""

    def __init__(self, source: str, entries: tuple[OsEntry, ...], variables: tuple[Variable, ...]) -> None:
        self.source = source
        self.entries = {e.id: e for e in entries}
        self.variables = {v.name: v for v in variables}
        self.used_variables: set[str] = set()

    def entry(self, reader: _Reader, key: str) -> OsEntry:
        entry_id = reader.req_text(key)
        if entry_id not in self.entries:
            raise reader.error(key, f"{entry_id!r} is not an applicability id ({', '.join(self.entries)})")
        return self.entries[entry_id]

    def entry_ids(self, reader: _Reader, key: str) -> tuple[str, ...] | None:
        values = reader.items(key, required=False)
        if values is None:
            return None
        for index, value in enumerate(values):
            if value not in self.entries:
                raise SpecError(self.source, f"{reader._at(key)}[{index}]",
                                f"{value!r} is not an applicability id ({', '.join(self.entries)})")
        return tuple(values)

    def architectures(self, reader: _Reader, entry: OsEntry) -> tuple[Architecture, ...]:
        archs = cast(tuple[Architecture, ...], reader.choices("architectures", ARCHITECTURES))
        stray = [a for a in archs if a not in entry.architectures]
        if stray:
            raise reader.error("architectures", f"{stray[0]} is not an architecture of {entry.id}")
        return archs

    def service_packs(self, reader: _Reader, entry: OsEntry) -> tuple[int, ...] | None:
        packs = reader.numbers("service_packs")
        if packs is not None and entry.service_packs is not None:
            stray = [sp for sp in packs if sp not in entry.service_packs]
            if stray:
                raise reader.error("service_packs", f"SP{stray[0]} is not a service pack of {entry.id}")
        return packs

    def variable(self, reader: _Reader, key: str, types: tuple[str, ...]) -> Variable:
        name = reader.req_text(key)
        if name not in self.variables:
            raise reader.error(key, f"{name!r} is not a declared variable")
        variable = self.variables[name]
        if variable.type not in types:
            raise reader.error(key, f"variable {name!r} is {variable.type}, this needs {' or '.join(types)}")
        self.used_variables.add(name)
        return variable


def _hotfix(top: _Reader, ctx: _Context) -> tuple[tuple[str, ...], tuple[HotfixRecord, ...]]:
    hotfix = _Reader(top.raw("hotfix"), top.source, "hotfix", "hotfix")
    ids = hotfix.items("ids") or []
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not _HOTFIX_ID.match(value):
            raise SpecError(top.source, f"hotfix.ids[{index}]",
                            f"{value!r} is not a hotfix id like KB828753 or Q253729")
    records = tuple(
        HotfixRecord(os=ctx.entry(r, "os").id, key=cast(str, r.hklm_key("key")))
        for r in _reader_list(hotfix, "records", "hotfix.records", required=False)
    )
    return tuple(ids), records


def _packages(top: _Reader, ctx: _Context) -> tuple[Package, ...]:
    packages = []
    for reader in _reader_list(top, "packages", "packages"):
        entry = ctx.entry(reader, "os")
        raw_codes = reader.raw("exit_codes")
        if not isinstance(raw_codes, Mapping) or not raw_codes:
            raise reader.error("exit_codes", "must map exit codes to meanings")
        codes: dict[int, ExitMeaning] = {}
        for code, meaning in raw_codes.items():
            # Exit codes arrive as signed 32-bit (wusa's -2145124329) or as unsigned HRESULT-style values.
            if not isinstance(code, int) or isinstance(code, bool) or not -(2**31) <= code <= _DWORD_MAX:
                raise reader.error("exit_codes", f"{code!r} is not a 32-bit exit code")
            if meaning not in EXIT_MEANINGS:
                raise SpecError(top.source, f"{reader._at('exit_codes')}.{code}",
                                f"{meaning!r} is not one of {', '.join(EXIT_MEANINGS)}")
            codes[code] = cast(ExitMeaning, meaning)
        if codes.get(0) != "success":
            raise reader.error("exit_codes", "must declare 0: success")
        arguments = reader.items("arguments", required=False) or []
        if not all(isinstance(a, str) and a for a in arguments):
            raise reader.error("arguments", "must be a list of non-empty strings")
        restart = reader.raw("restart")
        if not isinstance(restart, bool):
            raise reader.error("restart", "is required: true or false")
        packages.append(Package(
            os=entry.id, architectures=ctx.architectures(reader, entry), service_packs=ctx.service_packs(reader, entry),
            file=reader.req_text("file"), installer=cast(Installer, reader.choice("installer", INSTALLERS)),
            arguments=tuple(arguments), exit_codes=codes, restart=restart, sha256=_sha256(reader),
        ))
    return tuple(packages)


def _sha256(reader: _Reader) -> str | None:
    value = reader.raw("sha256")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise reader.error("sha256", f"must be a SHA-256 digest (64 hexadecimal digits), got {value!r}")
    return value.lower()


def _check_package_coverage(top: _Reader, spec_packages: tuple[Package, ...], entries: tuple[OsEntry, ...]) -> None:
    # Every OS / architecture / service pack the article applies to needs exactly one installer, or a
    # noncompliant verdict would come with a plan nobody can carry out.
    for entry in entries:
        for arch in entry.architectures:
            for sp in entry.service_packs or (None,):
                found = [p for p in spec_packages if p.os == entry.id and arch in p.architectures
                         and (p.service_packs is None or (sp is not None and sp in p.service_packs))]
                where = f"{entry.id} {arch}" + (f" SP{sp}" if sp is not None else "")
                if len(found) != 1:
                    raise top.error("packages", f"{where} has {len(found)} packages, needs exactly one")


def _files(top: _Reader, ctx: _Context) -> tuple[FileRow, ...]:
    rows = [_file_row(reader, ctx) for reader in _reader_list(top, "files", "files")]
    _check_file_rows(top, rows)
    return tuple(rows)


def _file_row(reader: _Reader, ctx: _Context) -> FileRow:
    entry = ctx.entry(reader, "os")
    check = cast(FileCheck, reader.choice("check", FILE_CHECKS))
    directory = reader.text("dir", required=check != "info")
    if directory is not None and not (directory.casefold() + "\\").startswith(_SYSTEM_ROOT):
        raise reader.error("dir", f"{directory!r} must start with %SystemRoot%")
    if directory is not None and directory.endswith("\\"):
        raise reader.error("dir", f"{directory!r} must not end with a backslash")
    # The path rules of every path argument (transport.escape.host_path), kept here too because a spec is
    # data from a file: the row must name the file it seems to name, and the path must survive WQL and cmd.
    if directory is not None and (any(seg in (".", "..", "") for seg in directory.split("\\")[1:])
                                  or any(c in directory for c in '"<>|*?:')):
        raise reader.error("dir", f"{directory!r}: '.', '..', empty segments and the characters \" < > | * ? : "
                                  "are not allowed in a path")
    installed_as = reader.text("installed_as", required=False)
    if installed_as is not None and directory is None:
        raise reader.error("installed_as", "needs dir")
    for key, file_name in (("name", reader.raw("name")), ("installed_as", installed_as)):
        if isinstance(file_name, str) and ("\\" in file_name or "/" in file_name or file_name in (".", "..")
                                           or any(c in file_name for c in '"<>|*?:')):
            raise reader.error(key, f"{file_name!r} must be a file name, not a path")
    version = reader.version("version", required=check == "version")
    branch = cast(Branch | None, reader.choice("branch", ROW_BRANCHES) if check == "version" else None)
    floor = reader.version("branch_floor", required=check == "version") if check == "version" else None
    if check != "version":
        for key in ("branch", "branch_floor"):
            if reader.has(key):
                raise reader.error(key, f"only version rows have {key}")
    size = reader.integer("size", required=check == "size_date", minimum=0)
    date = _date(reader, required=check == "size_date")
    time_raw = reader.raw("time")
    time_text = time_raw if isinstance(time_raw, str) else None
    if time_raw is not None and (time_text is None or not _TIME.match(time_text)):
        raise reader.error("time", f"{time_raw!r} is not HH:MM (quote it: YAML reads 12:16 as a number)")
    if version is not None and floor is not None and branch is not None:
        _check_branch_range(reader, version, floor, branch)
    return FileRow(
        table=reader.req_text("table"), name=reader.req_text("name"), dir=directory, installed_as=installed_as,
        os=entry.id,
        architectures=ctx.architectures(reader, entry), service_packs=ctx.service_packs(reader, entry),
        check=check, version=version, branch=branch, branch_floor=floor, size=size, date=date,
        time=datetime.time.fromisoformat(time_text) if time_text else None,
        platform=cast(Platform, reader.choice("platform", PLATFORMS)), wow=reader.flag("wow", False),
        note=reader.text("note", required=False) or "",
        inferred_from=_inferred_from(reader, check),
    )


def _inferred_from(reader: _Reader, check: str) -> str | None:
    component = reader.text("inferred_from", required=False)
    if component is None:
        return None
    if check != "version":
        raise reader.error("inferred_from", "only version rows are inferred from a component manifest")
    if not reader.has("note"):
        raise reader.error("note", "an inferred row needs a note saying why the component owns the file")
    return component.casefold()


def _date(reader: _Reader, required: bool) -> datetime.date | None:
    value = reader.raw("date")
    if value is None:
        if required:
            raise reader.error("date", "is required")
        return None
    if isinstance(value, datetime.datetime):
        raise reader.error("date", "must be a date (YYYY-MM-DD) without a time; put the time in 'time'")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise reader.error("date", f"{value!r} is not a date YYYY-MM-DD")


def _check_branch_range(reader: _Reader, version: WinVersion, floor: WinVersion, branch: str) -> None:
    if floor.build_line != version.build_line:
        raise reader.error("branch_floor", f"{floor} is not on the build line of {version}")
    if floor > version:
        raise reader.error("branch_floor", f"{floor} is above the fixed version {version}")
    # On NT 6.x the revision names the branch, so a row that says LDR but gives a GDR number is a typo.
    if version.major == 6:
        for key, value in (("version", version), ("branch_floor", floor)):
            if value.branch() != branch:
                raise reader.error(key, f"{value} is on the {value.branch()} branch, the row says {branch}")


def _check_inferred_rows(top: _Reader, rows: list[FileRow]) -> None:
    """An inferred row must rest on the article's evidence: a manifest row of the same OS entry and
    architecture whose name is ``<arch>_<component>_<key token>_<the row's version>_...``."""
    for index, row in enumerate(rows):
        if row.inferred_from is None:
            continue
        marker = f"_{row.inferred_from}_31bf3856ad364e35_{row.version}_"
        for arch in row.architectures:
            if not any(marker in other.name.casefold() and other.os == row.os and arch in other.architectures
                       and other.inferred_from is None for other in rows):
                raise SpecError(top.source, f"files[{index}].inferred_from",
                                f"no {arch} manifest of {row.inferred_from} at {row.version} among the article's rows")


def _check_file_rows(top: _Reader, rows: list[FileRow]) -> None:
    _check_inferred_rows(top, rows)
    kinds: dict[tuple[str, str], str] = {}
    seen: set[tuple[str, str, str, int | None, str | None]] = set()
    for index, row in enumerate(rows):
        if row.path is None:
            continue
        path_id = (row.os, row.path.casefold())
        if kinds.setdefault(path_id, row.check) != row.check:
            raise SpecError(top.source, f"files[{index}].check",
                            f"{row.path} is a {kinds[path_id]} row elsewhere; one path, one kind of check")
        for arch in row.architectures:
            for sp in row.service_packs or (None,):
                key = (row.os, row.path.casefold(), arch, sp, row.branch)
                if key in seen:
                    where = f"{row.os} {arch}" + (f" SP{sp}" if sp is not None else "")
                    raise SpecError(top.source, f"files[{index}]", f"a second row for {row.path} on {where}"
                                    + (f" ({row.branch})" if row.branch else ""))
                seen.add(key)


def _registry(top: _Reader, ctx: _Context) -> tuple[RegistrySetting, ...]:
    settings = [_setting(reader, ctx) for reader in _reader_list(top, "registry", "registry", required=False)]
    _unique(top, "registry", [s.path.casefold() for s in settings], "name")
    return tuple(settings)


_VARIABLE_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("str",), "expandstring": ("str",), "multistring": ("list",), "dword": ("int",), "qword": ("int",),
}


def _setting(reader: _Reader, ctx: _Context) -> RegistrySetting:
    reg_type = cast(RegistryType, reader.choice("type", SETTING_TYPES))
    if reader.has("value") == reader.has("value_from"):
        raise reader.error("value", "give exactly one of value and value_from")
    value_range = _range(reader, reg_type)
    value: RegistryData = None
    value_from = None
    if reader.has("value"):
        value = _registry_data(reader, "value", reg_type, value_range)
    else:
        variable = ctx.variable(reader, "value_from", _VARIABLE_FOR_TYPE[reg_type])
        value_from = variable.name
        if value_range is not None and (variable.min is None or variable.max is None
                                        or variable.min < value_range[0] or variable.max > value_range[1]):
            raise reader.error("value_from", f"variable {value_from!r} must declare min and max within "
                                             f"{value_range[0]}..{value_range[1]}")
    mode = cast(MultiStringMode, reader.choice("mode", MULTISTRING_MODES, required=False, default="replace"))
    if mode == "merge" and reg_type != "multistring":
        raise reader.error("mode", "merge applies to multistring values only")
    case_insensitive = reader.flag("case_insensitive", False)
    if case_insensitive and reg_type not in ("string", "expandstring", "multistring"):
        raise reader.error("case_insensitive", "applies to string values only")
    return RegistrySetting(
        key=cast(str, reader.hklm_key("key")), name=reader.req_text("name"), type=reg_type, value=value,
        value_from=value_from,
        default=_registry_data(reader, "default", reg_type, value_range) if reader.has("default") else None,
        range=value_range, mode=mode, case_insensitive=case_insensitive, os=ctx.entry_ids(reader, "os"),
        when=_when(reader, ctx), restart=reader.flag("restart", False),
        description=reader.req_text("description"),
    )


def _range(reader: _Reader, reg_type: str) -> tuple[int, int] | None:
    raw = reader.raw("range")
    if raw is None:
        return None
    if reg_type not in ("dword", "qword"):
        raise reader.error("range", "applies to dword and qword values only")
    limit = _DWORD_MAX if reg_type == "dword" else _QWORD_MAX
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= limit for n in raw)
            or raw[0] > raw[1]):
        raise reader.error("range", f"must be [min, max] within 0..{limit}, got {raw!r}")
    return (raw[0], raw[1])


def _registry_data(reader: _Reader, key: str, reg_type: str, value_range: tuple[int, int] | None) -> RegistryData:
    value = reader.raw(key)
    if reg_type in ("dword", "qword"):
        limit = _DWORD_MAX if reg_type == "dword" else _QWORD_MAX
        low, high = value_range or (0, limit)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise reader.error(key, f"must be an integer {low}..{high} for a {reg_type}, got {value!r}")
        return value
    if reg_type == "multistring":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise reader.error(key, f"must be a list of strings for a multistring, got {value!r}")
        return list(value)
    if not isinstance(value, str):
        raise reader.error(key, f"must be a string for a {reg_type}, got {value!r}")
    return value


def _when(reader: _Reader, ctx: _Context) -> When | None:
    if reader.raw("when") is None:
        return None
    when = _Reader(reader.raw("when"), reader.source, reader._at("when"), "registry.when")
    product_types = cast(tuple[int, ...] | None, when.choices("product_types", PRODUCT_TYPES, required=False))
    variable = ctx.variable(when, "variable", ("bool",)).name if when.has("variable") else None
    if product_types is None and variable is None:
        raise reader.error("when", "needs product_types or variable")
    return When(product_types=product_types, variable=variable)


def _prerequisites(top: _Reader, ctx: _Context) -> tuple[Prerequisite, ...]:
    result = []
    for reader in _reader_list(top, "prerequisites", "prerequisites", required=False):
        if reader.has("registry_key") == reader.has("file"):
            raise reader.error("registry_key", "give exactly one of registry_key and file")
        file = reader.text("file", required=False)
        if file is not None and not file.casefold().startswith(_SYSTEM_ROOT):
            raise reader.error("file", f"{file!r} must start with %SystemRoot%\\")
        prereq_id = reader.req_text("id")
        if not _NAME.match(prereq_id):
            raise reader.error("id", f"{prereq_id!r} is not an id (lower case, digits, _)")
        result.append(Prerequisite(id=prereq_id, description=reader.req_text("description"),
                                   os=ctx.entry_ids(reader, "os"), registry_key=reader.hklm_key("registry_key", False),
                                   file=file))
    _unique(top, "prerequisites", [p.id for p in result], "id")
    return tuple(result)


# ---------------------------------------------------------------------------------------------------- API


# Every worker process loads the specs again (one per host and task): libyaml's safe loader parses them
# about four times faster than the pure-Python one (docs/performance.md).
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Validated specs by (file name, SHA-256 of the content). ArticleSpec is frozen, so sharing one is safe.
# Ansible forks a worker per host and task; specs loaded in the controller's main process before the fork
# (``preload``, from the action plugin's import) are found here by every worker, which then only hashes the
# file. An edited file has another digest and is parsed and validated again.
_LOADED: dict[tuple[str, str], ArticleSpec] = {}


def load_spec(path: str | Path) -> ArticleSpec:
    """Read and validate a spec file. Errors name the file's base name and the field."""
    path = Path(path)
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(source, "", f"cannot read: {exc.strerror or exc}") from None
    key = (source, hashlib.sha256(raw).hexdigest())
    known = _LOADED.get(key)
    if known is not None:
        return known
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(source, "", f"cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader, C-accelerated when available
    except yaml.YAMLError as exc:
        # Only where and what, never the parser's snippet of the text: the file may not be a spec at all.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SpecError(source, "", f"not valid YAML{where}: {problem}") from None
    spec = _LOADED[key] = load_spec_data(data, source)
    return spec


def preload(paths: Iterable[str | Path]) -> None:
    """Load these specs now (the controller's main process, before workers fork); a bad one is skipped here
    and reports its error where a task loads it."""
    for path in paths:
        try:
            load_spec(path)
        except SpecError:
            continue


def load_spec_data(data: Any, source: str) -> ArticleSpec:
    """Validate already-parsed spec data (``source`` names it in errors)."""
    top = _Reader(data, source, "", "top")
    schema = top.raw("schema")
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise top.error("schema", f"{schema!r} is not a supported schema (this version reads schema {SCHEMA_VERSION})")
    article = _article(top)
    variables = _variables(top)
    entries = _applicability(top)
    ctx = _Context(source, entries, variables)
    hotfix_ids, records = _hotfix(top, ctx)
    packages = _packages(top, ctx)
    _check_package_coverage(top, packages, entries)
    spec = ArticleSpec(
        schema=SCHEMA_VERSION, id=article.req_text("id"), title=article.req_text("title"),
        url=article.req_text("url"), summary=article.req_text("summary").strip(), variables=variables,
        applicability=entries, hotfix_ids=hotfix_ids, hotfix_records=records, packages=packages,
        files=_files(top, ctx), registry=_registry(top, ctx), prerequisites=_prerequisites(top, ctx), source=source,
    )
    unused = [v.name for v in variables if v.name not in ctx.used_variables]
    if unused:
        raise top.error(f"variables.{unused[0]}", "is declared but no setting uses it")
    return spec


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _coerce_int(variable: Variable, value: Any) -> int:
    # Inventory and extra-vars often deliver numbers as strings ("120"); accept those, never floats or bools.
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentError(variable.name, f"must be an integer, got {value!r}")
    if _outside(variable, value):
        raise ArgumentError(variable.name, f"must be in {_bounds(variable)}, got {value}")
    return value


def _coerce_bool(variable: Variable, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ArgumentError(variable.name, f"must be true or false, got {value!r}")


def _coerce_str(variable: Variable, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentError(variable.name, f"must be a string, got {value!r}")
    if "\x00" in value:
        raise ArgumentError(variable.name, "must not contain NUL characters")
    return value


def _coerce_list(variable: Variable, value: Any) -> list[str]:
    # A bare string here is almost always a forgotten list ("fs01" instead of [fs01]); say so rather than
    # guessing a separator.
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ArgumentError(variable.name, f"must be a list of strings, got {value!r}")
    entries = []
    for index, item in enumerate(value):
        # REG_MULTI_SZ cannot hold an empty entry: it would end the list early.
        if not isinstance(item, str) or not item or "\x00" in item:
            raise ArgumentError(f"{variable.name}[{index}]", f"must be a non-empty string, got {item!r}")
        entries.append(item)
    if _outside(variable, len(entries)):
        raise ArgumentError(variable.name, f"must have {_bounds(variable)} entries, got {len(entries)}")
    return entries


def _outside(variable: Variable, number: int) -> bool:
    return (variable.min is not None and number < variable.min) or (variable.max is not None and number > variable.max)


def _bounds(variable: Variable) -> str:
    low = "" if variable.min is None else str(variable.min)
    high = "" if variable.max is None else str(variable.max)
    return f"{low}..{high}"


_COERCE: dict[str, Callable[[Variable, Any], VariableValue]] = {
    "int": _coerce_int, "bool": _coerce_bool, "str": _coerce_str, "list": _coerce_list,
}


def coerce_variable(variable: Variable, value: Any) -> VariableValue:
    """Check and convert one provided value; ``ArgumentError`` names the variable."""
    return _COERCE[variable.type](variable, value)


def resolve_variables(spec: ArticleSpec, provided: Mapping[str, Any], *,
                      require: bool = True) -> dict[str, VariableValue]:
    """The value of every declared variable: provided (checked and converted), else its default, else None.

    A provided ``None`` counts as not given. Unknown names, and missing required variables when ``require``
    is true, raise ``ArgumentError`` naming the variable. ``require=False`` checks what was given and leaves
    a missing required variable None: a variable is only required on hosts where its article applies.
    Resolving an already resolved mapping gives the same mapping.
    """
    declared = {v.name: v for v in spec.variables}
    for name in provided:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ArgumentError(str(name), f"is not a variable of {spec.id} (declared: {known})")
    resolved: dict[str, VariableValue] = {}
    for name, variable in declared.items():
        value = provided.get(name)
        if value is None:
            if variable.required and require:
                raise ArgumentError(name, f"is required: {variable.description.strip()}")
            resolved[name] = variable.default
        else:
            resolved[name] = coerce_variable(variable, value)
    return resolved
