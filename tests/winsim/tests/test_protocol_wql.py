"""WQL as WMI parses and evaluates it: the subset WinRM clients send."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winsim import wql

SERVICE = {"Name": "Dfsr", "State": "Running", "ProcessId": 1234, "AcceptStop": True, "Description": None,
           "InstallDate": dt.datetime(2010, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "Paths": ["a", "b"],
           "PathName": "C:\\Windows\\system32\\dfsrs.exe"}


def matches(query: str, props: dict[str, object] = SERVICE) -> bool:
    return wql.parse(query).matches(props)


def test_select_star_and_property_lists() -> None:
    assert wql.parse("SELECT * FROM Win32_Service").properties is None
    query = wql.parse("select name , State from win32_service")
    assert query.properties == ["name", "State"]
    assert query.class_name == "win32_service"
    assert wql.select(query, SERVICE) == [("Name", "Dfsr"), ("State", "Running")]


@pytest.mark.parametrize(("where", "expected"), [
    ("Name = 'Dfsr'", True),
    ("name = 'DFSR'", True),  # property names and string comparison are case-insensitive
    ("Name <> 'Dfsr'", False),
    ("Name != 'x'", True),
    ("ProcessId = 1234", True),
    ("ProcessId > 1000 AND ProcessId <= 1234", True),
    ("ProcessId < 1000", False),
    ("ProcessId = '1234'", True),  # WMI converts the literal to the property type
    ("AcceptStop = TRUE", True),
    ("AcceptStop = FALSE", False),
    ("Description IS NULL", True),
    ("Description IS NOT NULL", False),
    ("Description = NULL", True),
    ("State IS NOT NULL", True),
    ("Name = 'x' OR State = 'Running'", True),
    ("Name = 'x' OR (State = 'Running' AND ProcessId = 1)", False),
    ("NOT Name = 'x'", True),
    ("'Dfsr' = Name", True),
    ("1000 < ProcessId", True),
    ("Name LIKE 'df%'", True),
    ("Name LIKE 'd_sr'", True),
    ("Name LIKE 'x%'", False),
    ("InstallDate = '20100102030405.000000+000'", True),
    ("InstallDate > '2009-12-31T00:00:00Z'", True),
    ("Description = 'x'", False),  # a null property matches no comparison
])
def test_where_clauses(where: str, expected: bool) -> None:
    assert matches(f"SELECT * FROM Win32_Service WHERE {where}") is expected  # noqa: S608 - WQL under test


def test_backslash_escapes_follow_wmi() -> None:
    # WMI: a backslash in a string literal escapes the next character; a path is written with doubled ones.
    assert matches(r"SELECT * FROM Win32_Service WHERE PathName = 'C:\\Windows\\system32\\dfsrs.exe'")
    query = wql.parse(r"SELECT * FROM X WHERE Name = 'it\'s \"q\"'")
    assert isinstance(query.where, wql.Compare)
    assert query.where.literal == "it's \"q\""
    assert wql.parse('SELECT * FROM X WHERE Name = "a\\"b"').where == wql.Compare("Name", "=", 'a"b')


@pytest.mark.parametrize("bad", [
    r"SELECT * FROM Win32_Service WHERE PathName = 'C:\Windows'",  # unescaped backslash: invalid query
    "SELECT FROM Win32_Service",
    "SELECT * Win32_Service",
    "SELECT * FROM",
    "SELECT * FROM Win32_Service WHERE",
    "SELECT * FROM Win32_Service WHERE Name = 'x",
    "SELECT * FROM Win32_Service WHERE (Name = 'x'",
    "SELECT * FROM Win32_Service WHERE Name 'x'",
    "SELECT * FROM Win32_Service trailing",
    "SELECT * FROM Win32_Service WHERE Name < NULL",
    "SELECT * FROM Win32_Service WHERE Name = ;",
])
def test_invalid_queries_are_rejected(bad: str) -> None:
    with pytest.raises(wql.WqlError):
        wql.parse(bad).matches(SERVICE)


@pytest.mark.parametrize("where", ["NoSuchProperty = 1", "Paths = 'a'", "ProcessId = 'many'", "AcceptStop = 'x'"])
def test_evaluation_errors(where: str) -> None:
    query = wql.parse(f"SELECT * FROM Win32_Service WHERE {where}")  # noqa: S608 - WQL under test
    with pytest.raises(wql.WqlError):
        query.matches(SERVICE)


def test_wql_error_becomes_cannot_process_filter_fault() -> None:
    fault = wql.WqlError("bad").to_fault()
    assert fault.code == 2150858778


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_string_round_trips_through_wmi_escaping(value: str) -> None:
    query = wql.parse(f"SELECT * FROM X WHERE Name = {_quote(value)}")  # noqa: S608 - WQL under test
    assert isinstance(query.where, wql.Compare)
    assert query.where.literal == value
    assert query.matches({"Name": value})
