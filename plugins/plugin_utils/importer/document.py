# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognise an article's shape and reduce it to text lines and tables.

Four shapes, as users have articles: the support page saved as HTML; Markdown (Microsoft's support articles
today, pipe tables); the plain-text Q-article of the NT 4.0 era (fixed-width tables under ``Date Time Size File
name``); and text copied from a browser, where a table's cells may run together with no separator
("...manifestNot Applicable69815-Jun-200717:34Not Applicable"), a fixed-width table may be flattened onto one
line, or a pipe table's rows onto one line.
"""

from __future__ import annotations

import re

from .columns import DATE, PLATFORM_WORDS, SIZE, TIME, VERSION, header_kinds, split_glued_header, token_kind
from .html_text import read_html
from .model import Document, Shape, Table
from .windows import products_in

_BOILERPLATE = ("Collapse this tableExpand this table", "Collapse this table", "Expand this table")
_DASHES = re.compile(r"-{10,}")
_ROW_START = re.compile(rf"^(?:{DATE})$")


def detect_shape(text: str) -> Shape:
    head = text.lstrip()[:2000].casefold()
    folded = text.casefold()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head or ("<table" in folded and "</td>" in folded):
        return "html"
    underlined = re.search(r"^\s*=+\s*$", text, re.MULTILINE)
    if re.search(r"^\s*DOCUMENT:Q\d+", text, re.MULTILINE) or (
            "the information in this article applies to:" in folded and underlined):
        return "qarticle"
    pipe_table = re.search(r"^\|[^\n]*\|\s*$\n^\|\s*:?-{3,}", text, re.MULTILINE)
    if pipe_table or re.search(r"^#{1,6} \S", text, re.MULTILINE):
        return "markdown"
    return "browser_text"


def read_document(text: str) -> Document:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("&nbsp;", " ")
    shape = detect_shape(text)
    if shape == "html":
        lines, tables = read_html(text)
        # Preformatted (Q-article style) tables inside the page are read like the text shapes.
        more_lines, more_tables = _text_tables(lines)
        return Document(shape, more_lines, tables + more_tables)
    lines = text.split("\n")
    if shape == "qarticle":
        lines = [line.expandtabs(4)[4:] if line.startswith("\t") else line for line in lines]
    if shape == "markdown":
        lines = _strip_front_matter(lines)
    lines, tables = _text_tables(lines)
    if shape == "markdown":
        lines = [_plain_markdown(line) for line in lines]
    return Document(shape, lines, tables)


def _strip_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for index in range(1, min(len(lines), 80)):
            if lines[index].strip() == "---":
                # The title of the front matter stays as a line: it is the article's title.
                rest = lines[index + 1:]
                if any(line.startswith("# ") for line in rest):
                    return rest
                titles = [line.split(":", 1)[1].strip().strip("'\"") for line in lines[1:index]
                          if line.startswith("title:")]
                return [f"# {t}" for t in titles] + rest
    return lines


def _plain_markdown(line: str) -> str:
    for mark in ("**", "__", "`"):
        line = line.replace(mark, "")
    stripped = line.strip()
    if stripped.startswith(">"):
        stripped = stripped.lstrip("> ").strip()
    if stripped.startswith("_") and ":_" in stripped:  # "_Applies to:_ &nbsp; Windows 2000"
        stripped = stripped[1:].replace(":_", ":", 1)
    return stripped if stripped != line.strip() else line


def clean_heading(text: str) -> str:
    for phrase in _BOILERPLATE:
        text = text.replace(phrase, " ")
    # Browser copies glue a heading to the next one: "...Windows Server 2008 R2Additional files for ...".
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", " ", text)
    return " ".join(text.lstrip("#").split())


# ------------------------------------------------------------------------------------------ text tables


def _text_tables(lines: list[str]) -> tuple[list[str], list[Table]]:
    """Find the file tables of text lines; returns the lines with the tables' rows left out, and the tables."""
    out: list[str] = []
    tables: list[Table] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        consumed = (_pipe_table(lines, index, out, tables) or _glued_table(lines, index, out, tables)
                    or _fixed_table(lines, index, out, tables))
        if consumed:
            index += consumed
            continue
        out.append(line)
        index += 1
    return out, tables


