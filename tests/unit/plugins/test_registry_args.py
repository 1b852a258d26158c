# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""registry_value's argument rules: the path, type and data quirks users meet, and merge/remove semantics."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import registry_args as ra
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi

# --- paths --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given_path", [
    r"HKLM\SOFTWARE\Example\Sub",
    r"HKLM:\SOFTWARE\Example\Sub",
    r"hklm:\SOFTWARE\Example\Sub\\",
    r"HKEY_LOCAL_MACHINE\SOFTWARE\Example\Sub",
    r"Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Example\Sub",
    r"Microsoft.PowerShell.Core\Registry::HKLM\SOFTWARE\Example\Sub",
    "  HKLM\\SOFTWARE\\Example\\Sub  ",
])
def test_every_spelling_of_a_key_is_the_same_key(given_path: str) -> None:
    assert ra.normalize_path(given_path) == r"HKLM\SOFTWARE\Example\Sub"


@pytest.mark.parametrize(("given_path", "short"), [
    (r"HKCU\Software\X", "HKCU"), (r"HKEY_CURRENT_USER\Software\X", "HKCU"), (r"HKU\.DEFAULT\X", "HKU"),
    (r"HKEY_USERS\.DEFAULT\X", "HKU"), (r"HKCR\.txt", "HKCR"), (r"HKEY_CLASSES_ROOT\.txt", "HKCR"),
    (r"HKCC\Software", "HKCC"),
])
def test_hive_abbreviations(given_path: str, short: str) -> None:
    normalised = ra.normalize_path(given_path)
    assert normalised.split("\\")[0] == short
    # What the transport's parser makes of it: the hDefKey StdRegProv expects.
    assert wmi.parse_key(normalised).hdefkey == wmi.HIVES[short]


def test_key_names_keep_their_case_and_forward_slashes() -> None:
    # '/' is a legal character in a key name (e.g. MIME types under HKCR\MIME\Database\Content Type).
    assert ra.normalize_path(r"HKCR\MIME\Database\Content Type\text/plain") == \
        r"HKCR\MIME\Database\Content Type\text/plain"


@pytest.mark.parametrize(("given_path", "fragment"), [
    ("", "required"), (None, "required"), (r"SOFTWARE\X", "hive"), (r"HKXX\SOFTWARE", "hive"),
    ("HKLM", "hive itself"), ("HKLM:\\", "hive itself"), (r"HKLM\SOFTWARE\\\\X", "empty key name"),
    ("HKLM\\SOFTWARE\\a\x00b", "control character"), ("HKLM\\" + "k" * 256, "255"),
])
def test_bad_paths_name_the_argument(given_path: Any, fragment: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_path(given_path)
    assert caught.value.field == "path"
    assert fragment in caught.value.message


def test_value_names() -> None:
    assert ra.normalize_name(None) == ""
    assert ra.normalize_name("") == ""
    assert ra.normalize_name("ReconnectTimeout") == "ReconnectTimeout"
    with pytest.raises(ArgumentError, match="NUL"):
        ra.normalize_name("a\x00b")
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_name(5)
    assert caught.value.field == "name"


# --- dword / qword --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [
    (60, 60), ("60", 60), (" 60 ", 60), ("0x3c", 60), ("0X3C", 60), (0xFFFFFFFF, 4294967295),
    ("0xFFFFFFFF", 4294967295), ("4294967295", 4294967295), (-1, 4294967295), ("-1", 4294967295),
    (-2147483648, 2147483648), (0, 0), (60.0, 60), ("1_000", 1000),
])
def test_dword_spellings(data: Any, expected: int) -> None:
    assert ra.normalize_data("dword", data) == expected


