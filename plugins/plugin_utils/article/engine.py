# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The article engine: which facts an article needs, and what they say.

``fact_request`` turns a spec and a host's OS facts into the list of files, registry values and keys to
read; ``evaluate`` turns the facts read into a ``Verdict`` with its checks and the plan that would make the
host compliant. Both are pure: no I/O, same input, same output. The rules, and why scanners judge this way,
are in docs/engine.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import ntpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from ..errors import SpecError
from .model import (
    ARCHITECTURES,
    REGISTRY_TYPES,
    Architecture,
    CheckResult,
    FactRequest,
    FileFacts,
    HostFacts,
    OsFacts,
    PlanStep,
    RegistryData,
    RegistryType,
    RegistryValue,
    Verdict,
    VerdictStatus,
    registry_key_id,
)
from .spec import (
    ArticleSpec,
    FileRow,
    OsEntry,
    Package,
    Prerequisite,
    RegistrySetting,
    VariableValue,
    resolve_variables,
)
from .spec_model import VERSION_CHECKS
from .versions import WinVersion

_SYSTEM_ROOT = "%systemroot%"


# ------------------------------------------------------------------------------------------ applicability


@dataclass(frozen=True)
class _Scope:
    """Whether (and as which applicability entry) the article applies to an OS."""

    entry: OsEntry | None
    check: CheckResult

    @property
    def applies(self) -> bool:
        return self.entry is not None


def _out_of_scope(kind: Literal["applicability", "service_pack"], expected: str, found: str, message: str) -> _Scope:
    check = CheckResult(id=kind, kind=kind, passed=False, expected=expected, found=found, message=message)
    return _Scope(None, check)


def _os_text(os: OsFacts) -> str:
    name = os.caption or "Windows"
    return f"{name} {os.version} SP{os.service_pack} {os.architecture} (product type {os.product_type})"


def _scope(spec: ArticleSpec, os: OsFacts) -> _Scope:
    covered = "; ".join(f"{e.name} {e.version}" for e in spec.applicability)
    by_version = [e for e in spec.applicability if e.matches_version(os.version)]
    if not by_version:
        return _out_of_scope("applicability", covered, _os_text(os), f"{spec.id} does not cover Windows {os.version}")
    by_product = [e for e in by_version if os.product_type in e.product_types]
    if not by_product:
        kinds = sorted({t for e in by_version for t in e.product_types})
        return _out_of_scope("applicability", f"product type {kinds}", f"product type {os.product_type}",
                             f"{spec.id} covers {by_version[0].name} only as product type {kinds}")
    by_edition = [e for e in by_product if _edition_matches(e, os)]
    if not by_edition:
        entry = by_product[0]
        wanted = "R2" if entry.r2 else (" or ".join(entry.caption_contains) or "not R2")
        return _out_of_scope("applicability", f"{entry.name} ({wanted})", _os_text(os),
                             f"{spec.id} covers {entry.name} only; the host is another edition"
                             + ("" if os.caption else " (the OS caption was not reported)"))
    entry = by_edition[0]
    if os.architecture not in entry.architectures:
        return _out_of_scope("applicability", "/".join(entry.architectures), os.architecture,
                             f"{spec.id} has no fix for {entry.name} {os.architecture}")
    fixed_in = entry.fixed_in_service_pack
    if fixed_in is not None and os.service_pack >= fixed_in:
        return _out_of_scope("service_pack", f"below SP{fixed_in}", f"SP{os.service_pack}",
                             f"fixed by service pack: {entry.name} SP{fixed_in} contains the fix")
    if entry.service_packs is not None and os.service_pack not in entry.service_packs:
        packs = ", ".join(f"SP{sp}" for sp in entry.service_packs)
        return _out_of_scope("service_pack", packs, f"SP{os.service_pack}",
                             f"{spec.id} has no fix for {entry.name} SP{os.service_pack} (it covers {packs})")
    check = CheckResult(id="applicability", kind="applicability", passed=True, expected=entry.name,
                        found=_os_text(os), message=f"{spec.id} applies to {entry.name}")
    return _Scope(entry, check)


def _edition_matches(entry: OsEntry, os: OsFacts) -> bool:
    if entry.r2 is not None and entry.r2 != os.r2:
        return False
    if entry.caption_contains:
        caption = os.caption.casefold()
        return any(text.casefold() in caption for text in entry.caption_contains)
    return True


def matching_entry(spec: ArticleSpec, os_facts: OsFacts) -> OsEntry | None:
    """The applicability entry the host is judged as, or None when the article does not apply."""
    return _scope(spec, os_facts).entry


def package_for(spec: ArticleSpec, os_facts: OsFacts) -> Package | None:
    """The installer for this host, or None when the article does not apply."""
    entry = matching_entry(spec, os_facts)
    return None if entry is None else _package(spec, entry, os_facts)


def applicability(spec: ArticleSpec, os_facts: OsFacts) -> tuple[bool, str]:
    """Whether the article applies to this OS, and why (or why not)."""
    scope = _scope(spec, os_facts)
    return scope.applies, scope.check.message


# ------------------------------------------------------------------------------------ what to look at


def expand_path(path: str, os: OsFacts) -> str:
    """``%SystemRoot%\\...`` -> the host's Windows directory (``C:\\WINNT`` on NT 4.0 / 2000)."""
    if path.casefold().startswith(_SYSTEM_ROOT):
        return os.system_root.rstrip("\\") + path[len(_SYSTEM_ROOT):]
    return path


def _rows_for(spec: ArticleSpec, entry: OsEntry, os: OsFacts, any_service_pack: bool = False) -> list[FileRow]:
    return [r for r in spec.files
            if r.os == entry.id and os.architecture in r.architectures
            and (any_service_pack or r.service_packs is None or os.service_pack in r.service_packs)]


