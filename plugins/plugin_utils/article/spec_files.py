# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a spec's file table (``files``): one row per file, OS entry, architectures, service packs and
branch, with the checks that keep two rows from judging one file on one host differently."""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import cast

from ..errors import SpecError
from .spec_model import (
    FILE_CHECKS,
    PLATFORMS,
    ROW_BRANCHES,
    SIZE_DATE_CHECKS,
    VERSION_CHECKS,
    FileCheck,
    FileRow,
    Platform,
)
from .spec_reader import SYSTEM_ROOT_PREFIX, FieldReader, SpecContext, reader_list
from .versions import Branch, WinVersion

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def read_files(top: FieldReader, ctx: SpecContext) -> tuple[tuple[FileRow, ...], tuple[str, ...]]:
    """The file rows, and a warning for each row the article printed twice (kept once)."""
    rows = [_file_row(reader, ctx) for reader in reader_list(top, "files", "files")]
    _check_inferred_rows(top, rows)
    kept, warnings = _drop_repeated_rows(rows)
    _check_file_rows(top, kept)
    return tuple(row for _index, row in kept), warnings


def _drop_repeated_rows(rows: list[FileRow]) -> tuple[list[tuple[int, FileRow]], tuple[str, ...]]:
    # Articles sometimes print a row twice (a copy-paste slip in the table): the same data twice says nothing
    # new, so it loads with a warning. Which table printed it does not matter here.
    first: dict[FileRow, int] = {}
    kept: list[tuple[int, FileRow]] = []
    warnings = []
    for index, row in enumerate(rows):
        key = dataclasses.replace(row, table="")
        if key in first:
            warnings.append(f"files[{index}] repeats files[{first[key]}] ({row.name}, {row.os}): kept once")
            continue
        first[key] = index
        kept.append((index, row))
    return kept, tuple(warnings)


def _file_row(reader: FieldReader, ctx: SpecContext) -> FileRow:
    entry = ctx.entry(reader, "os")
    check = cast(FileCheck, reader.choice("check", FILE_CHECKS))
    directory = reader.text("dir", required=check != "info")
    if directory is not None and not (directory.casefold() + "\\").startswith(SYSTEM_ROOT_PREFIX):
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
    by_version = check in VERSION_CHECKS
    by_size_date = check in SIZE_DATE_CHECKS
    version = reader.version("version", required=by_version)
    # Every kind of row may name its service branch, so an article's GDR and QFE rows of one file coexist;
    # the rows that compare versions need it (and the branch's floor) to place the host's build.
    branch = cast(Branch | None, reader.choice("branch", ROW_BRANCHES, required=by_version) or None)
    floor = reader.version("branch_floor", required=by_version) if by_version else None
    if not by_version and reader.has("branch_floor"):
        raise reader.error("branch_floor", f"only {' and '.join(VERSION_CHECKS)} rows have branch_floor")
    size = reader.integer("size", required=by_size_date, minimum=0)
    date = _date(reader, required=by_size_date)
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


def _inferred_from(reader: FieldReader, check: str) -> str | None:
    component = reader.text("inferred_from", required=False)
    if component is None:
        return None
    if check != "version":
        raise reader.error("inferred_from", "only version rows are inferred from a component manifest")
    if not reader.has("note"):
        raise reader.error("note", "an inferred row needs a note saying why the component owns the file")
    return component.casefold()


def _date(reader: FieldReader, required: bool) -> datetime.date | None:
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


def _check_branch_range(reader: FieldReader, version: WinVersion, floor: WinVersion, branch: str) -> None:
    if floor.build_line != version.build_line:
        raise reader.error("branch_floor", f"{floor} is not on the build line of {version}")
    if floor > version:
        raise reader.error("branch_floor", f"{floor} is above the fixed version {version}")
    # On NT 6.x the revision names the branch, so a row that says LDR but gives a GDR number is a typo.
    if version.major == 6:
        for key, value in (("version", version), ("branch_floor", floor)):
            if value.branch() != branch:
                raise reader.error(key, f"{value} is on the {value.branch()} branch, the row says {branch}")


def _check_inferred_rows(top: FieldReader, rows: list[FileRow]) -> None:
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


def _check_kind(row: FileRow) -> str:
    # A version row and a version-and-size/date row of one file judge alike (by version first), so an
    # article's GDR row may need size and date while its QFE row does not.
    return "version" if row.check in VERSION_CHECKS else row.check


def _check_file_rows(top: FieldReader, rows: list[tuple[int, FileRow]]) -> None:
    kinds: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str, str, int | None, str | None], int] = {}
    for index, row in rows:
        if row.path is None:
            continue
        path_id = (row.os, row.path.casefold())
        if kinds.setdefault(path_id, _check_kind(row)) != _check_kind(row):
            raise SpecError(top.source, f"files[{index}].check",
                            f"{row.path} is a {kinds[path_id]} row elsewhere; one path, one kind of check")
        for arch in row.architectures:
            for sp in row.service_packs or (None,):
                key = (row.os, row.path.casefold(), arch, sp, row.branch)
                if key in seen:
                    where = f"{row.os} {arch}" + (f" SP{sp}" if sp is not None else "")
                    raise SpecError(top.source, f"files[{index}]",
                                    f"a second row for {row.path} on {where}"
                                    + (f" ({row.branch})" if row.branch else "")
                                    + f", different from files[{seen[key]}]")
                seen[key] = index
