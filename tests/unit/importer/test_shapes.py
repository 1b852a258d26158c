# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One invented article per input shape (fixtures/): what the importer reads from each, what it places where,
and what it reports instead of dropping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArticleImportError
from ansible_collections.kbfix.windows.plugins.plugin_utils.importer.build import ImportResult, import_article
from ansible_collections.kbfix.windows.plugins.plugin_utils.importer.document import detect_shape

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def imported(name: str) -> ImportResult:
    return import_article((FIXTURES / name).read_text(encoding="utf-8"), name)


def rows(result: ImportResult, **match: Any) -> list[dict[str, Any]]:
    return [r for r in result.data["files"] if all(r.get(k) == v for k, v in match.items())]


def unplaced(result: ImportResult, what: str) -> list[dict[str, str]]:
    return [u for u in result.report["unplaced"] if u["what"] == what]


@pytest.mark.parametrize(("name", "shape"), [("kb7100001.html", "html"), ("kb7100002.txt", "browser_text"),
                                             ("kb7100003.txt", "qarticle"), ("kb7100004.md", "markdown")])
def test_the_shape_is_detected(name: str, shape: str) -> None:
    assert detect_shape((FIXTURES / name).read_text(encoding="utf-8")) == shape
    assert imported(name).report["shape"] == shape


def test_html_page() -> None:
    result = imported("kb7100001.html")
    spec = result.data
    assert spec["article"]["id"] == "KB7100001" and spec["article"]["supersedes"] == ["KB7100000"]
    assert spec["article"]["title"].startswith("The Contoso filter driver leaks nonpaged pool")
    assert {e["id"]: (e["architectures"], e.get("service_packs")) for e in spec["applicability"]} == {
        "xp": (["x86"], [3]), "ws2003": (["x64"], [2])}
    # The GDR and the QFE row of one file coexist, each with its branch (the service branch column).
    xp = rows(result, os="xp", name="Cfilter.sys")
    assert [(r["version"], r["branch"], r["branch_floor"]) for r in xp] == [
        ("5.1.2600.5934", "gdr", "5.1.2600.5512"), ("5.1.2600.6021", "ldr", "5.1.2600.5512")]
    # One version printed for two builds of different sizes: checked by version and size/date together.
    same = rows(result, os="ws2003", name="Cfilter.sys")
    assert {r["check"] for r in same} == {"version_size_date"} and {r["size"] for r in same} == {61440, 62976}
    wow = rows(result, name="Wcfilter.dll")[0]
    assert (wow["dir"], wow["installed_as"], wow["wow"], wow["platform"]) == (
        "%SystemRoot%\\SysWOW64", "Cfilter.dll", True, "x86")
    catalog = rows(result, name="Cfilter.cat")[0]
    assert catalog["check"] == "info" and "dir" not in catalog
    # A row whose version is not four numbers is reported, not dropped.
    (bad,) = unplaced(result, "file row")
    assert "Cfilter.inf" in bad["text"] and "not four numbers" in bad["reason"]
    # Applies to names Vista, for which the article has no file table.
    assert [u["text"] for u in unplaced(result, "applies to")] == ["Windows Vista"]
    # Registry: a range the administrator chooses becomes a declared variable; a literal stays a value.
    settings = {s["name"]: s for s in spec["registry"]}
    assert settings["PoolLimitPages"]["value_from"] == "pool_limit_pages"
    assert settings["PoolLimitPages"]["range"] == [16, 4096]
    assert spec["variables"]["pool_limit_pages"] == {**spec["variables"]["pool_limit_pages"], "type": "int",
                                                     "required": True, "min": 16, "max": 4096}
    assert settings["EnableTrim"]["value"] == 1
    assert settings["EnableTrim"]["key"] == "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Cfilter\\Parameters"
    assert all(p["restart"] for p in spec["packages"])  # "You must restart the computer"
    # The page's script (a "<td>" in a string) and navigation are not read as text or tables.
    assert len(result.report["tables"]) == 2


def test_browser_text_with_cells_run_together() -> None:
    result = imported("kb7100002.txt")
    spec = result.data
    # One heading, two Windows versions: every row is placed for each.
    assert {e["id"] for e in spec["applicability"]} == {"vista", "ws2008"}
    sys_rows = rows(result, name="Cvolflt.sys")
    assert {(r["os"], r["architectures"][0], r["size"]) for r in sys_rows} == {
        ("vista", "x86", 123904), ("ws2008", "x86", 123904), ("vista", "x64", 156672), ("ws2008", "x64", 156672)}
    assert all(r["version"] == "6.0.6002.22345" and r["branch"] == "ldr" and r["service_packs"] == [2]
               for r in sys_rows)
    manifest = rows(result, os="vista", platform="none", architectures=["x86"])[0]
    assert manifest["size"] == 2114 and manifest["check"] == "info" and manifest["time"] == "10:02"
    # "6.0.6002.1812345,056" is 18123 / 45,056 or 1812 / 345,056: reported, not guessed.
    (ambiguous,) = unplaced(result, "file row")
    assert "Cvolflt.dll" in ambiguous["text"] and "cannot be told apart" in ambiguous["reason"]
    assert not any(p["restart"] for p in spec["packages"])  # "You do not have to restart"
    # The article names the x64 package; the x86 one is left for review.
    assert {(p["architectures"][0], p["file"]) for p in spec["packages"]} == {
        ("x86", "REVIEW-Windows6.0-KB7100002-x86.msu"), ("x64", "Windows6.0-KB7100002-x64.msu")}
    assert {r["field"] for r in result.report["review"]} == {"article.title", "packages[0].file", "packages[2].file"}


