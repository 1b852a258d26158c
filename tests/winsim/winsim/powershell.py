"""``powershell.exe`` on a simulated host: just enough PowerShell 2.0 for Ansible's ``raw`` over WinRM.

Ansible's winrm connection runs every command, ``raw`` tasks included, as ``PowerShell -NoProfile
-NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand <base64 of the UTF-16LE script>``. That is
what this program accepts, on hosts whose profile or overrides say ``features: {powershell: "2.0"}``
(2008 R2 has it built in; WMF 2.0 brings it to XP SP3, 2003 SP2, Vista and 2008). Elsewhere
``powershell`` is not recognized, as on a host without it.

What is simulated, and nothing more:

* ``-EncodedCommand`` (base64 of UTF-16LE) or ``-Command <text>``; ``-NoProfile``, ``-NonInteractive``,
  ``-ExecutionPolicy <policy>``, ``-InputFormat``/``-OutputFormat`` text are accepted (``-ExecutionPolicy``
  is a PowerShell 2.0 parameter: 1.0 does not have it, so winsim has no 1.0). ``-Command -`` (a script on
  stdin, what Ansible's modules use) and ``-File`` are refused with a ``winsim:`` message.
* The script must be one statement calling one native program: ``reg query ...``, ``wmic ...``,
  ``cmd /c "..."``. Its arguments are tokenised as PowerShell does in command mode: whitespace separates,
  ``'single'`` quotes are literal (``''`` is one quote), ``"double"`` quotes are removed; then the program's
  command line is rebuilt as PowerShell 2.0 builds it: an argument containing whitespace is wrapped in
  double quotes, every other one is passed as it is. The program is started directly (PowerShell uses
  CreateProcess, not cmd.exe), found the way cmd finds it, and its output passes through unchanged.
* Anything else that needs PowerShell itself -- variables, pipelines, ``;``, redirections, the call
  operator, script blocks, backtick escapes, an argument mixing bare text and quotes, cmdlets -- is refused
  with a ``winsim:`` message and exit code 1: winsim does not pretend to run PowerShell. A word that is
  neither a program of that host nor shaped like a cmdlet fails as PowerShell 2.0 reports it
  (``CommandNotFoundException``).
* Exit code, as documented for ``powershell.exe -Command``: 0 when the last command succeeded, 1 when it
  did not -- a native program's non-zero exit code becomes 1.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cmd import Gen, Io, Shell

VERSIONS = ("2.0",)
_FLAGS = {"-noprofile", "-noninteractive", "-nologo", "-noexit", "-sta", "-mta"}
_WITH_VALUE = {"-executionpolicy", "-inputformat", "-outputformat", "-windowstyle", "-version"}
# Characters that mean PowerShell syntax (not a native command line) when they stand outside quotes.
_SYNTAX = set("|;&<>$`(){}@,")
_CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")


class NotSimulated(Exception):
    """A script (or a use of powershell.exe) that winsim does not run."""


def installed(host: Any) -> bool:
    return str(host.features.get("powershell") or "") in VERSIONS


def run(sh: Shell, rest: str, io: Io) -> Gen:
    from .cmd import argv, b_cmd

    try:
        script = _script(argv(rest))
        word, args = _statement(script)
    except NotSimulated as exc:
        io.error(f"winsim: powershell.exe: {exc}\r\n")
        return 1
    if word.casefold() in ("cmd", "cmd.exe"):
        # cmd.exe is a program to PowerShell; in winsim it is the interpreter itself.
        code = yield from b_cmd(sh, native_arguments(args), io)
        return 0 if code == 0 else 1
    if sh.resolve(word) is None:
        if _CMDLET.match(word):
            io.error(f"winsim: powershell.exe: cmdlets are not simulated ({word})\r\n")
            return 1
        io.error(_not_found(word, script))
        return 1
    result = sh.run_external(word, native_arguments(args), io)
    code = (yield from result) if isinstance(result, Generator) else int(result)
    return 0 if code == 0 else 1


def _script(args: list[str]) -> str:
    """The script text from powershell.exe's own arguments."""
    i = 0
    while i < len(args):
        arg = args[i].casefold()
        if arg in _FLAGS:
            i += 1
        elif arg in _WITH_VALUE:
            i += 2
        elif arg in ("-encodedcommand", "-enc", "-e", "-ec"):
            if i + 1 >= len(args):
                raise NotSimulated("-EncodedCommand without a value")
            return decode(args[i + 1])
        elif arg in ("-command", "-c"):
            text = " ".join(args[i + 1:])
            if text.strip() == "-":
                raise NotSimulated("a script read from stdin (-Command -) is not simulated")
            return text
        elif arg == "-file":
            raise NotSimulated("script files (-File) are not simulated")
        elif arg.startswith("-"):
            raise NotSimulated(f"unknown parameter {args[i]}")
        else:
            return " ".join(args[i:])  # powershell.exe takes the rest of its command line as -Command
    raise NotSimulated("no command given (an interactive PowerShell is not simulated)")