@pytest.mark.parametrize(("data", "fragment"), [
    (4294967296, "does not fit"), ("0x100000000", "does not fit"), (-2147483649, "does not fit"),
    (True, "boolean"), ("yes", "not a dword number"), ("0x", "not a dword number"), (1.5, "whole number"),
    ([1], "must be a number"), (None, "must be a number"), ("12abc", "not a dword number"),
])
def test_dword_refusals_name_data(data: Any, fragment: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_data("dword", data)
    assert caught.value.field == "data"
    assert fragment in caught.value.message


def test_qword_range_and_twos_complement() -> None:
    assert ra.normalize_data("qword", "0xFFFFFFFFFFFFFFFF") == 2**64 - 1
    assert ra.normalize_data("qword", -1) == 2**64 - 1
    assert ra.normalize_data("qword", 4294967296) == 4294967296
    with pytest.raises(ArgumentError, match="does not fit"):
        ra.normalize_data("qword", 2**64)
    with pytest.raises(ArgumentError, match="does not fit"):
        ra.normalize_data("qword", -(2**63) - 1)


@given(st.integers(min_value=-(2**31), max_value=2**32 - 1))
def test_dword_forms_agree(number: int) -> None:
    """Decimal int, decimal string and (for non-negative numbers) hex string give the same stored number,
    and a negative number is its 32-bit two's complement."""
    stored = ra.normalize_data("dword", number)
    assert stored == number % 2**32
    assert ra.normalize_data("dword", str(number)) == stored
    if number >= 0:
        assert ra.normalize_data("dword", hex(number)) == stored


# --- binary, strings, multistring, none -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    "deadbeef", "DEADBEEF", "0xdeadbeef", "hex:de,ad,be,ef", "de:ad:be:ef", "de ad be ef", "de-ad-be-ef",
    [0xDE, 0xAD, 0xBE, 0xEF], [222, "173", "0xbe", 239], b"\xde\xad\xbe\xef",
])
def test_binary_spellings(data: Any) -> None:
    assert ra.normalize_data("binary", data) == b"\xde\xad\xbe\xef"


