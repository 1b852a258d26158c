# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a command on NT 4.0 without WinRM: a batch file on ADMIN$ run by a one-shot service.

The batch file (``%SystemRoot%\\Temp\\kbfix-<random>.cmd``) runs the line with its output redirected to a
``.out`` file, then records the exit code in a ``.res`` file with an ``if errorlevel`` ladder. NT 4.0's cmd.exe
has no delayed expansion (``setlocal enabledelayedexpansion`` and ``!ERRORLEVEL!`` arrived with Windows 2000),
and ``%ERRORLEVEL%`` in a batch line is expanded when the line is read, not after the command ran, so the code
cannot simply be echoed. ``if errorlevel N`` is true when the code is N *or greater*; testing N+1 first and then
N therefore identifies N exactly. The ladder does that for 0 and each success code; any other code is written
as ``other`` (the caller learns "not a success code", not which one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError

OTHER = "other"
# The exit code CommandResult carries when the ladder could only say "none of the listed codes".
OTHER_EXIT_CODE = -1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LINE = 2047  # NT 4.0 cmd.exe's limit for one command line (8191 arrived with XP)


def batch_line(line: str) -> str:
    """``line`` as a line of a batch file that runs exactly that command.

    In a batch file ``%`` starts a parameter or variable reference even where a command line would keep it,
    and ``%%`` is a literal percent, so every ``%`` is doubled. Control characters (a CR or LF would start a
    second command) and an odd number of double quotes (the redirection that follows would end up quoted, and
    the output would not be captured) are rejected."""
    match = _CONTROL.search(line)
    if match:
        raise ArgumentError("command", f"control character {match.group()!r} cannot be put in a batch file")
    if not line.strip():
        raise ArgumentError("command", "a command line is required")
    if line.count('"') % 2:
        raise ArgumentError("command", "an odd number of double quotes would swallow the output redirection")
    escaped = line.replace("%", "%%")
    if len(escaped) > MAX_LINE - 64:
        raise ArgumentError("command", f"the line is longer than NT 4.0's cmd.exe accepts ({MAX_LINE})")
    return escaped


def exit_codes(success_codes: Sequence[int] | None) -> list[int]:
    """The codes the ladder identifies exactly: 0 and the success codes, highest first."""
    codes = {0}
    for i, code in enumerate(success_codes or ()):
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < 2 ** 31:
            raise ArgumentError(f"success_codes[{i}]", f"{code!r} is not an exit code from 0 to 2147483647")
        codes.add(code)
    return sorted(codes, reverse=True)


def batch_file(line: str, out_path: str, result_path: str, success_codes: Sequence[int] | None) -> bytes:
    """The whole batch file (CRLF lines, OEM text: the line must be ASCII, which cmd_line's output is)."""
    command = batch_line(line)
    if not command.isascii():
        raise ArgumentError("command", "only ASCII text can be put in a batch file for NT 4.0's OEM code page")
    lines = ["@echo off", f'{command} > "{out_path}" 2>&1']
    codes = exit_codes(success_codes)
    for code in codes:
        # errorlevel >= code+1: a code above this one (and below the previous one) is not listed.
        lines.append(f"if errorlevel {code + 1} goto {OTHER}")
        lines.append(f"if errorlevel {code} goto code{code}")
    lines.append(f"goto {OTHER}")  # below 0: a negative code (an NTSTATUS from a crash)
    for code in codes:
        # The redirection comes first so the digit is not read as a handle number ("echo 1> f").
        lines += [f":code{code}", f'> "{result_path}" echo {code}', "goto end"]
    lines += [f":{OTHER}", f'> "{result_path}" echo {OTHER}', ":end", ""]
    return "\r\n".join(lines).encode("ascii")


def parse_result(text: str) -> int | None:
    """The code a finished batch wrote (``OTHER_EXIT_CODE`` for "other"); None while it is incomplete."""
    if not text.endswith("\n"):
        return None  # echo writes the line and its CRLF together; without them the file is still being written
    word = text.strip()
    if word == OTHER:
        return OTHER_EXIT_CODE
    if word.isdigit():
        return int(word)
    raise ValueError(f"unexpected result file content {word[:40]!r}")