def _package(spec: ArticleSpec, entry: OsEntry, os: OsFacts) -> Package | None:
    # The loader guarantees exactly one per applicable OS / architecture / service pack of an OS entry that
    # has packages; an entry without any is an article that names none.
    return next((p for p in spec.packages
                 if p.os == entry.id and os.architecture in p.architectures
                 and (p.service_packs is None or os.service_pack in p.service_packs)), None)


def _desired(setting: RegistrySetting, variables: Mapping[str, VariableValue]) -> RegistryData:
    if setting.value_from is None:
        return setting.value
    return cast(RegistryData, variables.get(setting.value_from))


def _active_settings(spec: ArticleSpec, entry: OsEntry, os: OsFacts,
                     variables: Mapping[str, VariableValue]) -> list[RegistrySetting]:
    active = []
    for setting in spec.registry:
        if setting.os is not None and entry.id not in setting.os:
            continue
        when = setting.when
        if when is not None and when.product_types is not None and os.product_type not in when.product_types:
            continue
        if when is not None and when.variable is not None and not variables.get(when.variable):
            continue
        # An optional variable left out means "leave this value alone" (KB828753's ReconnectTimeout).
        if _desired(setting, variables) is None:
            continue
        active.append(setting)
    return active


def _record_keys(spec: ArticleSpec, entry: OsEntry) -> list[str]:
    return [r.key for r in spec.hotfix_records if r.os == entry.id]


def _prerequisites_for(spec: ArticleSpec, entry: OsEntry) -> list[Prerequisite]:
    return [p for p in spec.prerequisites if p.os is None or entry.id in p.os]


def fact_request(spec: ArticleSpec, os_facts: OsFacts, variables: Mapping[str, Any]) -> FactRequest:
    """Everything ``evaluate`` will look at for this host; empty when the article does not apply."""
    scope = _scope(spec, os_facts)
    if scope.entry is None:
        return FactRequest()
    resolved = resolve_variables(spec, variables)
    entry = scope.entry
    prereqs = _prerequisites_for(spec, entry)
    files = [expand_path(r.path, os_facts) for r in _rows_for(spec, entry, os_facts) if r.path is not None]
    files += [expand_path(p.file, os_facts) for p in prereqs if p.file is not None]
    keys = _record_keys(spec, entry) + [p.registry_key for p in prereqs if p.registry_key is not None]
    settings = _active_settings(spec, entry, os_facts, resolved)
    return FactRequest(
        files=tuple(dict.fromkeys(files)),
        registry_values=tuple((s.key, s.name) for s in settings),
        registry_keys=tuple(dict.fromkeys(keys)),
        hotfix_ids=spec.hotfix_ids,
        # The spec's type lets the collector read each value with one typed Get; a value of another type is
        # still read with its real type, so the registry check can say "wrong type".
        registry_value_types=tuple((s.key, s.name, s.type) for s in settings),
    )


# --------------------------------------------------------------------------------------------- judging


@dataclass
class _Outcome:
    """A check plus what the verdict needs to know about it."""

    result: CheckResult
    decisive: bool = True
    missing: tuple[str, ...] = ()
    step: PlanStep | None = None  # a registry change this check asks for
    # XP / 2003: a GDR file numbered at or above the QFE fix (docs/engine.md, "GDR files above the QFE fix").
    gdr_above_fix: bool = False

    @property
    def failed(self) -> bool:
        return self.decisive and self.result.passed is False

    @property
    def undecided(self) -> bool:
        return self.decisive and self.result.passed is None


# Fact ids name what could not be read (Verdict.missing) and what a snapshot cannot read (``unreadable``).
def _file_fact_id(path: str) -> str:
    return f"file:{path}"


def _value_fact_id(key: str, name: str) -> str:
    return f"registry:{key}\\{name}"


def _key_fact_id(key: str) -> str:
    return f"registry_key:{key}"


