# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of ``kbfix.windows.file_version``: paths with %VARIABLES%, the criteria (minimums per branch,
an exact version, or size and date), and the judging, branch-aware (GDR/LDR on NT 6.x, build lines
everywhere) with the engine's ``versions`` module. ``audit`` reads every file in one CIM_DataFile query.

Pure library: no Ansible imports.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..article.model import FileFacts, OsFacts
from ..article.versions import WinVersion
from ..errors import ArgumentError
from ..transport import escape
from ..transport.base import Transport

MAX_FILE_SIZE = 2**64 - 1  # CIM_DataFile.FileSize is a uint64

_VARIABLE = re.compile(r"%([^%\\]+)%")
_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")
# Variables taken from OS facts, and those read from the registry (the Program Files folders can be moved
# or localised, so they are read rather than assumed).
_OS_VARIABLES = ("systemroot", "windir", "systemdrive")
_CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion"
_REGISTRY_VARIABLES = {
    "programfiles": "ProgramFilesDir", "programfiles(x86)": "ProgramFilesDir (x86)",
    "commonprogramfiles": "CommonFilesDir", "commonprogramfiles(x86)": "CommonFilesDir (x86)",
}
# NT 6.x revision floors of each servicing branch (versions.py: 16000-19999 GDR, 20000-29999 LDR).
_NT6_BRANCH_FLOORS = {"gdr": 16000, "ldr": 20000}


# --- arguments ------------------------------------------------------------------------------------------------


def _version(text: Any, field: str) -> WinVersion:
    try:
        return WinVersion.parse(str(text))
    except ValueError as exc:
        raise ArgumentError(field, str(exc)) from None


@dataclass(frozen=True)
class Row:
    """One minimum and the lowest version of the branch it belongs to: a file with ``floor <= version`` on
    the same build line is judged against ``minimum`` (the scanners' ``floor <= v < fixed`` rule)."""

    floor: WinVersion
    minimum: WinVersion


def derived_floor(minimum: WinVersion) -> WinVersion:
    """On NT 6.x the revision tells the branch, so its floor is known (6.0.6001.22565 -> 6.0.6001.20000);
    on XP / 2003 GDR and QFE numbers interleave, so the floor is the start of the build line."""
    floor = _NT6_BRANCH_FLOORS.get(minimum.branch(), 0) if minimum.major == 6 else 0
    return WinVersion(minimum.major, minimum.minor, minimum.build, floor)


def rows_from(minimums: list[str], branch_floor: str | None) -> list[Row]:
    versions = [_version(m, f"minimum_version[{i}]") for i, m in enumerate(minimums)]
    if not versions:
        raise ArgumentError("minimum_version", "give at least one version")
    if branch_floor is not None:
        if len(versions) != 1:
            raise ArgumentError("branch_floor", "applies to a single minimum_version; with several, each "
                                                "minimum's branch floor is derived from its number")
        floor = _version(branch_floor, "branch_floor")
        if floor.build_line != versions[0].build_line or floor > versions[0]:
            raise ArgumentError("branch_floor", f"{floor} must be on the build line of minimum_version "
                                                f"({versions[0].build_line_text}) and not above it")
        return [Row(floor, versions[0])]
    rows = [Row(derived_floor(v), v) for v in versions]
    seen: dict[tuple[int, ...], WinVersion] = {}
    for row in rows:
        if row.floor.parts in seen:
            raise ArgumentError("minimum_version", f"{seen[row.floor.parts]} and {row.minimum} are minimums for "
                                                   f"the same branch of build line {row.floor.build_line_text}")
        seen[row.floor.parts] = row.minimum
    return rows


