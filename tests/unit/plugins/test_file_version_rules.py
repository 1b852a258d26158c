# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_version's judging rules (build lines, branch floors, size/date) and its path handling, without a host.

Versions and branches are the seed articles': KB828753's XP SP1 line 5.1.2600.1276, KB977381's 2008 LDR
6.0.6001.22565 / 6.0.6002.22269, KB253729's Mpr.dll given by size and date only.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FileFacts, OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.versions import WinVersion
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import file_check as fv

UTC = datetime.UTC


def args(**given: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"minimum_version": None, "branch_floor": None, "exact_version": None, "size": None,
                            "date": None}
    return {**base, **given}


def verdict(version: str, *minimums: str, floor: str | None = None) -> tuple[bool, str]:
    rows = fv.rows_from(list(minimums), floor)
    return fv.judge_version(WinVersion.parse(version), rows)


def test_plain_minimum_on_one_build_line() -> None:
    assert verdict("5.1.2600.1106 (xpsp1.020828-1920)", "5.1.2600.1276") == (False, "5.1.2600.1106 < 5.1.2600.1276")
    assert verdict("5.1.2600.1276", "5.1.2600.1276")[0]
    # XP SP2's files share the 5.1.2600 line and are numbered above SP1's: they carry the fix.
    assert verdict("5.1.2600.2180 (xpsp_sp2_rtm.040803-2158)", "5.1.2600.1276")[0]


def test_a_newer_build_line_supersedes() -> None:
    ok, reason = verdict("6.0.6002.18005", "6.0.6001.22565")
    assert ok and "newer" in reason
    ok, reason = verdict("6.0.6000.16386", "6.0.6001.22565")
    assert not ok and "6.0.6000" in reason


def test_nt6_floor_is_derived_from_the_branch() -> None:
    assert fv.derived_floor(WinVersion.parse("6.0.6001.22565")) == WinVersion.parse("6.0.6001.20000")
    assert fv.derived_floor(WinVersion.parse("6.0.6001.18300")) == WinVersion.parse("6.0.6001.16000")
    assert fv.derived_floor(WinVersion.parse("6.0.6001.1000")) == WinVersion.parse("6.0.6001.0")
    assert fv.derived_floor(WinVersion.parse("5.2.3790.4650")) == WinVersion.parse("5.2.3790.0")


def test_a_gdr_file_is_not_judged_by_an_ldr_only_fix() -> None:
    # KB977381 ships LDR files only: a GDR Dfsrs.exe, whatever its number, does not have the fix.
    ok, reason = verdict("6.0.6001.18500", "6.0.6001.22565")
    assert not ok and "below 6.0.6001.20000" in reason
    assert not verdict("6.0.6001.22500", "6.0.6001.22565")[0]
    assert verdict("6.0.6001.22565", "6.0.6001.22565")[0]


def test_one_minimum_per_branch() -> None:
    minimums = ("6.0.6001.18300", "6.0.6001.22522")
    assert verdict("6.0.6001.18400", *minimums)[0]
    assert not verdict("6.0.6001.18200", *minimums)[0]
    # An LDR file numbered above the GDR minimum is still judged against the LDR minimum.
    ok, reason = verdict("6.0.6001.22100", *minimums)
    assert not ok and reason == "6.0.6001.22100 < 6.0.6001.22522"
    assert verdict("6.0.6001.22600", *minimums)[0]


def test_lines_of_several_service_packs() -> None:
    minimums = ("6.0.6001.22565", "6.0.6002.22269")  # KB977381 on 2008 SP1 and SP2
    assert not verdict("6.0.6002.22000", *minimums)[0]
    assert verdict("6.0.6002.22300", *minimums)[0]
    assert verdict("6.1.7600.16385", *minimums)[0]  # a later release


def test_explicit_branch_floor_on_xp() -> None:
    # On XP the number does not tell the branch; an explicit floor marks where the minimum's branch starts.
    assert not verdict("5.1.2600.1100", "5.1.2600.1276", floor="5.1.2600.1106")[0]
    assert not verdict("5.1.2600.1200", "5.1.2600.1276", floor="5.1.2600.1106")[0]
    assert verdict("5.1.2600.1300", "5.1.2600.1276", floor="5.1.2600.1106")[0]