def _judge_files(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> list[_Outcome]:
    rows = _rows_for(spec, entry, host.os)
    all_rows = _rows_for(spec, entry, host.os, any_service_pack=True)
    groups: dict[str, list[FileRow]] = {}
    for row in rows:
        if row.path is not None:
            groups.setdefault(row.path.casefold(), []).append(row)
    outcomes = []
    for group in groups.values():
        path = cast(str, group[0].path)
        same_path = [r for r in all_rows if r.path is not None and r.path.casefold() == path.casefold()]
        facts = host.file(expand_path(path, host.os))
        check = group[0].check
        if check in VERSION_CHECKS:
            outcomes.append(_judge_version(path, group, same_path, facts, host.os))
        elif check == "size_date":
            outcomes.append(_judge_size_date(path, _size_date_rows(group, facts), facts, host.os))
        else:
            outcomes.append(_report_info(path, group[0], facts))
    return outcomes


def _file_missing(path: str, os: OsFacts, what: str, expected: str) -> _Outcome:
    fact = _file_fact_id(expand_path(path, os))
    result = CheckResult(id=f"file:{path}", kind="file", passed=None, expected=expected, found="not read",
                         message=f"{what} of {expand_path(path, os)} could not be read")
    return _Outcome(result, missing=(fact,))


def _range_text(row: FileRow) -> str:
    return (f">= {row.version} ({cast(str, row.branch).upper()}; vulnerable when "
            f"{row.branch_floor} <= version < {row.version})")


def _judge_version(path: str, host_rows: list[FileRow], path_rows: list[FileRow], facts: FileFacts | None,
                   os: OsFacts) -> _Outcome:
    expected = " or ".join(_range_text(r) for r in host_rows)
    if facts is None or (facts.exists and facts.version is None):
        return _file_missing(path, os, "the version", expected)
    check_id = f"file:{path}"
    if not facts.exists:
        return _Outcome(CheckResult(id=check_id, kind="file", passed=False, expected=expected, found="absent",
                                    message=f"{expand_path(path, os)} does not exist"))
    try:
        found = WinVersion.parse(cast(str, facts.version))
    except ValueError as exc:
        result = CheckResult(id=check_id, kind="file", passed=None, expected=expected, found=str(facts.version),
                             message=f"cannot judge {expand_path(path, os)}: {exc}")
        return _Outcome(result, missing=(_file_fact_id(expand_path(path, os)),))
    passed, judged_by, message, row = _version_verdict(found, host_rows, path_rows)
    if passed and row is not None and row.check == "version_size_date":
        # The article prints this version for the old build too: size and date tell them apart.
        by_size_date = _judge_size_date(path, [row], facts, os)
        if by_size_date.result.passed is not True:
            result = by_size_date.result
            return dataclasses.replace(by_size_date, result=dataclasses.replace(
                result, expected=f"{judged_by} and {result.expected}",
                found=f"{found.full_text()}, {result.found}",
                message=f"{message}, but {result.message}" if result.passed is False else result.message))
        message = f"{message}; {by_size_date.result.message}"
    return _Outcome(CheckResult(id=check_id, kind="file", passed=passed, expected=judged_by,
                                found=found.full_text(), message=message),
                    gdr_above_fix=not passed and _gdr_above_fix(found, path_rows))


def _gdr_above_fix(found: WinVersion, path_rows: list[FileRow]) -> bool:
    """On XP / 2003 GDR and QFE builds share one numbering: a GDR build from a later security update can be
    numbered above a hotfix's QFE build and still lack the fix."""
    return found.major < 6 and found.branch() == "gdr" and any(
        r.branch == "ldr" and cast(WinVersion, r.version).build_line == found.build_line
        and found >= cast(WinVersion, r.version) for r in path_rows)


def _version_verdict(found: WinVersion, host_rows: list[FileRow],
                     path_rows: list[FileRow]) -> tuple[bool, str, str, FileRow | None]:
    """(passed, expected, message, the row that decided) for one file version; the rules are in
    docs/engine.md."""
    host_lines = {cast(WinVersion, r.version).build_line for r in host_rows}
    line_rows = [r for r in path_rows if cast(WinVersion, r.version).build_line == found.build_line]
    lowest = min(host_rows, key=lambda r: cast(WinVersion, r.version))
    if found.build_line < min(host_lines):
        return False, _range_text(lowest), (f"build line {found.build_line_text} is older than the line this "
                                            f"service pack needs"), None
    if not line_rows:
        if found.build_line > max(host_lines):
            return True, _range_text(lowest), (f"build line {found.build_line_text} is newer than every line "
                                               f"the article lists for this service pack: a superseding build"), None
        return False, _range_text(lowest), f"the article has no row for build line {found.build_line_text}", None
    branch = found.branch()
    # GDR files carry only security fixes: a fix shipped on the LDR branch alone is never in them,
    # whatever the number (on XP / 2003 GDR and QFE numbers interleave).
    candidates = [r for r in line_rows if not (branch == "gdr" and r.branch == "ldr")]
    in_range = [r for r in candidates if cast(WinVersion, r.branch_floor) <= found]
    if not in_range:
        target = min(line_rows, key=lambda r: cast(WinVersion, r.version))
        if _gdr_above_fix(found, line_rows):
            return False, _range_text(target), (
                f"{found.full_text()} is on the GDR branch (its FileVersion build tag {found.tag!r} names no "
                f"qfe/ldr lab), numbered above the QFE fix {target.version}: GDR builds carry security fixes "
                f"only, so this fix is not in it"), target
        why = ("the GDR branch does not carry this fix; the package installs the LDR file"
               if branch == "gdr" and not any(r.branch == "gdr" for r in line_rows)
               else "older than every branch that carries the fix")
        return False, _range_text(target), f"{found} ({branch}): {why}", target
    row = max(in_range, key=lambda r: cast(WinVersion, r.branch_floor))
    fixed = cast(WinVersion, row.version)
    fix_name = f"the {cast(str, row.branch).upper()} fix"
    if found >= fixed:
        return True, _range_text(row), f"{found} is at or above {fixed}, {fix_name}", row
    return False, _range_text(row), f"{found} is below {fixed}, {fix_name}", row


def _size_date_rows(group: list[FileRow], facts: FileFacts | None) -> list[FileRow]:
    """The size/date rows that judge this file: the row of the file's own branch when its version tells
    (an XP / 2003 GDR file is judged by the GDR row), else every row of the group."""
    if len(group) == 1 or facts is None or facts.version is None:
        return group
    try:
        branch = WinVersion.parse(facts.version).branch()
    except ValueError:
        return group
    return [r for r in group if r.branch == branch] or group


def _size_date_text(row: FileRow) -> str:
    modified = cast(datetime.datetime, row.modified)
    return f"size {row.size} or modified at or after {modified:%Y-%m-%d %H:%M} UTC" + (
        f" ({row.branch.upper()})" if row.branch else "")


def _judge_size_date(path: str, rows: list[FileRow], facts: FileFacts | None, os: OsFacts) -> _Outcome:
    """The file is one of the rows' files or a later one. Rows of several branches (GDR and QFE) each
    name an acceptable file."""
    expected = " or ".join(_size_date_text(r) for r in rows)
    if facts is None:
        return _file_missing(path, os, "the size and date", expected)
    check_id = f"file:{path}"
    if not facts.exists:
        return _Outcome(CheckResult(id=check_id, kind="file", passed=False, expected=expected, found="absent",
                                    message=f"{expand_path(path, os)} does not exist"))
    found = f"size {facts.size if facts.size is not None else '?'}, modified " + (
        f"{facts.modified.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC" if facts.modified else "?")
    # "These file attributes or later": the article's file, or a later one that replaced it.
    if facts.size is not None and any(facts.size == r.size for r in rows):
        passed: bool | None = True
        message = "the article's file (same size)"
    elif facts.modified is not None and any(facts.modified >= cast(datetime.datetime, r.modified) for r in rows):
        passed, message = True, "a file at least as new as the article's"
    elif facts.size is not None and facts.modified is not None:
        passed, message = False, "older than the article's file and a different size"
    else:
        return _file_missing(path, os, "the size or date", expected)
    return _Outcome(CheckResult(id=check_id, kind="file", passed=passed, expected=expected, found=found,
                                message=message))


def _report_info(path: str, row: FileRow, facts: FileFacts | None) -> _Outcome:
    expected = f"{row.version or f'size {row.size}'} (informational)"
    if facts is None:
        found = "not read"
    elif not facts.exists:
        found = "absent"
    else:
        found = facts.version or (f"size {facts.size}" if facts.size is not None else "present")
    result = CheckResult(id=f"file:{path}", kind="file", passed=None, expected=expected, found=found,
                         message="informational: the versioned binaries decide")
    return _Outcome(result, decisive=False)


# ---------------------------------------------------------------------------------------------- registry


def _norm(value: str, setting: RegistrySetting) -> str:
    return value.casefold() if setting.case_insensitive else value


def _data_text(reg_type: str, data: Any) -> str:
    if isinstance(data, list):
        return "[" + ", ".join(data) + "]"
    if isinstance(data, bytes):
        return data.hex()
    return f"{data} ({reg_type})"


def _judge_setting(setting: RegistrySetting, desired: RegistryData, host: HostFacts) -> _Outcome:
    check_id = f"registry:{setting.path}"
    want_text = ("contains " if setting.mode == "merge" else "") + _data_text(setting.type, desired)
    current = host.value(setting.key, setting.name)
    if current == "missing":
        result = CheckResult(id=check_id, kind="registry", passed=None, expected=want_text, found="not read",
                             message=f"{setting.path} could not be read")
        return _Outcome(result, missing=(_value_fact_id(setting.key, setting.name),),
                        step=_set_step(setting, desired, None, before_read=False))
    if current is None:
        if setting.default is not None and _matches(setting, setting.default, desired):
            return _Outcome(CheckResult(id=check_id, kind="registry", passed=True, expected=want_text,
                                        found="absent",
                                        message=f"absent: Windows uses {_data_text(setting.type, setting.default)}"))
        return _Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found="absent",
                                    message=f"{setting.path} does not exist"),
                        step=_set_step(setting, desired, None))
    found_text = _data_text(current.type, current.data)
    if current.type != setting.type:
        return _Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found=found_text,
                                    message=f"{setting.path} is {current.type}, Windows only honours "
                                            f"{setting.type} here"),
                        step=_set_step(setting, desired, current))
    if _matches(setting, current.data, desired):
        return _Outcome(CheckResult(id=check_id, kind="registry", passed=True, expected=want_text, found=found_text))
    target = _merged(setting, current.data, desired) if setting.mode == "merge" else desired
    return _Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found=found_text,
                                message=f"{setting.path} differs"),
                    step=_set_step(setting, target, current))


