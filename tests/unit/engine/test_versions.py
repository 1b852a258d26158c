# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.versions import (
    WinVersion,
    parse_build_line,
    parse_version,
)


@pytest.mark.parametrize(("text", "parts", "tag"), [
    ("5.1.2600.1276", (5, 1, 2600, 1276), ""),
    ("5.1.2600.1276 (xpsp2.030422-1633)", (5, 1, 2600, 1276), "xpsp2.030422-1633"),
    ("6.0.6001.22565 (vistasp1_ldr.091117-1600)", (6, 0, 6001, 22565), "vistasp1_ldr.091117-1600"),
    ("5, 1, 2600, 1276", (5, 1, 2600, 1276), ""),  # the resource-script style some old files carry
    (" 5.00.2195.6601 ", (5, 0, 2195, 6601), ""),
    ("6.1.7600.16385 (win7_rtm.090713-1255)", (6, 1, 7600, 16385), "win7_rtm.090713-1255"),
    ("4.0.1381.33289 (free text)", (4, 0, 1381, 33289), "free text"),
])
def test_parse(text: str, parts: tuple[int, int, int, int], tag: str) -> None:
    version = WinVersion.parse(text)
    assert version.parts == parts
    assert version.tag == tag
    assert parse_version(text) == version


@pytest.mark.parametrize(("text", "message"), [
    ("6.0.6001", "'6.0.6001' is not a four-part version"),
    ("4.00", "'4.00' is not a four-part version"),
    ("", "'' is not a four-part version"),
    ("5.1.2600.1276x", "'5.1.2600.1276x' is not a four-part version"),
    ("a.b.c.d", "'a.b.c.d' is not a four-part version"),
    ("5.1.2600.70000", "each version part must be 0..65535"),
    ("-1.0.0.0", "is not a four-part version"),
])
def test_garbage_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        WinVersion.parse(text)


def test_non_string_is_an_error() -> None:
    with pytest.raises(ValueError, match="is not a version string"):
        WinVersion.parse(5.1)  # type: ignore[arg-type, unused-ignore]


def test_tag_does_not_change_equality_or_order() -> None:
    plain = WinVersion.parse("5.1.2600.1276")
    tagged = WinVersion.parse("5.1.2600.1276 (xpsp2.030422-1633)")
    assert plain == tagged
    assert hash(plain) == hash(tagged)
    assert not plain < tagged and not tagged < plain
    assert str(tagged) == "5.1.2600.1276"
    assert tagged.full_text() == "5.1.2600.1276 (xpsp2.030422-1633)"


def test_build_line() -> None:
    version = WinVersion.parse("6.0.6002.22269")
    assert version.build_line == (6, 0, 6002)
    assert version.build_line_text == "6.0.6002"


@pytest.mark.parametrize(("text", "branch"), [
    # NT 6.x: the revision decides, whatever the tag says.
    ("6.0.6001.18000 (longhorn_rtm.080118-1840)", "gdr"),
    ("6.0.6001.22565 (vistasp1_ldr.091117-1600)", "ldr"),
    ("6.0.6001.22565", "ldr"),
    ("6.0.6002.18005", "gdr"),
    ("6.1.7600.16385", "gdr"),
    ("6.1.7600.20578", "ldr"),
    ("6.0.6000.15000", "baseline"),
    ("6.1.7601.29999", "ldr"),
    ("6.0.6002.30000", "unknown"),
    # XP / 2003: only the tag tells.
    ("5.1.2600.1276 (xpsp2.030422-1633)", "baseline"),
    ("5.2.3790.3959 (srv03_sp2_rtm.070216-1710)", "baseline"),
    ("5.1.2600.3103 (xpsp_sp2_qfe.070315-1311)", "ldr"),
    ("5.2.3790.4650 (srv03_sp2_ldr.100115-1232)", "ldr"),
    ("5.1.2600.3099 (xpsp_sp2_gdr.070308-0222)", "gdr"),
    ("5.2.3790.4455 (SRV03_SP2_GDR.090203-1205)", "gdr"),
    ("5.1.2600.1276", "unknown"),
    ("5.1.2600.1276 (free text)", "unknown"),
    ("4.0.1381.33289", "unknown"),
    ("10.0.19041.1", "unknown"),
])
def test_branch(text: str, branch: str) -> None:
    assert WinVersion.parse(text).branch() == branch


def test_parts_are_checked_when_built_directly() -> None:
    with pytest.raises(ValueError, match="revision"):
        WinVersion(1, 2, 3, 65536)
    with pytest.raises(ValueError, match="major"):
        WinVersion(True, 0, 0, 0)


@pytest.mark.parametrize(("text", "expected"), [("6.0", (6, 0)), ("5.1.2600", (5, 1, 2600))])
def test_parse_build_line(text: str, expected: tuple[int, ...]) -> None:
    assert parse_build_line(text) == expected


@pytest.mark.parametrize("text", ["6", "6.0.6001.1", "six", ""])
def test_parse_build_line_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"major\.minor"):
        parse_build_line(text)


_PART = st.integers(min_value=0, max_value=0xFFFF)
_TAG = st.sampled_from(["", "xpsp2.030422-1633", "srv03_sp2_qfe.090119-1300", "win7_rtm.090713-1255"])
_VERSIONS = st.builds(WinVersion, _PART, _PART, _PART, _PART, _TAG)


@given(_VERSIONS, _VERSIONS)
def test_order_is_the_tuple_order(a: WinVersion, b: WinVersion) -> None:
    assert (a < b) == (a.parts < b.parts)
    assert (a <= b) == (a.parts <= b.parts)
    assert (a == b) == (a.parts == b.parts)
    assert (a > b) == (a.parts > b.parts)
    # Exactly one of <, ==, > holds: a total order.
    assert [a < b, a == b, a > b].count(True) == 1


@given(_VERSIONS, _VERSIONS, _VERSIONS)
def test_order_is_transitive(a: WinVersion, b: WinVersion, c: WinVersion) -> None:
    ordered = sorted([a, b, c])
    assert ordered[0] <= ordered[1] <= ordered[2]
    assert ordered[0] <= ordered[2]
    assert [v.parts for v in ordered] == sorted(v.parts for v in (a, b, c))


@given(_VERSIONS)
def test_full_text_parses_back(version: WinVersion) -> None:
    again = WinVersion.parse(version.full_text())
    assert again == version
    assert again.tag == version.tag
    assert again.branch() == version.branch()
