# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging the article's file rows on a host: versions by branch range, size and date, informational rows
(docs/engine.md, "File versions", "`size_date` rows", "`version_size_date` rows")."""

from __future__ import annotations

import dataclasses
import datetime
from typing import cast

from .checks import (
    Outcome,
    file_fact_id,
)
from .model import (
    CheckResult,
    FileFacts,
    HostFacts,
    OsFacts,
)
from .scope import (
    expand_path,
    rows_for,
)
from .spec_model import (
    VERSION_CHECKS,
    ArticleSpec,
    FileRow,
    OsEntry,
)
from .versions import WinVersion


def judge_files(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> list[Outcome]:
    rows = rows_for(spec, entry, host.os)
    all_rows = rows_for(spec, entry, host.os, any_service_pack=True)
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


def _file_missing(path: str, os: OsFacts, what: str, expected: str) -> Outcome:
    fact = file_fact_id(expand_path(path, os))
    result = CheckResult(id=f"file:{path}", kind="file", passed=None, expected=expected, found="not read",
                         message=f"{what} of {expand_path(path, os)} could not be read")
    return Outcome(result, missing=(fact,))


def _range_text(row: FileRow) -> str:
    return (f">= {row.version} ({cast(str, row.branch).upper()}; vulnerable when "
            f"{row.branch_floor} <= version < {row.version})")


def _judge_version(path: str, host_rows: list[FileRow], path_rows: list[FileRow], facts: FileFacts | None,
                   os: OsFacts) -> Outcome:
    expected = " or ".join(_range_text(r) for r in host_rows)
    if facts is None or (facts.exists and facts.version is None):
        return _file_missing(path, os, "the version", expected)
    check_id = f"file:{path}"
    if not facts.exists:
        return Outcome(CheckResult(id=check_id, kind="file", passed=False, expected=expected, found="absent",
                                   message=f"{expand_path(path, os)} does not exist"))
    try:
        found = WinVersion.parse(cast(str, facts.version))
    except ValueError as exc:
        result = CheckResult(id=check_id, kind="file", passed=None, expected=expected, found=str(facts.version),
                             message=f"cannot judge {expand_path(path, os)}: {exc}")
        return Outcome(result, missing=(file_fact_id(expand_path(path, os)),))
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
    return Outcome(CheckResult(id=check_id, kind="file", passed=passed, expected=judged_by,
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


def _judge_size_date(path: str, rows: list[FileRow], facts: FileFacts | None, os: OsFacts) -> Outcome:
    """The file is one of the rows' files or a later one. Rows of several branches (GDR and QFE) each
    name an acceptable file."""
    expected = " or ".join(_size_date_text(r) for r in rows)
    if facts is None:
        return _file_missing(path, os, "the size and date", expected)
    check_id = f"file:{path}"
    if not facts.exists:
        return Outcome(CheckResult(id=check_id, kind="file", passed=False, expected=expected, found="absent",
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
    return Outcome(CheckResult(id=check_id, kind="file", passed=passed, expected=expected, found=found,
                               message=message))


def _report_info(path: str, row: FileRow, facts: FileFacts | None) -> Outcome:
    expected = f"{row.version or f'size {row.size}'} (informational)"
    if facts is None:
        found = "not read"
    elif not facts.exists:
        found = "absent"
    else:
        found = facts.version or (f"size {facts.size}" if facts.size is not None else "present")
    result = CheckResult(id=f"file:{path}", kind="file", passed=None, expected=expected, found=found,
                         message="informational: the versioned binaries decide")
    return Outcome(result, decisive=False)
