# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the importer reads out of an article, before it becomes a spec."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Literal

Shape = Literal["html", "markdown", "qarticle", "browser_text"]
SHAPES: tuple[str, ...] = ("html", "markdown", "qarticle", "browser_text")


@dataclass
class Table:
    """One table of the article: cell texts per row (the first row may be the header), the text before it."""

    heading: str
    rows: list[list[str]]
    line_index: int = 0  # where it stands among the document's lines (headings above it come first)


@dataclass
class Document:
    """An article reduced to text lines and tables, whatever shape it came in."""

    shape: Shape
    lines: list[str]
    tables: list[Table]


@dataclass
class FileEntry:
    """One row of a file table, as the article prints it (``None``: the column is absent or empty)."""

    table: str
    heading: str
    name: str
    version: str | None
    size: int | None
    date: datetime.date | None
    time: str | None
    platform: str | None  # the spec's spelling: x86, x64, ia64, alpha, mips, ppc, none
    service_pack: int | None  # the "SP requirement" column
    service_branch: str | None  # the "Service branch" column: GDR, LDR, QFE, WOW, Not Applicable
    source: str  # the row's text as read, for the report


@dataclass
class Unplaced:
    """Something of the article the importer read but could not put into the spec."""

    what: str  # "file row", "registry", "applies to", ...
    text: str
    reason: str


@dataclass
class Inferred:
    """A value the article does not state, which the importer inferred (written ``(I)`` in the spec)."""

    field: str
    value: str
    reason: str


@dataclass
class Findings:
    """The importer's running account: the spec's review list and the report's lists."""

    unplaced: list[Unplaced] = field(default_factory=list)
    inferred: list[Inferred] = field(default_factory=list)
    review: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def unplace(self, what: str, text: str, reason: str) -> None:
        self.unplaced.append(Unplaced(what, " ".join(text.split())[:300], reason))

    def infer(self, path: str, value: object, reason: str) -> None:
        self.inferred.append(Inferred(path, str(value), reason))

    def to_review(self, path: str, reason: str) -> None:
        self.review.append({"field": path, "reason": reason})