@pytest.mark.parametrize(("data", "field"), [
    ("abc", "data"), ("zz", "data"), ([256], "data[0]"), ([1, -1], "data[1]"), (5, "data"), ([True], "data[0]"),
])
def test_binary_refusals(data: Any, field: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_data("binary", data)
    assert caught.value.field == field


def test_empty_binary() -> None:
    assert ra.normalize_data("binary", "") == b""
    assert ra.normalize_data("binary", []) == b""


def test_strings() -> None:
    assert ra.normalize_data("string", "60") == "60"
    assert ra.normalize_data("string", 60) == "60"
    assert ra.normalize_data("expandstring", "%SystemRoot%\\x") == "%SystemRoot%\\x"
    assert ra.normalize_data("string", "") == ""
    for bad in (True, None, ["a"], {"a": 1}, "a\x00b"):
        with pytest.raises(ArgumentError):
            ra.normalize_data("string", bad)


def test_multistrings() -> None:
    assert ra.normalize_data("multistring", ["fs01", "fs01.corp.example.com"]) == ["fs01", "fs01.corp.example.com"]
    assert ra.normalize_data("multistring", "fs01") == ["fs01"]
    assert ra.normalize_data("multistring", []) == []
    assert ra.normalize_data("multistring", [10, "a"]) == ["10", "a"]
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_data("multistring", ["a", "", "b"])
    assert caught.value.field == "data[1]"
    assert "empty" in caught.value.message
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_data("multistring", ["a", None])
    assert caught.value.field == "data[1]"


def test_none_type_has_no_data() -> None:
    assert ra.normalize_data("none", None) is None
    assert ra.normalize_data("none", "") is None
    with pytest.raises(ArgumentError, match="no data"):
        ra.normalize_data("none", "x")


def test_unknown_type() -> None:
    with pytest.raises(ArgumentError) as caught:
        ra.normalize_data("sz", "x")
    assert caught.value.field == "type"


# --- combinations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "type_", "mode", "data_given", "field"), [
    ("present", "dword", "merge", True, "multistring_mode"),
    ("absent", "multistring", "merge", True, "multistring_mode"),
    ("absent", "multistring", "remove", True, "multistring_mode"),
    ("present", "dword", "replace", False, "data"),
    ("present", "multistring", "merge", False, "data"),
])
def test_combinations_that_are_refused(state: str, type_: str, mode: str, data_given: bool, field: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        ra.validate_combination(state, type_, mode, data_given)
    assert caught.value.field == field


@pytest.mark.parametrize(("state", "type_", "mode", "data_given"), [
    ("present", "none", "replace", False), ("absent", "string", "replace", False),
    ("present", "multistring", "remove", True), ("present", "multistring", "replace", True),
])
def test_combinations_that_are_fine(state: str, type_: str, mode: str, data_given: bool) -> None:
    ra.validate_combination(state, type_, mode, data_given)


# --- desired values -------------------------------------------------------------------------------------------


def multi(*entries: str) -> RegistryValue:
    return RegistryValue("multistring", list(entries))


def test_merge_keeps_others_and_appends_missing_in_order() -> None:
    current = multi("fs01", "fs02")
    desired = ra.desired_value("present", "multistring", ["fs02", "fs03", "fs02"], "merge", False, current)
    assert desired.value == multi("fs01", "fs02", "fs03")


def test_merge_case_insensitive_keeps_the_hosts_spelling() -> None:
    desired = ra.desired_value("present", "multistring", ["FS01", "fs03"], "merge", True, multi("fs01"))
    assert desired.value == multi("fs01", "fs03")
    desired = ra.desired_value("present", "multistring", ["FS01"], "merge", False, multi("fs01"))
    assert desired.value == multi("fs01", "FS01")


def test_merge_into_a_missing_or_wrongly_typed_value() -> None:
    assert ra.desired_value("present", "multistring", ["a"], "merge", False, None).value == multi("a")
    wrong = RegistryValue("string", "a")
    assert ra.desired_value("present", "multistring", ["a"], "merge", False, wrong).value == multi("a")


def test_remove() -> None:
    desired = ra.desired_value("present", "multistring", ["FS02"], "remove", True, multi("fs01", "fs02", "Fs02"))
    assert desired.value == multi("fs01")
    assert ra.desired_value("present", "multistring", ["x"], "remove", False, None).value is None
    emptied = ra.desired_value("present", "multistring", ["a"], "remove", False, multi("a"))
    assert emptied.value == multi()  # stays, as an empty multistring
    wrong = RegistryValue("dword", 5)
    kept = ra.desired_value("present", "multistring", ["a"], "remove", False, wrong)
    assert kept.value == wrong and "not a multistring" in kept.note


def test_replace_and_absent() -> None:
    assert ra.desired_value("present", "dword", 60, "replace", False, RegistryValue("string", "60")).value == \
        RegistryValue("dword", 60)
    assert ra.desired_value("absent", "dword", None, "replace", False, RegistryValue("dword", 1)).value is None


@given(current=st.lists(st.text(alphabet="abAB", min_size=1, max_size=3), max_size=5),
       wanted=st.lists(st.text(alphabet="abAB", min_size=1, max_size=3), max_size=5), ci=st.booleans())
def test_merge_and_remove_are_idempotent(current: list[str], wanted: list[str], ci: bool) -> None:
    """A second run changes nothing: merging (or removing) the same entries again gives the same list."""
    once = ra.desired_value("present", "multistring", wanted, "merge", ci, multi(*current)).value
    assert once is not None
    twice = ra.desired_value("present", "multistring", wanted, "merge", ci, once).value
    assert ra.same(twice, once, ci)
    removed = ra.desired_value("present", "multistring", wanted, "remove", ci, multi(*current)).value
    assert removed is not None
    again = ra.desired_value("present", "multistring", wanted, "remove", ci, removed).value
    assert ra.same(again, removed, ci)
    folded = {w.casefold() if ci else w for w in wanted}
    assert not any((e.casefold() if ci else e) in folded for e in removed.data or [])  # type: ignore[union-attr]


def test_same() -> None:
    assert ra.same(None, None, False)
    assert not ra.same(None, multi("a"), False)
    assert ra.same(multi("FS01"), multi("fs01"), True)
    assert not ra.same(multi("FS01"), multi("fs01"), False)
    assert not ra.same(RegistryValue("dword", 60), RegistryValue("string", "60"), False)
    assert not ra.same(multi("a", "b"), multi("b", "a"), True)  # order matters to the redirector


def test_display_shows_binary_as_hex() -> None:
    assert ra.display(RegistryValue("binary", b"\x01\xff")) == {"type": "binary", "data": "01ff"}
    assert ra.display(None) is None