def decode(text: str) -> str:
    """-EncodedCommand's value: base64 of the script in UTF-16LE."""
    try:
        return base64.b64decode(text, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise NotSimulated(f"-EncodedCommand is not base64 of UTF-16LE text ({exc})") from exc


def _statement(script: str) -> tuple[str, list[str]]:
    """The one native command of the script: (program, arguments as PowerShell passes their values)."""
    lines = [line.strip() for line in script.splitlines() if line.strip()]
    if len(lines) != 1:
        raise NotSimulated(f"only a one-line script is simulated, got {len(lines)} lines")
    tokens = tokenize(lines[0])
    if not tokens:
        raise NotSimulated("an empty script")
    return tokens[0], tokens[1:]


def tokenize(line: str) -> list[str]:
    """PowerShell command-mode tokens, each a whole bare word or a whole quoted string."""
    tokens: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char in " \t":
            i += 1
            continue
        if char in "'\"":
            value, i = _quoted(line, i)
        else:
            start = i
            while i < len(line) and line[i] not in " \t":
                if line[i] in _SYNTAX:
                    raise NotSimulated(f"PowerShell syntax ({line[i]!r}) is not simulated: {line}")
                if line[i] in "'\"":
                    raise NotSimulated(f"an argument mixing bare text and quotes is not simulated: {line}")
                i += 1
            value = line[start:i]
            if value.startswith("#"):
                break  # a comment runs to the end of the line
        if i < len(line) and line[i] not in " \t":
            raise NotSimulated(f"an argument mixing quotes and bare text is not simulated: {line}")
        tokens.append(value)
    return tokens


def _quoted(line: str, start: int) -> tuple[str, int]:
    quote = line[start]
    out: list[str] = []
    i = start + 1
    while i < len(line):
        char = line[i]
        if char == quote:
            if i + 1 < len(line) and line[i + 1] == quote:
                out.append(quote)  # '' (or "") inside the string is one quote
                i += 2
                continue
            return "".join(out), i + 1
        if quote == '"' and char in "$`":
            raise NotSimulated(f"expansion inside a double-quoted string ({char!r}) is not simulated: {line}")
        out.append(char)
        i += 1
    raise NotSimulated(f"a string without its closing quote: {line}")


def native_arguments(args: list[str]) -> str:
    """The command line PowerShell 2.0 gives a native program (after its name): an argument with whitespace
    is wrapped in double quotes, anything else goes as it is (quotes inside are not escaped)."""
    return "".join(f' "{a}"' if (not a or any(c in a for c in " \t")) else f" {a}" for a in args)


def _not_found(word: str, script: str) -> str:
    column = script.find(word) + 1
    return (f"The term '{word}' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is "
            "correct and try again.\r\n"
            f"At line:1 char:{column}\r\n+ {word} <<<< \r\n"
            f"    + CategoryInfo          : ObjectNotFound: ({word}:String) [], CommandNotFoundException\r\n"
            "    + FullyQualifiedErrorId : CommandNotFoundException\r\n\r\n")
