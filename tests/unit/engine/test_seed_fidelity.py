# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seed specs say what the articles say: every version and size in a spec occurs in its article's text,
and every file table of the article, parsed from the text, matches the spec's rows of that table field by
field and row by row (so a typo or a dropped row fails here)."""

from __future__ import annotations

import datetime
import re
from typing import Any, NamedTuple

import pytest
from engine_helpers import ARTICLES, SEEDS, seed_spec

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec

SEED_FILES = {article: f"{article.lower()}.txt" for article in ("KB828753", "KB253729", "KB977381", "KB938475")}

# KB977381's tables in the order the article prints them (its headings were lost with the page layout:
# four unnamed tables follow "For all supported x86-based versions of Windows Server 2008", and so on).
KB977381_TABLES = (
    "2003r2-x86", "2003r2-x64", "2003r2-ia64",
    "2008-x86-mui-sp1", "2008-x86-mui-sp2", "2008-x86-sp1", "2008-x86-sp2",
    "2008-x64-mui-sp1", "2008-x64-mui-sp2", "2008-x64-sp1", "2008-x64-sp2",
    "2008r2-x64", "2008-x86-additional", "2008-x64-additional", "2008r2-x64-additional",
)
PLATFORMS = {"x86": "x86", "x64": "x64", "IA-64": "ia64", "Not Applicable": "none", "Intel": "x86"}


class Row(NamedTuple):
    name: str
    version: str | None
    size: int
    date: datetime.date
    time: str
    platform: str | None = None  # as the spec spells it; None where the article has no platform column
    wow: bool | None = None
    service_pack: int | None = None


def seed_text(article: str) -> str:
    (path,) = SEEDS.glob(SEED_FILES[article])
    text: str = path.read_text(encoding="utf-8")
    return text


def _size(text: str) -> int:
    return int(text.replace(",", ""))


def _date(text: str, fmt: str) -> datetime.date:
    return datetime.datetime.strptime(text, fmt).date()


def parse_kb828753(text: str) -> dict[str, list[Row]]:
    pattern = r"(\d{2}-[A-Z][a-z]{2}-\d{4})\s+(\d{2}:\d{2})\s+(\d+\.\d+\.\d+\.\d+)\s+([\d,]+)\s+(\S+)"
    return {"xp-x86": [Row(name, version, _size(size), _date(date, "%d-%b-%Y"), time)
                       for date, time, version, size, name in re.findall(pattern, text)]}


def parse_kb253729(text: str) -> dict[str, list[Row]]:
    pattern = r"(\d{2}/\d{2}/\d{4})\s+(\d{2}:\d{2})\s+([\d,]+)\s+(\S+)\s+(Intel)"
    return {"nt4-tse-x86": [Row(name, None, _size(size), _date(date, "%m/%d/%Y"), time, PLATFORMS[platform])
                            for date, time, size, name, platform in re.findall(pattern, text)]}


def parse_kb977381(text: str) -> dict[str, list[Row]]:
    tables = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != "|---|":
            continue
        cells = [cell.strip() for cell in lines[index + 1].strip().strip("|").split("|")]
        rows, current = [], []
        for cell in [*cells, ""]:
            if cell:
                current.append(cell)
            elif current:
                rows.append(current)
                current = []
        if rows and "." in rows[0][0]:  # skips the SR_Level table, whose rows are not files
            tables.append([_kb977381_row(row) for row in rows])
    assert len(tables) == len(KB977381_TABLES), "the article's table layout changed"
    return dict(zip(KB977381_TABLES, tables, strict=True))


def _kb977381_row(cells: list[str]) -> Row:
    name, version, size, date, time, platform, *rest = cells
    sp_cells = [c for c in rest if re.fullmatch(r"SP\d", c)]
    branch = [c for c in rest if not re.fullmatch(r"SP\d", c)]
    return Row(name, None if version == "Not Applicable" else version, _size(size), _date(date, "%d-%b-%Y"), time,
               PLATFORMS[platform], wow=(branch == ["WOW"]) if branch else None,
               service_pack=int(sp_cells[0][2:]) if sp_cells else None)


def parse_kb938475(text: str) -> dict[str, list[Row]]:
    # The scrape glued the columns together: name, "Not Applicable" (version), size, date, time, platform.
    pattern = re.compile(r"^(?P<name>.+?)\s*(?:Not )?Applicable(?P<size>\d{1,3}(?:,\d{3})*)"
                         r"(?P<date>\d{2}-[A-Z][a-z]{2}-\d{4})(?P<time>\d{2}:\d{2})(?P<platform>Not Applicable)$")
    tables: dict[str, list[Row]] = {}
    current: list[Row] | None = None
    for line in text.splitlines():
        if line.startswith("Windows Vista, "):
            current = tables.setdefault("vista-x64" if "64-bit" in line else "vista-x86", [])
            continue
        match = pattern.match(line.strip())
        if match and current is not None:
            current.append(Row(match["name"], None, _size(match["size"]), _date(match["date"], "%d-%b-%Y"),
                               match["time"], PLATFORMS[match["platform"]]))
    return tables


PARSERS = {"KB828753": parse_kb828753, "KB253729": parse_kb253729, "KB977381": parse_kb977381,
           "KB938475": parse_kb938475}


def spec_tables(spec: ArticleSpec) -> dict[str, list[Row]]:
    """The spec's rows in the shape of the parsed article."""
    tables: dict[str, list[Row]] = {}
    for row in spec.files:
        if row.inferred_from is not None:
            continue  # (I) rows are not the article's: test_inferred_rows_rest_on_the_articles_manifests
        tables.setdefault(row.table, []).append(Row(
            row.name, str(row.version) if row.version else None, row.size or -1, row.date or datetime.date.min,
            row.time.strftime("%H:%M") if row.time else "", row.platform, row.wow,
            row.service_packs[0] if row.service_packs and len(row.service_packs) == 1 else None,
        ))
    return tables