def _heading_before(out: list[str], prefix: str = "") -> str:
    prefix = clean_heading(prefix)
    if prefix:
        return prefix
    # A Q-article names the Windows version of the tables below it in an underlined heading ("Windows NT 4.0"
    # over "--------------"); the underline is as long as the heading.
    recent = out[-80:]
    for position in range(len(recent) - 1, 0, -1):
        text, under = recent[position - 1].strip(), recent[position].strip()
        if text and under and set(under) == {"-"} and abs(len(under) - len(text)) <= 2:
            return text
        if under and set(under) == {"="}:
            break
    # Otherwise a line just above that names a Windows version ("Windows Vista, 32-bit versions"); a table
    # without one gets no heading (the importer then says what it assumed).
    for line in reversed(out[-8:]):
        text = clean_heading(line)
        if text and len(text) < 200 and products_in(text):
            return text
    return ""


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _pipe_table(lines: list[str], index: int, out: list[str], tables: list[Table]) -> int:
    line = lines[index]
    if "|" not in line or index + 1 >= len(lines):
        return 0
    prefix, rest = line.split("|", 1)
    header = _cells("|" + rest)
    if header_kinds(header) is None or not re.match(r"^\s*\|?\s*:?-{3,}", lines[index + 1]):
        return 0
    if prefix.strip():
        out.append(prefix)
    heading = _heading_before(out, prefix)
    rows = [header]
    consumed = 2
    separator_cells = _cells(lines[index + 1])
    if len(separator_cells) == 1 and index + 2 < len(lines) and lines[index + 2].lstrip().startswith("|") \
            and len(header) > 1 and lines[index + 2].count("|") > len(header) + 2:
        # A pipe table whose rows were flattened onto one line: "| a | b | | c | d |" (an empty cell between rows).
        groups: list[list[str]] = [[]]
        for cell in _cells(lines[index + 2]):
            if cell:
                groups[-1].append(cell)
            elif groups[-1]:
                groups.append([])
        rows.extend(g for g in groups if g)
        consumed = 3
    else:
        while index + consumed < len(lines) and lines[index + consumed].lstrip().startswith("|"):
            cells = _cells(lines[index + consumed])
            if any(cells):
                rows.append(cells)
            consumed += 1
    tables.append(Table(heading=heading, rows=rows, line_index=len(out)))
    return consumed


def _glued_table(lines: list[str], index: int, out: list[str], tables: list[Table]) -> int:
    line = lines[index].strip()
    if "  " in line or "|" in line or (index + 1 < len(lines) and _DASHES.search(lines[index + 1])):
        return 0
    kinds = split_glued_header(line)
    if kinds is None:
        return 0
    pattern = _glued_row_pattern(kinds)
    rows = [kinds]
    consumed = 1
    while index + consumed < len(lines):
        text = lines[index + consumed].strip()
        if not text or not re.search(DATE, text):
            break
        match = pattern.match(text)
        if match is None or _ambiguous(match, kinds):
            rows.append([text])  # reported as a row whose cells cannot be told apart
        else:
            rows.append([match[k] or "" for k in kinds])
        consumed += 1
    header = ["File name" if k == "name" else k for k in kinds]
    tables.append(Table(heading=_heading_before(out), rows=[header, *rows[1:]], line_index=len(out)))
    return consumed