def parse_date(text: str) -> datetime.datetime:
    """``2003-09-27``, ``2003-09-27 14:30`` or ISO 8601 with an offset; without one, UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ArgumentError("date", f"{text!r} is not a date (YYYY-MM-DD, optionally with a time "
                                    "HH:MM and a UTC offset)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Criteria:
    rows: tuple[Row, ...] = ()
    exact: WinVersion | None = None
    size: int | None = None
    date: datetime.datetime | None = None

    @property
    def by_version(self) -> bool:
        return bool(self.rows) or self.exact is not None


def criteria_from(args: Mapping[str, Any]) -> Criteria:
    if args["branch_floor"] is not None and args["minimum_version"] is None:
        raise ArgumentError("branch_floor", "needs minimum_version")
    if args["size"] is not None and not 0 <= args["size"] <= MAX_FILE_SIZE:
        raise ArgumentError("size", f"must be between 0 and {MAX_FILE_SIZE} bytes (CIM_DataFile.FileSize is "
                                    f"a uint64), not {args['size']}")
    return Criteria(
        rows=tuple(rows_from(args["minimum_version"], args["branch_floor"])) if args["minimum_version"] else (),
        exact=_version(args["exact_version"], "exact_version") if args["exact_version"] is not None else None,
        size=args["size"],
        date=parse_date(args["date"]) if args["date"] is not None else None,
    )


def check_paths(paths: list[str]) -> list[str]:
    """Absolute local paths, or paths starting with a supported %VARIABLE%; slashes become backslashes."""
    if not paths:
        raise ArgumentError("paths", "give at least one file")
    out = []
    for index, raw in enumerate(paths):
        field = f"paths[{index}]"
        if not isinstance(raw, str) or not raw.strip():
            raise ArgumentError(field, "an empty path")
        path = raw.strip().replace("/", "\\")
        if path.startswith("\\\\"):
            raise ArgumentError(field, f"{raw!r}: CIM_DataFile sees local files only, not UNC paths")
        for name in _VARIABLE.findall(path):
            if name.casefold() not in (*_OS_VARIABLES, *_REGISTRY_VARIABLES):
                raise ArgumentError(field, f"%{name}% is not supported; use %SystemRoot%, %windir%, %SystemDrive%, "
                                           "%ProgramFiles%, %ProgramFiles(x86)%, %CommonProgramFiles% or "
                                           "%CommonProgramFiles(x86)%")
        if not _VARIABLE.match(path) and not _ABSOLUTE.match(path):
            raise ArgumentError(field, f"{raw!r} is not an absolute path (C:\\... or %SystemRoot%\\...)")
        # The rules every path argument shares (quotes, '..', NUL, ...). '%' is allowed: the path travels only
        # in WQL string literals (CIM_DataFile Name equality, never LIKE), where '%' and '_' are literal.
        out.append(escape.host_path(raw, field, unc=False, variables=True))
    return out


# --- expansion ----------------------------------------------------------------------------------------------


def needed_variables(paths: list[str]) -> set[str]:
    return {name.casefold() for p in paths for name in _VARIABLE.findall(p)}


def os_variables(os: OsFacts) -> dict[str, str]:
    root = os.system_root.rstrip("\\")
    return {"systemroot": root, "windir": root, "systemdrive": root[:2]}


def expand(path: str, variables: dict[str, str], field: str) -> str:
    def value(match: re.Match[str]) -> str:
        found = variables.get(match.group(1).casefold())
        if found is None:
            raise ArgumentError(field, f"%{match.group(1)}% is not defined on this host")
        return found.rstrip("\\")

    expanded = _VARIABLE.sub(value, path)
    if not _ABSOLUTE.match(expanded):
        raise ArgumentError(field, f"{path!r} expands to {expanded!r}, which is not an absolute path")
    return expanded


# --- judging --------------------------------------------------------------------------------------------------


def judge_version(found: WinVersion, rows: Sequence[Row]) -> tuple[bool, str]:
    """Build line first (a newer service pack or release supersedes), then the branch row whose floor is the
    highest at or below the file's version."""
    line_rows = [r for r in rows if r.minimum.build_line == found.build_line]
    if not line_rows:
        if found.build_line > max(r.minimum.build_line for r in rows):
            return True, f"build line {found.build_line_text} is newer than every minimum's (a later release)"
        return False, f"no minimum for build line {found.build_line_text}, and it is not newer than theirs"
    candidates = [r for r in line_rows if r.floor <= found]
    if not candidates:
        lowest = min(r.floor for r in line_rows)
        return False, f"{found} is below {lowest}, the lowest branch floor of its build line"
    row = max(candidates, key=lambda r: r.floor)
    if found >= row.minimum:
        return True, f"{found} >= {row.minimum}"
    return False, f"{found} < {row.minimum}"


