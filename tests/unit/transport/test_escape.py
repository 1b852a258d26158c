# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WQL and cmd.exe quoting, checked against independent reference parsers of both languages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import escape

CMD_META = set('&|<>^()')
printable = st.characters(blacklist_categories=("Cc", "Cs"))


# --- reference parsers (how WMI and Windows read the text) ---------------------------------------

def parse_wql_literal(text: str) -> tuple[str, str]:
    """Read one quoted WQL literal; return (value, rest). WMI: backslash escapes the next character."""
    assert text[0] == "'"
    out, i = [], 1
    while True:
        ch = text[i]
        if ch == "\\":
            out.append(text[i + 1])
            i += 2
        elif ch == "'":
            return "".join(out), text[i + 1:]
        else:
            out.append(ch)
            i += 1


def command_line_to_argv(line: str) -> list[str]:
    """CommandLineToArgvW / MS C runtime rules for the arguments after the program name."""
    args: list[str] = []
    cur: list[str] = []
    in_arg = quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            n = len(line[i:]) - len(line[i:].lstrip("\\"))
            if i + n < len(line) and line[i + n] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += n + 1
                else:
                    i += n
            else:
                cur.append("\\" * n)
                i += n
            in_arg = True
            continue
        if ch == '"':
            quoted = not quoted
            in_arg = True
        elif ch in " \t" and not quoted:
            if in_arg:
                args.append("".join(cur))
                cur, in_arg = [], False
        else:
            cur.append(ch)
            in_arg = True
        i += 1
    if in_arg:
        args.append("".join(cur))
    return args


def cmd_unescape(text: str) -> str:
    """What cmd.exe's parser hands to echo: carets outside quotes escape the next character; an
    unescaped metacharacter outside quotes would be a command separator or a redirection."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "^":
            out.append(text[i + 1])
            i += 2
            continue
        elif not quoted and ch in CMD_META:
            raise AssertionError(f"unescaped {ch!r} in {text!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def metachars_outside_quotes(line: str) -> list[str]:
    quoted = False
    found = []
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch in CMD_META and not quoted:
            found.append(ch)
    return found


# --- WQL -------------------------------------------------------------------------------------------

def test_wql_windows_path() -> None:
    assert escape.wql_string(r"C:\WINDOWS\system32\drivers\mrxsmb.sys") == \
        r"'C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys'"
    assert escape.wql_string("O'Brien\\") == r"'O\'Brien\\'"


@given(st.text(printable))
def test_wql_round_trip(value: str) -> None:
    quoted = escape.wql_string(value)
    parsed, rest = parse_wql_literal(quoted)
    assert parsed == value
    assert rest == ""


@given(st.lists(st.text(printable), min_size=1, max_size=4))
def test_wql_or_keeps_each_value(values: list[str]) -> None:
    clause = escape.wql_or("Name", values)
    found = []
    rest = clause
    while rest:
        assert rest.startswith("Name=")
        value, rest = parse_wql_literal(rest[len("Name="):])
        found.append(value)
        if rest:
            assert rest.startswith(" OR ")
            rest = rest[4:]
    assert found == values


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "cr\r"])
def test_wql_rejects_control_characters(bad: str) -> None:
    with pytest.raises(ArgumentError):
        escape.wql_string(bad)


def test_wql_or_rejects_bad_property() -> None:
    with pytest.raises(ArgumentError):
        escape.wql_or("Name' OR 1=1 --", ["x"])


# --- cmd.exe arguments -----------------------------------------------------------------------------

safe_arg = st.text(printable).filter(lambda s: '"' not in s and "%" not in s)


@given(safe_arg)
def test_cmd_quote_round_trip_through_argv_parser(arg: str) -> None:
    quoted = escape.cmd_quote(arg)
    assert command_line_to_argv(quoted) == [arg]
    assert metachars_outside_quotes(quoted) == []


@given(st.lists(safe_arg, max_size=5))
def test_cmd_line_keeps_argument_boundaries(args: list[str]) -> None:
    line = escape.cmd_line("update.exe", args)
    assert command_line_to_argv(line) == ["update.exe", *args]
    assert metachars_outside_quotes(line) == []


def test_cmd_quote_examples() -> None:
    assert escape.cmd_quote("/quiet") == "/quiet"
    assert escape.cmd_quote(r"C:\Program Files\x") == r'"C:\Program Files\x"'
    assert escape.cmd_quote("a&b") == '"a&b"'
    assert escape.cmd_quote("C:\\dir with space\\") == '"C:\\dir with space\\\\"'
    assert escape.cmd_quote("") == '""'


@pytest.mark.parametrize("bad", ['say "hi"', "%PATH%", "50%", "a\nb", "nul\x00"])
def test_cmd_quote_rejects(bad: str) -> None:
    with pytest.raises(ArgumentError):
        escape.cmd_quote(bad)


# --- echo text -------------------------------------------------------------------------------------

echo_text = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='%!"'), min_size=1).filter(
    lambda s: not s[0].isspace() and s.strip().casefold() not in ("on", "off") and not s.strip().startswith("/?"))


@given(echo_text)
def test_echo_text_round_trip(text: str) -> None:
    assert cmd_unescape(escape.cmd_echo_text(text)) == text


def test_echo_text_with_quoted_runs() -> None:
    line = 'Set x = CreateObject("MSXML2.DOMDocument") & y'
    escaped = escape.cmd_echo_text(line)
    assert escaped == 'Set x = CreateObject^("MSXML2.DOMDocument"^) ^& y'
    assert cmd_unescape(escaped) == line


@pytest.mark.parametrize("bad", ['odd " quote', "100%", "bang!", "", "   ", "off", "/?", " lead", "a\r\nb"])
def test_echo_text_rejects(bad: str) -> None:
    with pytest.raises(ArgumentError):
        escape.cmd_echo_text(bad)


@pytest.mark.parametrize("bad", ['C:\\a"b', "C:\\%TEMP%\\x", "C:\\a|b", "", "C:\\a\nb"])
def test_cmd_path_rejects(bad: str) -> None:
    with pytest.raises(ArgumentError):
        escape.cmd_path(bad)


def test_cmd_path_quotes() -> None:
    assert escape.cmd_path(r"C:\Program Files\kb.exe") == r'"C:\Program Files\kb.exe"'


def test_vbscript_decoder_lines_survive_echo() -> None:
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import upload

    for line in (*upload._COPY_STDIN, *upload._DECODE_STDIN, *upload._DECODE_FILE):
        assert cmd_unescape(escape.cmd_echo_text(line)) == line


def test_echo_command_puts_redirection_first() -> None:
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import upload

    line = upload._echo_command("QUJD1", r"C:\Temp\x y.b64", append=True)
    assert line == '>>"C:\\Temp\\x y.b64" echo QUJD1'
    assert upload._echo_command("QUJD", r"C:\a.b64", append=False).startswith('>"C:\\a.b64" ')