def _matches(setting: RegistrySetting, current: RegistryData, desired: RegistryData) -> bool:
    if setting.type == "multistring":
        have = [_norm(v, setting) for v in _entries(current)]
        want = [_norm(v, setting) for v in _entries(desired)]
        return set(want) <= set(have) if setting.mode == "merge" else have == want
    if isinstance(current, str) and isinstance(desired, str):
        return _norm(current, setting) == _norm(desired, setting)
    return current == desired


def _entries(data: RegistryData) -> list[str]:
    if isinstance(data, list):
        return [str(v) for v in data]
    return [] if data is None else [str(data)]


def _merged(setting: RegistrySetting, current: RegistryData, desired: RegistryData) -> list[str]:
    # Merge keeps every entry already there (other tools and admins list their servers too) and appends
    # the missing ones in the order asked for.
    have = _entries(current)
    seen = {_norm(v, setting) for v in have}
    added = []
    for value in _entries(desired):
        if _norm(value, setting) not in seen:
            seen.add(_norm(value, setting))
            added.append(value)
    return have + added


def _set_step(setting: RegistrySetting, data: RegistryData, before: RegistryValue | None,
              before_read: bool = True) -> PlanStep:
    if before is None:
        change = "create" if before_read else "set (current value not read)"
        description = f"{change} {setting.path} = {_data_text(setting.type, data)}"
    elif setting.mode == "merge" and before.type == setting.type:
        added = _entries(data)[len(_entries(before.data)):]
        description = f"add {', '.join(added)} to {setting.path} ({setting.type})"
    else:
        description = (f"set {setting.path} from {_data_text(before.type, before.data)} "
                       f"to {_data_text(setting.type, data)}")
    details = {
        "key": setting.key, "name": setting.name, "type": setting.type, "data": data,
        "before": before.to_dict() if before is not None else None,
        "before_read": before_read, "mode": setting.mode, "case_insensitive": setting.case_insensitive,
        "restart": setting.restart,
    }
    return PlanStep(action="set_registry", description=description, details=details)


# -------------------------------------------------------------------------------- prerequisites, hotfix