def _ambiguous(match: re.Match[str], kinds: list[str]) -> bool:
    """Whether a run-together version and size split another way too ("6.0.6001.2212345,056": 22123 and
    45,056, or 2212 and 345,056): then the row is not guessed at."""
    if "version" not in kinds or "size" not in kinds or kinds.index("size") != kinds.index("version") + 1:
        return False
    version, size = match["version"], match["size"]
    if not version or not version[0].isdigit() or not size:
        return False
    revision = version.rsplit(".", 1)[1]
    digits = revision + size
    readings = 0
    for cut in range(1, min(len(digits), 6)):
        rev, rest = digits[:cut], digits[cut:]
        size_like = re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d+", rest) and not rest.startswith((",", "0"))
        if int(rev) <= 0xFFFF and (rev == "0" or not rev.startswith("0")) and size_like \
                and ("," in rest) == ("," in size):
            readings += 1
    return readings > 1


def _glued_row_pattern(kinds: list[str]) -> re.Pattern[str]:
    platforms = "|".join(sorted((re.escape(w) for w in PLATFORM_WORDS), key=len, reverse=True))
    parts = {
        "name": r"(?P<name>.+?)\s*",
        # A version, or "Not Applicable" (browsers sometimes lose "Not", leaving "Applicable").
        "version": rf"(?P<version>{VERSION}|(?:Not\s*)?Applicable)\s*",
        "size": rf"(?P<size>{SIZE})\s*",
        # Two-digit days: "69815-Jun-2007" is 698 bytes on the 15th, not 6981 on the 5th.
        "date": r"(?P<date>\d{2}-[A-Za-z]{3}-\d{4}|\d{2}/\d{2}/\d{4})\s*",
        "time": rf"(?P<time>{TIME})\s*",
        "platform": rf"(?P<platform>{platforms})\s*",
        "sp": r"(?P<sp>SP\d|Not\s*Applicable|RTM)?\s*",
        "branch": r"(?P<branch>GDR|LDR|QFE|WOW|Not\s*Applicable)?\s*",
    }
    return re.compile("^" + "".join(parts[k] for k in kinds) + "$", re.IGNORECASE)


def _fixed_table(lines: list[str], index: int, out: list[str], tables: list[Table]) -> int:
    line = lines[index]
    found = _DASHES.search(line)
    before, dashes, after = line.partition(found[0]) if found else (line, "", "")
    header_words = re.split(r"\s{2,}", before.strip())
    kinds = header_kinds(header_words)
    if kinds is None:
        return 0
    consumed = 1
    row_text = after
    if not dashes:
        if index + 1 < len(lines) and _DASHES.fullmatch(lines[index + 1].strip()):
            consumed = 2
        else:
            return 0
    tokens = row_text.split()
    if not tokens:
        # Rows run until a blank line; a flattened table has them all on the header's line instead.
        while index + consumed < len(lines) and not lines[index + consumed].strip() and not tokens:
            consumed += 1
        while index + consumed < len(lines) and lines[index + consumed].strip():
            tokens.extend(lines[index + consumed].replace("<BR/>", " ").split())
            consumed += 1
    rows: list[list[str]] = [header_words]
    for group in _split_rows(tokens):
        rows.append(_assign(group, [k or "" for k in kinds]))
    tables.append(Table(heading=_heading_before(out), rows=rows, line_index=len(out)))
    return consumed


def _split_rows(tokens: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    for token in tokens:
        token = token.replace("<BR/>", "")
        if not token:
            continue
        if _ROW_START.match(token) or not groups:
            groups.append([])
        groups[-1].append(token)
    return groups


def _assign(tokens: list[str], kinds: list[str]) -> list[str]:
    """Tokens of one fixed-width row -> cells in the header's order, by what each token looks like."""
    cells = dict.fromkeys(kinds, "")
    names: list[str] = []
    for position, token in enumerate(tokens):
        kind = token_kind(token)
        if kind == "time" and position + 1 < len(tokens) and tokens[position + 1].casefold() in ("am", "pm"):
            token = token + tokens[position + 1]
        if token.casefold() in ("am", "pm"):
            continue
        if kind == "name" or cells.get(kind, None) != "" or kind not in cells:
            names.append(token)
        else:
            cells[kind] = token
    if "name" in cells:
        cells["name"] = " ".join(names)
    return [cells[k] for k in kinds]