@pytest.mark.parametrize(("given", "field"), [
    (args(minimum_version=["5.1.2600"]), "minimum_version[0]"),
    (args(minimum_version=["5.1.2600.1276", "x"]), "minimum_version[1]"),
    (args(minimum_version=["6.0.6001.22565", "6.0.6001.22600"]), "minimum_version"),
    (args(minimum_version=["5.1.2600.1276"], branch_floor="5.1.2600.1300"), "branch_floor"),
    (args(minimum_version=["5.1.2600.1276"], branch_floor="5.2.3790.0"), "branch_floor"),
    (args(minimum_version=["5.1.2600.1276", "5.2.3790.4650"], branch_floor="5.1.2600.0"), "branch_floor"),
    (args(branch_floor="5.1.2600.0"), "branch_floor"),
    (args(exact_version="1.2.3"), "exact_version"),
    (args(size=-1), "size"),
    (args(date="27-Sep-2003"), "date"),
])
def test_bad_criteria_name_the_argument(given: dict[str, Any], field: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        fv.criteria_from(given)
    assert caught.value.field == field


def test_dates() -> None:
    assert fv.parse_date("2003-09-27") == datetime.datetime(2003, 9, 27, tzinfo=UTC)
    assert fv.parse_date("2000-02-08 19:27") == datetime.datetime(2000, 2, 8, 19, 27, tzinfo=UTC)
    assert fv.parse_date("2000-02-08T19:27:00+02:00") == datetime.datetime(2000, 2, 8, 17, 27, tzinfo=UTC)


def facts(version: str | None = None, size: int | None = None, modified: datetime.datetime | None = None,
          exists: bool = True) -> FileFacts:
    return FileFacts(r"C:\WINNT\system32\mpr.dll", exists, version, size, modified)


def test_size_and_date_as_the_article_gives_them() -> None:
    criteria = fv.criteria_from(args(size=60176, date="2000-02-08 19:27"))
    old = datetime.datetime(1999, 11, 23, 12, 0, tzinfo=UTC)
    assert fv.judge(facts(size=60176, modified=old), criteria)[0]  # the article's file
    assert fv.judge(facts(size=61000, modified=datetime.datetime(2001, 1, 1, tzinfo=UTC)), criteria)[0]  # later
    ok, reason = fv.judge(facts(size=59664, modified=old), criteria)
    assert not ok and "expected size 60176 or modified at or after 2000-02-08T19:27:00+00:00" in reason
    assert not fv.judge(facts(size=60176, exists=False), criteria)[0]


def test_size_alone_and_date_alone() -> None:
    assert fv.judge(facts(size=10), fv.criteria_from(args(size=10)))[0]
    assert not fv.judge(facts(size=11), fv.criteria_from(args(size=10)))[0]
    when = datetime.datetime(2003, 9, 27, tzinfo=UTC)
    assert fv.judge(facts(modified=when), fv.criteria_from(args(date="2003-09-27")))[0]
    assert not fv.judge(facts(modified=when - datetime.timedelta(seconds=1)),
                        fv.criteria_from(args(date="2003-09-27")))[0]


def test_exact_version_ignores_the_build_tag() -> None:
    criteria = fv.criteria_from(args(exact_version="5.1.2600.1276"))
    assert fv.judge(facts("5.1.2600.1276 (xpsp2.030422-1633)"), criteria) == (True, "5.1.2600.1276 == 5.1.2600.1276")
    assert not fv.judge(facts("5.1.2600.1277"), criteria)[0]


def test_missing_or_unversioned_files() -> None:
    criteria = fv.criteria_from(args(minimum_version=["5.1.2600.1276"]))
    assert fv.judge(facts(exists=False), criteria) == (False, "the file does not exist")
    assert fv.judge(facts(None, size=5), criteria) == (False, "the file has no version resource")
    assert not fv.judge(facts("garbage"), criteria)[0]
    assert fv.judge(facts(None, size=5), fv.Criteria()) == (True, "the file exists")


def test_file_result_reports_branch_and_number() -> None:
    criteria = fv.criteria_from(args(minimum_version=["6.0.6001.22565"]))
    row = fv.file_result("%SystemRoot%\\x", r"C:\Windows\x", facts("6.0.6001.22565 (vistasp1_ldr.091021-1516)", 5),
                         criteria)
    assert row["version"] == "6.0.6001.22565" and row["branch"] == "ldr" and row["compliant"]
    assert row["file_version"] == "6.0.6001.22565 (vistasp1_ldr.091021-1516)"


# --- paths ------------------------------------------------------------------------------------------------------


def test_paths_are_checked_before_any_request() -> None:
    assert fv.check_paths(["C:/WINDOWS/system32/x.dll", "%SystemRoot%\\y.dll"]) == \
        ["C:\\WINDOWS\\system32\\x.dll", "%SystemRoot%\\y.dll"]
    for bad, fragment in ((["x.dll"], "absolute"), ([r"\\server\share\x.dll"], "UNC"), ([""], "empty"),
                          ([r"%TEMP%\x.dll"], "%TEMP% is not supported"), ([], "at least one")):
        with pytest.raises(ArgumentError) as caught:
            fv.check_paths(bad)
        assert fragment in caught.value.message
        assert caught.value.field.startswith("paths")


def test_expansion_from_os_facts() -> None:
    nt4 = OsFacts("4.0.1381", 6, "x86", 3, system_root="C:\\WINNT")
    variables = fv.os_variables(nt4)
    assert fv.expand(r"%SystemRoot%\system32\mpr.dll", variables, "paths[0]") == r"C:\WINNT\system32\mpr.dll"
    assert fv.expand(r"%WINDIR%\x", variables, "paths[0]") == r"C:\WINNT\x"
    assert fv.expand(r"%systemdrive%\boot.ini", variables, "paths[0]") == r"C:\boot.ini"
    with pytest.raises(ArgumentError) as caught:
        fv.expand(r"%ProgramFiles(x86)%\x", variables, "paths[3]")
    assert caught.value.field == "paths[3]"
    assert fv.needed_variables([r"%SystemRoot%\a", r"%ProgramFiles%\b", r"C:\c"]) == {"systemroot", "programfiles"}


@given(st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=4, max_size=4),
       st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=4, max_size=4))
def test_single_minimum_is_plain_order_on_its_build_line(found: list[int], minimum: list[int]) -> None:
    """With one minimum on XP-era numbering (no derived floor), a file on the same build line is compliant
    exactly when its version is not lower."""
    found_v = WinVersion(5, 1, 2600, found[3])
    minimum_v = WinVersion(5, 1, 2600, minimum[3])
    ok, _ = fv.judge_version(found_v, fv.rows_from([str(minimum_v)], None))
    assert ok == (found_v >= minimum_v)