def _judge_prerequisites(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> list[_Outcome]:
    outcomes = []
    for prereq in _prerequisites_for(spec, entry):
        if prereq.registry_key is not None:
            what = f"registry key {prereq.registry_key}"
            fact = _key_fact_id(prereq.registry_key)
            present = host.registry_keys.get(registry_key_id(prereq.registry_key))
        else:
            path = expand_path(cast(str, prereq.file), host.os)
            what, fact = path, _file_fact_id(path)
            file_facts = host.file(path)
            present = None if file_facts is None else file_facts.exists
        found = "not read" if present is None else ("present" if present else "absent")
        result = CheckResult(id=f"prerequisite:{prereq.id}", kind="prerequisite", passed=present,
                             expected=f"{prereq.description} ({what})", found=found)
        outcomes.append(_Outcome(result, missing=(fact,) if present is None else ()))
    return outcomes


def _judge_hotfix(spec: ArticleSpec, entry: OsEntry, host: HostFacts, files_decide: bool) -> _Outcome:
    listed = [h for h in spec.hotfix_ids if h.upper() in host.hotfixes]
    keys = _record_keys(spec, entry)
    states = {k: host.registry_keys.get(registry_key_id(k)) for k in keys}
    found_parts = [f"{h} ({', '.join(host.hotfix_sources.get(h.upper(), ())) or 'listed'})" for h in listed]
    found_parts += [f"record {k}" for k, present in states.items() if present]
    unread = [k for k, present in states.items() if present is None]
    installed = bool(found_parts)
    expected = " or ".join(list(spec.hotfix_ids) + [f"record {k}" for k in keys])
    found = "; ".join(found_parts) or ("not recorded" + (" (some records not read)" if unread else ""))
    if files_decide:
        # Hotfix lists miss superseded fixes and installers sometimes fail to record: a hint only.
        result = CheckResult(id=f"hotfix:{spec.hotfix_ids[0]}", kind="hotfix", passed=None, expected=expected,
                             found=found, message="informational: file versions decide")
        return _Outcome(result, decisive=False)
    passed = True if installed else (None if unread else False)
    result = CheckResult(id=f"hotfix:{spec.hotfix_ids[0]}", kind="hotfix", passed=passed, expected=expected,
                         found=found, message="no file row applies here: the hotfix record decides")
    return _Outcome(result, missing=tuple(_key_fact_id(k) for k in unread) if passed is None else ())


def _hotfix_recorded(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> bool:
    return (any(h.upper() in host.hotfixes for h in spec.hotfix_ids)
            or any(host.registry_keys.get(registry_key_id(k)) for k in _record_keys(spec, entry)))


# ----------------------------------------------------------------------------------------------- verdict


def _install_step(spec: ArticleSpec, package: Package) -> PlanStep:
    return PlanStep(
        action="install_package",
        description=f"install {spec.id} from {package.file} ({package.installer})",
        details={
            "hotfix_id": spec.hotfix_ids[0], "package": package.file, "installer": package.installer,
            "arguments": list(package.arguments), "success_codes": dict(package.exit_codes),
            "restart": package.restart, **({"sha256": package.sha256} if package.sha256 else {}),
        },
    )


def _no_package_step(spec: ArticleSpec, entry: OsEntry, os: OsFacts) -> PlanStep:
    where = f"{entry.name} SP{os.service_pack}/{os.architecture}"
    remedy = (f"download it from {spec.url} or the Microsoft Update Catalog, then add `packages` to the spec "
              f"({spec.source})")
    return PlanStep("manual", f"{spec.id}: the article names no package for {where}: {remedy}",
                    {"reason": f"the article names no package for {where}", "remedy": remedy, "files": [],
                     "switch": None, "restart": False})


@dataclass
class _Assessment:
    """Everything the status and the plan are derived from."""

    files: list[_Outcome]
    settings: list[_Outcome]
    prerequisites: list[_Outcome]
    hotfix: _Outcome
    entry: OsEntry  # the applicability entry the host is judged as
    package: Package | None  # None: the article names no package for this OS
    recorded: bool
    reboot_pending: bool
    # Whether the pending restart is for this article's own change, and why (see _restart_for_fix).
    restart_for_fix: tuple[bool, str] = (True, "")

    @property
    def files_bad(self) -> bool:
        return any(o.failed or o.undecided for o in self.files) or (
            self.hotfix.decisive and self.hotfix.result.passed is not True)

    @property
    def installed_awaiting_restart(self) -> bool:
        # The installer ran (its record is there) but in-use files are replaced at the next boot
        # (PendingFileRenameOperations): reinstalling would not help, restarting will.
        return self.reboot_pending and self.recorded and self.files_bad

    @property
    def fix_awaiting_restart(self) -> bool:
        # Files on disk are right, but a driver or service loaded before they were replaced may still be
        # the old one until the restart that is pending.
        return (self.reboot_pending and self.package is not None and self.package.restart and not self.files_bad
                and self.restart_for_fix[0])


def _rename_target(entry: str) -> str:
    # "!\\??\\C:\\Windows\\..." -> "c:\\windows\\...": "!" asks to replace an existing file, "\\??\\" is the
    # NT object namespace prefix of a DOS path.
    text = entry.strip().lstrip("!")
    for prefix in ("\\??\\", "\\\\?\\"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.casefold()


def _restart_for_fix(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> tuple[bool, str]:
    """Does the pending restart concern this article's change? (True, why) when its files wait for it or
    the facts cannot rule that out; (False, why) when they were in place before the last boot and no pending
    rename names them (docs/engine.md, "reboot_pending, exactly")."""
    paths = sorted({expand_path(r.path, host.os) for r in _rows_for(spec, entry, host.os)
                    if r.path is not None and r.check != "info"})
    if host.pending_renames is None:
        return True, "the pending file renames could not be read"
    queued = {_rename_target(e) for e in host.pending_renames}
    named = [p for p in paths if p.casefold() in queued]
    if named:
        return True, f"PendingFileRenameOperations replaces {', '.join(named)} at the next start"
    # update.exe renames an in-use file aside (a .tmp next to it, queued for deletion) and writes the new one
    # in its place: the new file is on disk, the old image still runs, and no entry names the file itself.
    folders = {ntpath.dirname(p).casefold(): p for p in paths}
    beside = [folders[ntpath.dirname(q)] for q in sorted(queued) if ntpath.dirname(q) in folders]
    if beside:
        return True, (f"PendingFileRenameOperations holds a file next to {beside[0]}, as an installer leaves "
                      "when it replaces a file in use")
    boot = host.os.last_boot
    if boot is None:
        return True, "the last boot time is not known"
    for path in paths:
        facts = host.file(path)
        if facts is None or not facts.exists or facts.modified is None:
            return True, f"the write time of {path} is not known"
        if facts.modified > boot:
            return True, (f"{path} was written at {facts.modified.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
                          f"after the last boot at {boot.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    return False, (f"{spec.id}'s files were in place before the last boot at "
                   f"{boot.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC and no pending rename names them")


def _branch_steps(spec: ArticleSpec, assessed: _Assessment, os: OsFacts) -> list[PlanStep]:
    """The file steps: the package, or, when update.exe already ran and left a GDR file above the QFE fix,
    the remedy it cannot apply itself (docs/engine.md, "GDR files above the QFE fix")."""
    gdr = [o for o in assessed.files if o.gdr_above_fix]
    others_bad = any((o.failed or o.undecided) and not o.gdr_above_fix for o in assessed.files)
    paths = [o.result.id.removeprefix("file:") for o in gdr]
    if gdr and assessed.recorded and not others_bad:
        # The hotfix is recorded, so update.exe has run: it keeps a higher-numbered file and found no QFE twin
        # of it in $hf_mig$. Running it again changes nothing.
        switch = f"/B:SP{os.service_pack}QFE"
        remedy = (f"reinstall the security update that installed {gdr[0].result.found} with {switch}, so that "
                  "it lays down its QFE build, which carries the earlier QFE fixes")
        return [PlanStep("manual", f"{spec.id}: {remedy}",
                         {"reason": f"{', '.join(paths)} stay on the GDR branch above the QFE fix; "
                                    f"{spec.id} is recorded, and update.exe does not replace a higher-numbered "
                                    "file", "remedy": remedy, "files": paths, "switch": switch,
                          "restart": assessed.package is not None and assessed.package.restart})]
    if assessed.package is None:
        return [_no_package_step(spec, assessed.entry, os)]
    step = _install_step(spec, assessed.package)
    if gdr:
        # update.exe does not install the package's lower-numbered file; it moves the file to the QFE branch
        # with the QFE build of the same number that the security update left in %SystemRoot%\$hf_mig$.
        step.details["qfe_migration"] = paths
        step = dataclasses.replace(step, description=step.description + (
            f"; update.exe moves {', '.join(paths)} to the QFE branch from %SystemRoot%\\$hf_mig$"))
    return [step]


def _plan(spec: ArticleSpec, assessed: _Assessment, os: OsFacts) -> list[PlanStep]:
    steps = []
    if assessed.files_bad and not assessed.installed_awaiting_restart:
        steps += _branch_steps(spec, assessed, os)
    steps += [o.step for o in assessed.settings if o.step is not None]
    needs_restart = any(bool(s.details.get("restart")) for s in steps)
    if assessed.installed_awaiting_restart or assessed.fix_awaiting_restart:
        steps.append(PlanStep("reboot", "restart to bring the installed fix into effect",
                              {"reason": f"{spec.id} is installed; its files take effect at the next start"}))
    elif steps and (needs_restart or assessed.reboot_pending):
        reason = "the changes take effect at the next start" if needs_restart else "a restart is already pending"
        steps.append(PlanStep("reboot", f"restart: {reason}", {"reason": f"{spec.id}: {reason}"}))
    return steps


def _status(assessed: _Assessment) -> VerdictStatus:
    file_checks = assessed.files + ([assessed.hotfix] if assessed.hotfix.decisive else [])
    # Files still old because the installer's replacements wait for the restart are not a failure.
    files_failed = any(o.failed for o in file_checks) and not assessed.installed_awaiting_restart
    status: VerdictStatus
    if files_failed or any(o.failed for o in assessed.settings):
        status = "noncompliant"
    elif any(o.undecided for o in file_checks + assessed.settings):
        status = "unknown"
    elif assessed.installed_awaiting_restart or assessed.fix_awaiting_restart:
        status = "reboot_pending"
    else:
        status = "compliant"
    # A prerequisite that could not be read leaves "not applicable" open: only a host that needs nothing
    # either way may be called compliant.
    if status != "compliant" and any(o.undecided for o in assessed.prerequisites):
        status = "unknown"
    return status


def _awaiting_restart(spec: ArticleSpec, outcome: _Outcome) -> _Outcome:
    if not outcome.failed:
        return outcome
    note = f"{spec.id} is installed: the new file takes effect at the pending restart"
    message = f"{outcome.result.message}; {note}" if outcome.result.message else note
    return dataclasses.replace(outcome, result=dataclasses.replace(outcome.result, message=message))


def _reboot_check(assessed: _Assessment, host: HostFacts) -> CheckResult:
    if not host.reboot_pending:
        return CheckResult(id="reboot", kind="reboot", passed=True, expected="no restart pending", found="none")
    sources = ", ".join(host.reboot_pending_sources) or "pending"
    relevant = assessed.installed_awaiting_restart or assessed.fix_awaiting_restart
    waits, why = assessed.restart_for_fix
    if relevant:
        message = "the fix is not in effect until the restart" + (f": {why}" if why else "")
    elif not waits:
        message = f"informational: a restart is pending for something else; {why}"
    else:
        message = "informational: this article's fix does not wait for it"
    return CheckResult(id="reboot", kind="reboot", passed=False if relevant else None,
                       expected="no restart pending", found=sources, message=message)


def _reason(spec: ArticleSpec, status: VerdictStatus, checks: list[CheckResult], missing: list[str]) -> str:
    failing = [c for c in checks if c.passed is False and c.kind in ("file", "registry", "hotfix")]
    if status == "noncompliant":
        return f"{len(failing)} check(s) fail: " + "; ".join(f"{c.id} expected {c.expected}, found {c.found}"
                                                             for c in failing)
    if status == "unknown":
        return "could not read: " + ", ".join(missing)
    if status == "reboot_pending":
        return f"{spec.id} is in place but a restart is pending before it takes effect"
    decided = [c for c in checks if c.passed is True and c.kind in ("file", "registry", "hotfix")]
    note = f" (not read: {', '.join(missing)})" if missing else ""
    return f"all {len(decided)} check(s) pass{note}"


def evaluate(spec: ArticleSpec, host_facts: HostFacts, variables: Mapping[str, Any]) -> Verdict:
    """Judge the article on one host: status, checks, and the plan that would make it compliant."""
    scope = _scope(spec, host_facts.os)
    if scope.entry is None:
        return Verdict(article=spec.id, title=spec.title, status="not_applicable", reason=scope.check.message,
                       checks=[scope.check])
    # Required variables are required where the article applies: a fleet-wide audit of every article must
    # not need XP's server list on a Server 2008 host.
    resolved = resolve_variables(spec, variables)
    entry = scope.entry
    prerequisites = _judge_prerequisites(spec, entry, host_facts)
    unmet = [o.result for o in prerequisites if o.result.passed is False]
    if unmet:
        return Verdict(article=spec.id, title=spec.title, status="not_applicable",
                       reason=f"prerequisite not met: {unmet[0].expected}",
                       checks=[scope.check] + [o.result for o in prerequisites])
    files = _judge_files(spec, entry, host_facts)
    settings = [_judge_setting(s, _desired(s, resolved), host_facts)
                for s in _active_settings(spec, entry, host_facts.os, resolved)]
    hotfix = _judge_hotfix(spec, entry, host_facts, files_decide=any(o.decisive for o in files))
    assessed = _Assessment(files=files, settings=settings, prerequisites=prerequisites, hotfix=hotfix,
                           entry=entry, package=_package(spec, entry, host_facts.os),
                           recorded=_hotfix_recorded(spec, entry, host_facts),
                           reboot_pending=host_facts.reboot_pending,
                           restart_for_fix=_restart_for_fix(spec, entry, host_facts))
    plan = _plan(spec, assessed, host_facts.os)
    status = _status(assessed)
    if assessed.installed_awaiting_restart:
        files = [_awaiting_restart(spec, o) for o in files]
    outcomes = prerequisites + files + settings + [hotfix]
    checks = [scope.check] + [o.result for o in outcomes] + [_reboot_check(assessed, host_facts)]
    missing = list(dict.fromkeys(m for o in outcomes for m in o.missing))
    return Verdict(article=spec.id, title=spec.title, status=status, reason=_reason(spec, status, checks, missing),
                   checks=checks, plan=plan, missing=missing,
                   restart_required=any(step.action == "reboot" for step in plan))


# Installer answers that say "nothing to do" (installer.DEFAULT_EXIT_CODES): wusa's WU_E_NOT_APPLICABLE
# 0x80240017 and WU_S_ALREADY_INSTALLED 0x00240006.
_NOTHING_TO_DO = {"not_applicable": "not applicable", "already_installed": "already installed"}


def with_install_answer(verdict: Verdict, hotfix_id: str, exit_code: int, meaning: str) -> Verdict:
    """The verdict once the package's installer has answered. "Not applicable" or "already installed" while
    the file checks still say the fix is missing means the spec and the installer disagree about this host
    (a component or superseding build the spec does not know, or the wrong package): the verdict becomes
    ``unknown`` with the reason, never a silent success. Any other answer, or files that agree, change
    nothing."""
    said = _NOTHING_TO_DO.get(meaning)
    disagreeing = [c for c in verdict.checks if c.kind in ("file", "hotfix") and c.passed is False]
    if said is None or verdict.status not in ("noncompliant", "unknown") or not disagreeing:
        return verdict
    code = f"{exit_code} ({exit_code & 0xFFFFFFFF:#010x}, {said})"
    files = "; ".join(f"{c.id} expected {c.expected}, found {c.found}" for c in disagreeing)
    reason = (f"the {hotfix_id} installer answered {code} but the files say the fix is missing: {files}. "
              "Not judged compliant or noncompliant until someone looks: the spec's rows or the package may not "
              "fit this host")
    answer = CheckResult(id=f"installer:{hotfix_id}", kind="installer", passed=False, expected="the fix installed",
                         found=code, message=f"the installer says {said}; the files disagree")
    return dataclasses.replace(verdict, status="unknown", reason=reason, checks=[*verdict.checks, answer])


# ---------------------------------------------------------------------------------------- host snapshots


@dataclass(frozen=True)
class HostSnapshot:
    """A recorded host (docs/engine.md, "Host snapshots"): its state, and which facts cannot be read.

    ``answer`` plays the transport: it returns the ``HostFacts`` a collector would produce for a request,
    so the engine can be run offline against bundled hosts.
    """

    name: str
    description: str
    state: HostFacts
    unreadable: frozenset[str]

    def answer(self, request: FactRequest) -> HostFacts:
        state = self.state
        files = {}
        for path in request.files:
            if _file_fact_id(path).casefold() not in self.unreadable:
                known = state.file(path)
                files[path.casefold()] = (dataclasses.replace(known, path=path) if known
                                          else FileFacts(path=path, exists=False))
        registry: dict[tuple[str, str], RegistryValue | None] = {}
        for key, name in request.registry_values:
            if _value_fact_id(key, name).casefold() not in self.unreadable:
                registry[(registry_key_id(key), name.casefold())] = state.registry.get(
                    (registry_key_id(key), name.casefold()))
        keys = {}
        for key in request.registry_keys:
            if _key_fact_id(key).casefold() not in self.unreadable:
                keys[registry_key_id(key)] = self._key_exists(key)
        return HostFacts(os=state.os, files=files, registry=registry, registry_keys=keys, hotfixes=state.hotfixes,
                         hotfix_sources=dict(state.hotfix_sources), reboot_pending=state.reboot_pending,
                         reboot_pending_sources=state.reboot_pending_sources,
                         pending_renames=state.pending_renames)

    def _key_exists(self, key: str) -> bool:
        key_id = registry_key_id(key)
        if self.state.registry_keys.get(key_id):
            return True
        # A key holding a value exists, and so do its parents.
        return any(k == key_id or k.startswith(key_id + "\\") for k, _value in self.state.registry)


def _snapshot_mapping(value: Any, source: str, where: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(source, where, "must be a mapping")
    allowed = tuple(allowed)
    stray = [str(k) for k in value if k not in allowed]
    if stray:
        raise SpecError(source, f"{where}.{stray[0]}" if where else stray[0],
                        f"unknown key (allowed: {', '.join(allowed)})")
    return value


def _snapshot_time(value: Any, source: str, where: str) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise SpecError(source, where, f"{value!r} is not an ISO date and time") from None
    if not isinstance(value, datetime.datetime):
        raise SpecError(source, where, f"{value!r} is not an ISO date and time")
    if value.tzinfo is None:
        raise SpecError(source, where, "needs a time zone (end it with Z for UTC)")
    return value.astimezone(datetime.UTC)


def _snapshot_files(data: Any, source: str) -> dict[str, FileFacts]:
    files = {}
    for path, body in (data or {}).items():
        where = f"files.{path}"
        body = _snapshot_mapping(body or {}, source, where, ("version", "size", "modified"))
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise SpecError(source, f"{where}.version", "must be a string (quote it)")
        files[str(path).casefold()] = FileFacts(path=str(path), exists=True, version=version, size=body.get("size"),
                                                modified=_snapshot_time(body.get("modified"), source,
                                                                        f"{where}.modified"))
    return files


def _snapshot_registry(data: Any, source: str) -> dict[tuple[str, str], RegistryValue | None]:
    registry: dict[tuple[str, str], RegistryValue | None] = {}
    for key, values in (data or {}).items():
        for name, body in (values or {}).items():
            where = f"registry.{key}.{name}"
            body = _snapshot_mapping(body, source, where, ("type", "data"))
            reg_type = body.get("type")
            if reg_type not in REGISTRY_TYPES:
                raise SpecError(source, f"{where}.type",
                                f"{reg_type!r} is not one of {', '.join(REGISTRY_TYPES)}")
            data_value = body.get("data")
            if reg_type == "binary" and isinstance(data_value, str):
                data_value = bytes.fromhex(data_value)
            registry[(registry_key_id(str(key)), str(name).casefold())] = RegistryValue(
                type=cast(RegistryType, reg_type), data=data_value)
    return registry


_SNAPSHOT_KEYS = ("name", "description", "os", "files", "registry", "registry_keys", "hotfixes", "reboot_pending",
                  "pending_renames", "unreadable")
_OS_KEYS = ("version", "service_pack", "architecture", "product_type", "caption", "r2", "system_root", "last_boot")


def host_snapshot_from_data(data: Any, source: str) -> HostSnapshot:
    """Build a ``HostSnapshot`` from parsed YAML (format in docs/engine.md)."""
    top = _snapshot_mapping(data, source, "", _SNAPSHOT_KEYS)
    os_data = _snapshot_mapping(top.get("os"), source, "os", _OS_KEYS)
    if os_data.get("architecture") not in ARCHITECTURES:
        raise SpecError(source, "os.architecture",
                        f"{os_data.get('architecture')!r} is not one of {', '.join(ARCHITECTURES)}")
    try:
        os = OsFacts(version=str(os_data["version"]), service_pack=int(os_data["service_pack"]),
                     architecture=cast(Architecture, os_data["architecture"]),
                     product_type=int(os_data["product_type"]), caption=str(os_data.get("caption", "")),
                     r2=bool(os_data.get("r2", False)), system_root=str(os_data.get("system_root", "C:\\WINDOWS")),
                     last_boot=_snapshot_time(os_data.get("last_boot"), source, "os.last_boot"))
    except KeyError as exc:
        raise SpecError(source, f"os.{exc.args[0]}", "is required") from None
    hotfixes = top.get("hotfixes") or {}
    if not isinstance(hotfixes, Mapping):
        raise SpecError(source, "hotfixes", "must map hotfix ids to their sources ({KB977381: [qfe]})")
    for key in ("registry_keys", "reboot_pending", "pending_renames", "unreadable"):
        if not isinstance(top.get(key) or [], list):
            raise SpecError(source, key, "must be a list")
    reboot_sources = tuple(str(s) for s in top.get("reboot_pending") or ())
    state = HostFacts(
        os=os, files=_snapshot_files(top.get("files"), source),
        registry=_snapshot_registry(top.get("registry"), source),
        registry_keys={registry_key_id(str(k)): True for k in top.get("registry_keys") or ()},
        hotfixes=frozenset(str(h).upper() for h in hotfixes),
        hotfix_sources={str(h).upper(): tuple(s or ()) for h, s in hotfixes.items()},
        reboot_pending=bool(reboot_sources), reboot_pending_sources=reboot_sources,
        # Left out: not read (the engine then cannot rule out that the restart is for the article).
        pending_renames=(tuple(str(e) for e in top["pending_renames"] or ())
                         if "pending_renames" in top else None),
    )
    return HostSnapshot(name=str(top.get("name") or Path(source).stem), description=str(top.get("description", "")),
                        state=state, unreadable=frozenset(str(u).casefold() for u in top.get("unreadable") or ()))


def load_host_snapshot(path: str | Path) -> HostSnapshot:
    """Read a host snapshot YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(path.name, "", f"cannot read host snapshot: {exc}") from None
    return host_snapshot_from_data(data, path.name)
