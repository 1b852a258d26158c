# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The columns of a KB file table and the shape of each column's values."""

from __future__ import annotations

import re

# Header text (case-folded, spaces removed) -> column kind. Longer names first: "fileversion" before "version".
COLUMN_NAMES: tuple[tuple[str, str], ...] = (
    ("filename", "name"), ("fileversion", "version"), ("filesize", "size"), ("sprequirement", "sp"),
    ("servicebranch", "branch"), ("platform", "platform"), ("version", "version"), ("size", "size"),
    ("date", "date"), ("time", "time"),
)

DATE = r"\d{1,2}-[A-Za-z]{3}-\d{4}|\d{1,2}/\d{1,2}/\d{2,4}"
TIME = r"\d{1,2}:\d{2}(?:\s?[aApP][mM]?)?"
VERSION = r"\d{1,5}\.\d{1,5}\.\d{1,5}\.\d{1,5}"
SIZE = r"\d{1,3}(?:,\d{3})+|\d+"
PLATFORM_WORDS = {"intel": "x86", "x86": "x86", "i386": "x86", "x64": "x64", "amd64": "x64", "ia-64": "ia64",
                  "ia64": "ia64", "itanium": "ia64", "alpha": "alpha", "mips": "mips", "ppc": "ppc",
                  "powerpc": "ppc", "not applicable": "none", "n/a": "none", "none": "none"}

_DATE_RE = re.compile(rf"^(?:{DATE})$")
_TIME_RE = re.compile(rf"^(?:{TIME})$")
_VERSION_RE = re.compile(rf"^(?:{VERSION})$")
_SIZE_RE = re.compile(rf"^(?:{SIZE})$")


def column_kind(header: str) -> str | None:
    key = "".join(header.casefold().split())
    for name, kind in COLUMN_NAMES:
        if key == name:
            return kind
    return None


def header_kinds(cells: list[str]) -> list[str | None] | None:
    """Kinds of a header row, or None when the row is not the header of a file table."""
    kinds = [column_kind(c) for c in cells]
    if "name" not in kinds or not ({"size", "version", "date"} & set(kinds)):
        return None
    return kinds


def split_glued_header(line: str) -> list[str] | None:
    """ "File nameFile versionFile sizeDateTimePlatform" (a browser copy without separators) -> its kinds."""
    rest = "".join(line.casefold().split())
    kinds: list[str] = []
    while rest:
        for name, kind in COLUMN_NAMES:
            if rest.startswith(name):
                kinds.append(kind)
                rest = rest[len(name):]
                break
        else:
            return None
    return kinds if "name" in kinds and len(kinds) >= 3 else None


def token_kind(token: str) -> str:
    if _DATE_RE.match(token):
        return "date"
    if _TIME_RE.match(token):
        return "time"
    if _VERSION_RE.match(token):
        return "version"
    if _SIZE_RE.match(token):
        return "size"
    if token.casefold() in PLATFORM_WORDS:
        return "platform"
    return "name"