def test_q_article() -> None:
    result = imported("kb7100003.txt")
    spec = result.data
    assert spec["hotfix"]["ids"] == ["Q7100003"]
    entries = {e["id"]: e for e in spec["applicability"]}
    assert entries["nt4"]["product_types"] == [1, 2, 3] and entries["nt4"]["architectures"] == ["x86", "alpha"]
    # No service pack is guessed from a Windows 2000 build number; "first corrected in SP2" is the article's.
    assert "service_packs" not in entries["win2000"] and entries["win2000"]["fixed_in_service_pack"] == 2
    nt4 = rows(result, os="nt4", name="Cred.sys")
    assert [(r["architectures"], r["check"], r["size"], r["time"], r["platform"]) for r in nt4] == [
        (["x86"], "size_date", 98064, "11:02", "x86"), (["alpha"], "size_date", 167696, "11:05", "alpha")]
    win2000 = rows(result, os="win2000", name="Cred.sys")
    assert len(win2000) == 2 and win2000[0]["time"] == "16:12" and win2000[0]["version"] == "5.0.2195.2790"
    # The article prints the Windows 2000 row twice: a warning of the loader, in the report.
    assert any("Cred.sys" in w for w in result.report["warnings"])
    (no_size,) = unplaced(result, "file row")
    assert "Credhlp.dll" in no_size["text"]
    assert {p["file"] for p in spec["packages"]} == {"REVIEW-Q7100003i.exe", "REVIEW-Q7100003a.exe"}
    records = {r["os"]: r["key"] for r in spec["hotfix"]["records"]}
    assert records["nt4"].endswith("\\CurrentVersion\\Hotfix\\Q7100003")
    (setting,) = spec["registry"]
    assert (setting["name"], setting["type"], setting["range"]) == ("IdleSeconds", "dword", [0, 3600])
    assert any(r["field"] == "variables.idle_seconds" for r in result.report["review"])


def test_markdown_article() -> None:
    result = imported("kb7100004.md")
    spec = result.data
    assert spec["article"]["title"].startswith("The Contoso shell extension makes Explorer slow")
    assert {e["id"]: e["architectures"] for e in spec["applicability"]} == {
        "win7": ["x86", "x64"], "ws2008r2": ["x64", "ia64"]}
    # The article's own branch table gives the GDR (17xxx) and LDR (21xxx) ranges of SP1.
    win7 = rows(result, os="win7", architectures=["x86"], name="Cshell.dll")
    assert [(r["branch"], r["branch_floor"]) for r in win7] == [("gdr", "6.1.7601.17000"), ("ldr", "6.1.7601.21000")]
    assert len(rows(result, wow=True)) == 4  # two WOW rows for each of Windows 7 x64 and 2008 R2 x64
    # The x64 file and its WOW copy share a version but are two files (system32, SysWOW64): version rows.
    assert {r["check"] for r in rows(result, name="Cshell.dll")} == {"version"}
    (setting,) = spec["registry"]
    assert (setting["key"], setting["name"], setting["type"], setting["value"]) == (
        "HKLM\\SOFTWARE\\Policies\\Contoso\\Shell", "CacheMode", "dword", 2)
    assert spec["article"]["supersedes"] == ["KB7100003"]
    assert result.report["unplaced"] == []


def test_every_inferred_value_is_in_the_spec_as_a_comment() -> None:
    result = imported("kb7100001.html")
    for item in result.report["inferred"]:
        assert item["reason"][:40] in " ".join(result.text.split()), item


def test_an_article_without_a_number_is_refused() -> None:
    with pytest.raises(ArticleImportError, match="no article number"):
        import_article("Some text about Windows XP without any number.\n", "notes.txt")


def test_an_article_naming_no_windows_is_refused() -> None:
    with pytest.raises(ArticleImportError, match="names no Windows version"):
        import_article("Article ID: 7100009\nA problem in a word processor.\n", "kb7100009.txt")


def test_an_xp_article_copied_from_a_browser_is_ready_to_remediate() -> None:
    # The shape of the training article KB828753 (a fixed-width table flattened onto one line); the article
    # names its package, so nothing is left for review but the title taken from the first line.
    result = imported("kb900002.txt")
    spec = result.data
    assert spec["applicability"] == [{"id": "xp", "name": "Windows XP", "version": "5.1.2600", "product_types": [1],
                                      "architectures": ["x86"], "service_packs": [1], "fixed_in_service_pack": 2}]
    assert spec["packages"][0]["file"] == "WindowsXP-KB900002-x86-ENU.exe" and spec["packages"][0]["restart"] is False
    (row,) = spec["files"]
    assert {k: row[k] for k in ("name", "dir", "version", "branch", "branch_floor", "size", "time")} == {
        "name": "Netbt.sys", "dir": "%SystemRoot%\\system32\\drivers", "version": "5.1.2600.1290", "branch": "ldr",
        "branch_floor": "5.1.2600.1106", "size": 162816, "time": "12:00"}
    assert [r["field"] for r in spec["review"]] == ["article.title"]
    assert result.report["tables"] == [{"table": "", "rows": 1}]


def test_a_row_that_names_no_file_is_reported_and_the_rest_imported() -> None:
    text = (FIXTURES / "kb7100004.md").read_text(encoding="utf-8").replace(
        "|Cshell.dll|6.1.7601.21777|1,004,032|", "|..\\Cshell.dll|6.1.7601.21777|1,004,032|")
    result = import_article(text, "kb7100004.md")
    (bad,) = unplaced(result, "file row")
    assert "is not a file name" in bad["reason"] and not rows(result, architectures=["ia64"])
