# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quoting for the two languages we send text into: WQL string literals and cmd.exe command lines.

Both refuse what they cannot quote safely instead of guessing, so a hostile file name or registry value
becomes an ``ArgumentError`` on the controller, never a different command on the host.

cmd.exe rules used here (``cmd /c`` as WinRS runs a Command, delayed expansion off, which is the default):

* ``cmd_quote`` wraps an argument in double quotes when it needs them. Inside double quotes cmd.exe takes
  ``& | < > ^ ( )`` literally, so those are *escaped by quoting*. A ``"`` inside an argument cannot be
  expressed portably (cmd.exe and the program's own argv parser disagree about ``\\"``), and ``%`` is expanded
  by cmd.exe even inside quotes with no escape that works on a ``cmd /c`` line: both are *rejected*.
  Backslashes before the closing quote are doubled, because the Microsoft C runtime (and
  ``CommandLineToArgvW``) would otherwise read ``\\"`` as a literal quote.
* ``cmd_echo_text`` makes text safe for ``echo``: outside double quotes each metacharacter gets a caret;
  inside a quoted run cmd.exe takes them literally (and would print a caret), so they are left alone. An odd
  number of quotes, ``%``, ``!`` and control characters are rejected.
"""

from __future__ import annotations

import re

from ..errors import ArgumentError

# NUL ends a C string on the host; CR/LF end a WQL statement or a cmd.exe command line early.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CMD_META = frozenset('&|<>^()')
_NEEDS_QUOTES = re.compile(r'[\s&|<>^(),;=]')


def _reject_control(value: str, what: str) -> None:
    match = _CONTROL.search(value)
    if match:
        raise ArgumentError(what, f"control character {match.group()!r} cannot be sent safely")


def wql_string(value: str, what: str = "value") -> str:
    """A WQL string literal in single quotes: ``c:\\windows`` becomes ``'c:\\\\windows'``.

    WMI's WQL parser treats backslash as the escape character in string literals (``\\\\`` and ``\\'``),
    so a Windows path has every backslash doubled."""
    _reject_control(value, what)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def wql_or(property_name: str, values: list[str] | tuple[str, ...], what: str = "value") -> str:
    """``Name='a' OR Name='b'``: one WHERE clause that asks for several instances in one request."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", property_name):
        raise ArgumentError(what, f"{property_name!r} is not a WMI property name")
    if not values:
        raise ArgumentError(what, "at least one value is required")
    return " OR ".join(f"{property_name}={wql_string(v, what)}" for v in values)


CMD_MAX_LINE = 8191  # cmd.exe's limit for one command line (XP and later)


def cmd_quote(arg: str, what: str = "argument") -> str:
    """One argument for a cmd.exe command line, quoted only when it has to be."""
    _reject_control(arg, what)
    if '"' in arg:
        raise ArgumentError(what, 'a double quote inside an argument cannot be passed through cmd.exe safely')
    if "%" in arg:
        raise ArgumentError(what, "'%' is expanded by cmd.exe and cannot be escaped on a command line")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    trailing = len(arg) - len(arg.rstrip("\\"))
    return '"' + arg + "\\" * trailing + '"'


def cmd_line(program: str, args: list[str] | tuple[str, ...] = ()) -> str:
    """A full command line: program and arguments, each through ``cmd_quote``."""
    if not program:
        raise ArgumentError("program", "a program is required")
    parts = [cmd_quote(program, "program")]
    parts.extend(cmd_quote(a, f"arguments[{i}]") for i, a in enumerate(args))
    return " ".join(parts)


def cmd_echo_text(text: str, what: str = "text") -> str:
    """Text for ``echo <text>`` that cmd.exe prints back unchanged."""
    _reject_control(text, what)
    for bad in "%!":
        if bad in text:
            raise ArgumentError(what, f"{bad!r} is expanded by cmd.exe and cannot be echoed safely")
    if text.count('"') % 2:
        raise ArgumentError(what, "an odd number of double quotes would leave cmd.exe in quoted mode")
    stripped = text.strip()
    # "echo", "echo on", "echo off" and "echo /?" print something else than the text.
    if not stripped or stripped.casefold() in ("on", "off") or stripped.startswith("/?") or text[0].isspace():
        raise ArgumentError(what, f"{text!r} cannot be printed with a plain echo")
    out: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch in _CMD_META and not quoted:
            out.append("^")
        out.append(ch)
    return "".join(out)


