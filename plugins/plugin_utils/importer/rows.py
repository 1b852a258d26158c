# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rows of an article's file tables, cell by cell, with every row that cannot be read reported."""

from __future__ import annotations

import datetime

from .columns import PLATFORM_WORDS, header_kinds, token_kind
from .document import clean_heading
from .model import FileEntry, Findings, Table

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def file_tables(tables: list[Table], findings: Findings) -> list[tuple[Table, list[FileEntry]]]:
    """The file tables (those with a File name column) and their rows; other tables are noted."""
    found: list[tuple[Table, list[FileEntry]]] = []
    for number, table in enumerate(tables, 1):
        if not table.rows:
            continue
        kinds = header_kinds(table.rows[0])
        if kinds is None:
            findings.notes.append(f"table {number} ({' | '.join(table.rows[0])[:80]}) is not a file table: "
                                  "not read")
            continue
        label = f"table {number}"
        entries = []
        for cells in table.rows[1:]:
            if not any(cells) or all(set(c) <= set("-: ") for c in cells):
                continue
            entry = _entry(label, table.heading, kinds, cells, findings)
            if entry is not None:
                entries.append(entry)
        found.append((table, entries))
    return found


def _entry(label: str, heading: str, kinds: list[str | None], cells: list[str],
           findings: Findings) -> FileEntry | None:
    source = " | ".join(cells)
    where = f"{label} ({clean_heading(heading)[:60] or 'no heading'})"
    if len(cells) == 1 and len(kinds) > 2:
        findings.unplace("file row", source, f"{where}: the cells run together and cannot be told apart "
                                             "(a version and a size can be split more than one way)")
        return None
    if len(cells) != len(kinds):
        findings.unplace("file row", source, f"{where}: {len(cells)} cells where the header has {len(kinds)}")
        return None
    values = {kind: cell.strip() for kind, cell in zip(kinds, cells, strict=True) if kind}
    name = values.get("name", "")
    if not name or (" " in name.strip() and token_kind(name.split()[0]) != "name"):
        findings.unplace("file row", source, f"{where}: no file name")
        return None
    try:
        version = _version(values.get("version"))
        size = _size(values.get("size"))
        date = _date(values.get("date"))
        time = _time(values.get("time"))
        platform = _platform(values.get("platform"))
        service_pack = _service_pack(values.get("sp"))
    except ValueError as exc:
        findings.unplace("file row", source, f"{where}: {exc}")
        return None
    branch = values.get("branch") or None
    return FileEntry(table=label, heading=heading, name=name, version=version, size=size, date=date, time=time,
                     platform=platform, service_pack=service_pack,
                     service_branch=None if branch is None or _not_applicable(branch) else branch.upper(),
                     source=source)


def _not_applicable(text: str) -> bool:
    return "".join(text.casefold().split()) in ("notapplicable", "applicable", "n/a", "")


def _version(text: str | None) -> str | None:
    if text is None or _not_applicable(text):
        return None
    if token_kind(text) != "version":
        raise ValueError(f"version {text!r} is not four numbers")
    return text


def _size(text: str | None) -> int | None:
    if text is None or _not_applicable(text):
        return None
    digits = text.replace(",", "")
    if not digits.isdigit():
        raise ValueError(f"size {text!r} is not a number")
    return int(digits)


def _date(text: str | None) -> datetime.date | None:
    if text is None or _not_applicable(text):
        return None
    if "-" in text:
        day, month, year = text.split("-")
        if month.casefold() not in _MONTHS:
            raise ValueError(f"date {text!r}: unknown month")
        return datetime.date(int(year), _MONTHS.index(month.casefold()) + 1, int(day))
    if "/" in text:
        month_n, day, year = text.split("/")
        full_year = int(year) + (1900 if len(year) == 2 and int(year) > 50 else 2000 if len(year) == 2 else 0)
        return datetime.date(full_year, int(month_n), int(day))
    raise ValueError(f"date {text!r} is not a date")


def _time(text: str | None) -> str | None:
    if text is None or _not_applicable(text):
        return None
    clean = text.replace(" ", "").casefold()
    suffix = clean[-1] if clean[-1] in "ap" else (clean[-2] if clean.endswith("m") and clean[-2] in "ap" else "")
    digits = clean.rstrip("apm")
    hours, minutes = (int(p) for p in digits.split(":"))
    if suffix == "p" and hours < 12:
        hours += 12
    if suffix == "a" and hours == 12:
        hours = 0
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"time {text!r} is not a time of day")
    return f"{hours:02d}:{minutes:02d}"


def _platform(text: str | None) -> str | None:
    if text is None:
        return None
    key = " ".join(text.casefold().split())
    if key in ("", "applicable"):
        return "none" if key else None
    if key not in PLATFORM_WORDS:
        raise ValueError(f"platform {text!r} is not one the format knows")
    return PLATFORM_WORDS[key]


def _service_pack(text: str | None) -> int | None:
    if text is None or _not_applicable(text):
        return None
    key = text.strip().upper()
    if key == "RTM":
        return 0
    if key.startswith("SP") and key[2:].isdigit():
        return int(key[2:])
    raise ValueError(f"SP requirement {text!r} is not SPn")