def judge(facts: FileFacts, criteria: Criteria) -> tuple[bool, str]:
    if not facts.exists:
        return False, "the file does not exist"
    if criteria.by_version:
        if not facts.version:
            return False, "the file has no version resource"
        try:
            found = WinVersion.parse(facts.version)
        except ValueError as exc:
            return False, f"cannot read the version: {exc}"
        if criteria.exact is not None:
            same = found == criteria.exact
            return same, f"{found} {'==' if same else '!='} {criteria.exact}"
        return judge_version(found, criteria.rows)
    return _judge_size_date(facts, criteria)


def _judge_size_date(facts: FileFacts, criteria: Criteria) -> tuple[bool, str]:
    size_ok = criteria.size is not None and facts.size == criteria.size
    date_ok = criteria.date is not None and facts.modified is not None and facts.modified >= criteria.date
    if criteria.size is None and criteria.date is None:
        return True, "the file exists"
    # Articles without versions list "these attributes or later": the article's file (same size) or a
    # later one that replaced it (modified at or after the article's date), as the engine judges them.
    if size_ok:
        return True, f"size {facts.size} as expected"
    if date_ok:
        return True, f"modified {_iso(facts.modified)}, at or after {_iso(criteria.date)}"
    wanted = " or ".join(w for w in (f"size {criteria.size}" if criteria.size is not None else "",
                                     f"modified at or after {_iso(criteria.date)}" if criteria.date else "") if w)
    return False, f"size {facts.size}, modified {_iso(facts.modified)}; expected {wanted}"


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def file_result(path: str, expanded: str, facts: FileFacts, criteria: Criteria) -> dict[str, Any]:
    compliant, reason = judge(facts, criteria)
    version = branch = None
    if facts.version:
        try:
            parsed = WinVersion.parse(facts.version)
            version, branch = str(parsed), parsed.branch()
        except ValueError:
            pass
    return {"path": path, "expanded_path": expanded, "exists": facts.exists, "version": version,
            "file_version": facts.version, "branch": branch, "size": facts.size, "date": _iso(facts.modified),
            "compliant": compliant, "reason": reason}


# --- reading the host -----------------------------------------------------------------------------------


def audit(transport: Transport, raw_paths: list[str], paths: list[str], criteria: Criteria,
          os_facts: Callable[[], OsFacts], *, report_only: bool = False) -> dict[str, Any]:
    """The task result for ``paths`` (``check_paths`` of ``raw_paths``, which the result names).
    ``os_facts`` is called only when a path uses an OS variable."""
    variables = host_variables(transport, needed_variables(paths), os_facts)
    expanded = [expand(p, variables, f"paths[{i}]") for i, p in enumerate(paths)]
    facts = transport.file_facts(expanded)  # one CIM_DataFile query for every path
    files = [file_result(raw, full, facts.get(full.casefold()) or FileFacts(full, False), criteria)
             for raw, full in zip(raw_paths, expanded, strict=True)]
    bad = [f for f in files if not f["compliant"]]
    result: dict[str, Any] = {"changed": False, "files": files, "compliant": not bad,
                              "noncompliant": [f["path"] for f in bad]}
    if bad:
        result["msg"] = f"{len(bad)} of {len(files)} files not compliant: " + "; ".join(
            f"{f['expanded_path']} ({f['reason']})" for f in bad)
        result["failed"] = not report_only
    else:
        result["msg"] = f"all {len(files)} files compliant"
    return result


def host_variables(transport: Transport, needed: set[str], os_facts: Callable[[], OsFacts]) -> dict[str, str]:
    variables: dict[str, str] = {}
    if needed & set(_OS_VARIABLES):
        variables.update(os_variables(os_facts()))
    wanted = {v: _REGISTRY_VARIABLES[v] for v in needed if v in _REGISTRY_VARIABLES}
    if wanted:
        found = transport.read_values(_CURRENT_VERSION, wanted.values())
        for variable, value_name in wanted.items():
            value = found.get(value_name)
            if value is not None and isinstance(value.data, str) and value.data:
                variables[variable] = value.data
    return variables
