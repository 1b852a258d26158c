# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a command on NT 4.0 without WinRM: a batch file on ADMIN$ run by a one-shot service.

The batch file (``%SystemRoot%\\Temp\\kbfix-<random>.cmd``) runs the line with its output redirected to a
``.out`` file, then records the exit code in a ``.res`` file with an ``if errorlevel`` ladder. NT 4.0's cmd.exe
has no delayed expansion (``setlocal enabledelayedexpansion`` and ``!ERRORLEVEL!`` arrived with Windows 2000),
and ``%ERRORLEVEL%`` in a batch line is expanded when the line is read, not after the command ran, so the code
cannot simply be echoed. ``if errorlevel N`` is true when the code is N *or greater*; testing N+1 first and then
N therefore identifies N exactly. The ladder does that for 0 and each code the caller lists (success codes and
the other codes it knows a meaning for); any other code is written as ``other`` (the caller learns "none of the
listed codes", not which one, and ``CommandResult.exit_code`` is None).

cmd.exe keeps the errorlevel as a signed 32-bit number, so a code listed as an unsigned HRESULT (0x80070005) is
put in the ladder as its signed value (-2147024891) and reported back that way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ArgumentError

OTHER = "other"
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


def signed(code: int) -> int:
    """An exit code as cmd.exe's signed errorlevel (0xFFFFFFFF -> -1)."""
    return code - 2 ** 32 if code >= 2 ** 31 else code


def exit_codes(success_codes: Sequence[int] | None, expected_codes: Sequence[int] = ()) -> list[int]:
    """The codes the ladder identifies exactly: 0, the success and the expected codes (signed), highest first."""
    codes = {0}
    for field_name, listed in (("success_codes", success_codes or ()), ("expected_codes", expected_codes)):
        for i, code in enumerate(listed):
            if isinstance(code, bool) or not isinstance(code, int) or not -2 ** 31 <= code < 2 ** 32:
                raise ArgumentError(f"{field_name}[{i}]", f"{code!r} is not a 32-bit exit code")
            codes.add(signed(code))
    return sorted(codes, reverse=True)


def batch_file(line: str, out_path: str, result_path: str, success_codes: Sequence[int] | None,
               expected_codes: Sequence[int] = ()) -> bytes:
    """The whole batch file (CRLF lines, OEM text: the line must be ASCII, which cmd_line's output is)."""
    command = batch_line(line)
    if not command.isascii():
        raise ArgumentError("command", "only ASCII text can be put in a batch file for NT 4.0's OEM code page")
    lines = ["@echo off", f'{command} > "{out_path}" 2>&1']
    codes = exit_codes(success_codes, expected_codes)
    for code in codes:
        # errorlevel >= code+1: a code above this one (and below the previous one) is not listed.
        lines.append(f"if errorlevel {code + 1} goto {OTHER}")
        lines.append(f"if errorlevel {code} goto {_label(code)}")
    lines.append(f"goto {OTHER}")  # below the lowest listed code (an NTSTATUS from a crash, say)
    for code in codes:
        # The redirection comes first so the digit is not read as a handle number ("echo 1> f").
        lines += [f":{_label(code)}", f'> "{result_path}" echo {code}', "goto end"]
    lines += [f":{OTHER}", f'> "{result_path}" echo {OTHER}', ":end", ""]
    return "\r\n".join(lines).encode("ascii")


def _label(code: int) -> str:
    # A label is a word: "code-5" would do in cmd, but "codem5" cannot be misread by anything.
    return f"code{code}" if code >= 0 else f"codem{-code}"


@dataclass(frozen=True)
class Finished:
    """What a finished batch recorded: the exit code, None when it was none of the listed ones."""

    exit_code: int | None


def parse_result(text: str) -> Finished | None:
    """What a finished batch wrote; None while the result file is incomplete."""
    if not text.endswith("\n"):
        return None  # echo writes the line and its CRLF together; without them the file is still being written
    word = text.strip()
    if word == OTHER:
        return Finished(None)
    if re.fullmatch(r"-?\d{1,10}", word):
        return Finished(int(word))
    raise ValueError(f"unexpected result file content {word[:40]!r}")