MAX_PATH = 259  # characters of a path (MAX_PATH, 260, counts the terminating NUL)
_DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")
_LEADING_VARIABLE = re.compile(r"^%[^%\\]+%(?=\\|$)")
# Characters Windows refuses in file names (and that cmd.exe or WQL would take as syntax), after the drive.
_BAD_IN_PATH = '"<>|*?:'


def host_path(path: str, what: str = "path", *, unc: bool = True, variables: bool = False) -> str:
    """A path on the host, checked by the rules every path argument shares, with ``/`` made ``\\``.

    Absolute (``C:\\...``), a share (``\\\\server\\share\\...``, unless ``unc`` is false) or, with
    ``variables``, starting with a ``%VARIABLE%`` the caller expands itself. Refused, naming ``what``: control
    characters (NUL ends the string on the host, CR/LF end a line), the characters Windows does not allow in
    file names (a second ``:`` would name an NTFS alternate stream), ``.`` and ``..`` segments (the path
    must name the file itself: a check of ``C:\\Windows\\..\\x`` is not a check of the file it seems to
    name) and empty segments. ``%`` only with ``variables``: cmd.exe expands it and nothing escapes it there;
    the caller that allows it sends the path only inside WQL string literals, where it is literal."""
    if not isinstance(path, str) or not path.strip():
        raise ArgumentError(what, "a path is required")
    _reject_control(path, what)
    norm = path.strip().replace("/", "\\")
    if norm.startswith("\\\\"):
        if not unc:
            raise ArgumentError(what, f"{path!r}: a UNC path is not allowed here, only a local path (C:\\...)")
        server, _sep, rest = norm[2:].partition("\\")
        if not server or not rest.split("\\")[0]:
            raise ArgumentError(what, f"{path!r} is not a UNC path of the form \\\\server\\share\\...")
        segments = rest.split("\\")
    elif _DRIVE_PATH.match(norm):
        segments = norm[3:].split("\\")
    elif variables and (leading := _LEADING_VARIABLE.match(norm)):
        segments = norm[leading.end() + 1:].split("\\")
    else:
        raise ArgumentError(what, f"{path!r} is not an absolute path (C:\\...{' or a UNC path' if unc else ''})")
    if "%" in norm and not variables:
        raise ArgumentError(what, "'%' is expanded by cmd.exe and cannot be escaped on a command line")
    if len(norm) > MAX_PATH:
        # XP to 2008 R2 resolve paths of at most MAX_PATH (260 with the final NUL) in CIM_DataFile, cmd.exe,
        # copy and the installers; a longer one cannot name the file there.
        raise ArgumentError(what, f"is {len(norm)} characters long; a Windows path has at most {MAX_PATH}")
    if segments and segments[-1] == "":
        segments = segments[:-1]  # a directory may end in a backslash
    for segment in segments:
        if segment in (".", ".."):
            raise ArgumentError(what, f"{path!r}: '.' and '..' segments are not allowed; give the path itself")
        if segment == "":
            raise ArgumentError(what, f"{path!r}: an empty path segment (two backslashes in a row)")
        bad = next((c for c in _BAD_IN_PATH if c in segment), None)
        if bad is not None:
            raise ArgumentError(what, f"{path!r}: {bad!r} is not allowed in a Windows path")
    return norm


def cmd_path(path: str, what: str = "path") -> str:
    """A Windows path for a cmd.exe line, always in double quotes (spaces are common in paths)."""
    _reject_control(path, what)
    if not path:
        raise ArgumentError(what, "a path is required")
    for bad in '"%<>|*?':
        if bad in path:
            raise ArgumentError(what, f"{bad!r} is not allowed in a path sent to cmd.exe")
    return '"' + path + "\\" * (len(path) - len(path.rstrip("\\"))) + '"'