def _only_the_articles_columns(spec_row: Row, seed_row: Row) -> Row:
    # Columns a table does not have (platform in KB828753, service branch and SP outside 2003 R2) are None
    # in the parsed row; the spec fills them from docs/sources.md or inference, checked elsewhere.
    masked: dict[str, Any] = {f: None for f in ("platform", "wow", "service_pack") if getattr(seed_row, f) is None}
    return spec_row._replace(**masked)


@pytest.mark.parametrize("article", ARTICLES)
def test_every_version_and_size_occurs_in_the_article(article: str) -> None:
    text = seed_text(article)
    for row in seed_spec(article).files:
        if row.version is not None:
            assert str(row.version) in text, f"{row.table} {row.name}: version {row.version} is not in the article"
        if row.size is not None:
            assert f"{row.size:,}" in text, f"{row.table} {row.name}: size {row.size:,} is not in the article"


@pytest.mark.parametrize("article", ARTICLES)
def test_every_table_matches_the_article_row_by_row(article: str) -> None:
    seed = PARSERS[article](seed_text(article))
    assert sum(len(rows) for rows in seed.values()) > 0
    spec = spec_tables(seed_spec(article))
    assert sorted(spec) == sorted(seed), "the spec's tables are not the article's tables"
    for table, rows in seed.items():
        if article == "KB977381" and table.startswith("2003r2"):
            # 2003 R2 tables have an SP column; the 2008 ones do not (their SP is in the version).
            assert all(r.service_pack == 2 for r in rows)
        assert len(spec[table]) == len(rows), f"{table}: {len(spec[table])} rows in the spec, {len(rows)} in the seed"
        for spec_row, seed_row in zip(spec[table], rows, strict=True):
            assert _only_the_articles_columns(spec_row, seed_row) == seed_row, table


def test_row_counts_per_article() -> None:
    # A second, independent guard: the number of file rows each article lists, and the inferred rows added.
    assert {a: len([r for r in seed_spec(a).files if r.inferred_from is None]) for a in ARTICLES} == {
        "KB828753": 3, "KB253729": 1, "KB977381": 53, "KB938475": 14}
    assert {a: len([r for r in seed_spec(a).files if r.inferred_from]) for a in ARTICLES} == {
        "KB828753": 0, "KB253729": 0, "KB977381": 0, "KB938475": 4}


def test_inferred_rows_rest_on_the_articles_manifests() -> None:
    # Each (I) binary row names a component whose manifest the article prints, at the row's version, for
    # the same architecture ("X86_microsoft-windows-smbminirdr_31bf3856ad364e35_6.0.6000.20620_none_...").
    text = seed_text("KB938475")
    tables = parse_kb938475(text)
    inferred = [r for r in seed_spec("KB938475").files if r.inferred_from]
    assert {(r.name, r.architectures) for r in inferred} == {
        (name, (arch,)) for arch in ("x86", "x64")
        for name in ("srv2.sys", "mrxsmb.sys")}
    for row in inferred:
        (arch,) = row.architectures
        prefix = {"x86": "X86", "x64": "Amd64"}[arch]
        names = [r.name for r in tables[f"vista-{arch}"]]
        wanted = f"{prefix}_{row.inferred_from}_31bf3856ad364e35_{row.version}_"
        assert any(name.startswith(wanted) for name in names), f"{row.name}: no {wanted}... in the article"
        assert row.note.startswith("(I)") and row.branch == "ldr" and row.version.branch() == "ldr"
    # The manifests themselves stay in the tables, as info rows: reported, never deciding.
    assert all(r.check == "info" for r in seed_spec("KB938475").files if r.inferred_from is None)


def test_parsers_see_every_table_row() -> None:
    # The parsers themselves are checked against counts read off the article by hand.
    assert [len(r) for r in parse_kb977381(seed_text("KB977381")).values()] == [
        2, 3, 3, 2, 2, 3, 3, 2, 2, 3, 3, 3, 10, 10, 2]
    assert {t: len(r) for t, r in parse_kb938475(seed_text("KB938475")).items()} == {"vista-x86": 7, "vista-x64": 7}
    assert len(parse_kb828753(seed_text("KB828753"))["xp-x86"]) == 3
    assert len(parse_kb253729(seed_text("KB253729"))["nt4-tse-x86"]) == 1


def test_hotfix_ids_occur_in_the_article() -> None:
    for article in ARTICLES:
        text = seed_text(article)
        for hotfix_id in seed_spec(article).hotfix_ids:
            assert hotfix_id in text or hotfix_id.replace("KB", "") in text
