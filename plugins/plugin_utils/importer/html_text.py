# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A saved support page (HTML) as the importer's text lines and tables.

Parsed with the standard library's ``html.parser`` (maintained with CPython, no dependency for the sanity
tests' import environment to guard): block elements end a line, ``<table>`` becomes a grid of cell texts, and
scripts, styles and navigation are left out. Tags are never matched with regular expressions.
"""

from __future__ import annotations

from html.parser import HTMLParser

from .model import Table

_BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                     "article", "header", "footer", "tr", "table", "pre", "dt", "dd", "title", "blockquote"})
_SKIPPED = frozenset({"script", "style", "noscript", "nav", "svg", "template", "button", "select"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "caption", "title"})


class _PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.tables: list[Table] = []
        self._text: list[str] = []
        self._skip = 0
        self._pre = 0
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._depth = 0  # nested tables: only the outermost is read as a grid, inner ones as text

    # -- text lines
    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text = []
        if text:
            self.lines.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
            return
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self._flush()
                self._rows = []
            return
        if self._rows is not None and self._depth == 1:
            if tag == "tr":
                self._rows.append([])
            elif tag in ("td", "th"):
                self._cell = []
            elif tag == "br" and self._cell is not None:
                self._cell.append(" ")
            return
        if tag == "pre":
            self._pre += 1
        if tag in _BLOCKS or tag in _HEADINGS:
            self._flush()
        if tag in _HEADINGS and tag.startswith("h"):
            # Headings keep their level the way Markdown writes it: the article's title is its "# " line.
            self._text.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
            return
        if tag == "table":
            self._depth = max(0, self._depth - 1)
            if self._depth == 0 and self._rows is not None:
                rows = [r for r in self._rows if any(c for c in r)]
                self.tables.append(Table(heading=self.lines[-1] if self.lines else "", rows=rows,
                                         line_index=len(self.lines)))
                self._rows = None
            return
        if self._rows is not None and self._depth == 1:
            if tag in ("td", "th") and self._cell is not None and self._rows:
                self._rows[-1].append(" ".join("".join(self._cell).split()))
                self._cell = None
            return
        if tag == "pre":
            self._flush_raw()
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCKS or tag in _HEADINGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._rows is None:
            if self._pre:
                # Preformatted text keeps its lines: Q-article tables were pasted into <pre> blocks.
                parts = data.split("\n")
                for index, part in enumerate(parts):
                    self._text.append(part)
                    if index < len(parts) - 1:
                        self._flush_raw()
            else:
                self._text.append(data)

    def _flush_raw(self) -> None:
        text = "".join(self._text).rstrip()
        self._text = []
        if text.strip():
            self.lines.append(text)


def read_html(text: str) -> tuple[list[str], list[Table]]:
    """The page's text lines (in reading order) and its tables (each with the line before it as heading)."""
    reader = _PageReader()
    reader.feed(text)
    reader.close()
    reader._flush()
    return reader.lines, reader.tables
