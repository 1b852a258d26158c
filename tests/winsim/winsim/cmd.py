"""What a WinRS ``cmd`` shell runs on a simulated host: a small cmd.exe and the tools hotfix work needs.

WinRS starts every command through ``cmd.exe /c``, so a command line is interpreted as cmd does it:

* ``%VAR%`` is expanded once for the whole line before anything runs (``foo & echo %ERRORLEVEL%`` shows the
  errorlevel from *before* ``foo``); unknown variables stay as written. ``^`` escapes, quotes protect.
* ``&``, ``&&``, ``||``, ``|``; redirections ``>``, ``>>``, ``<``, ``2>``, ``2>&1``, ``nul``; ``echo text > f``
  writes "text " *with* the space before ``>``. A line longer than 8,191 characters (2,047 on NT 4.0) is
  refused with "The input line is too long.".
* Built in: ``echo``, ``type``, ``dir``, ``del``/``erase``, ``mkdir``/``md``, ``rmdir``/``rd``, ``copy``, ``cd``,
  ``set`` (also ``/p``), ``exit [/b] [n]``, ``ver``, ``rem``, ``if [not] exist|errorlevel|==``, ``pause``,
  ``cls``, ``title``, ``goto`` (in a batch file). Tools (only where that Windows has them, from the profile's
  ``features.tools``):
  ``hostname``, ``whoami``, ``reg query|add|delete`` (reg.exe 3.0 output on XP/2003, the Vista format after),
  ``wmic <alias> [where ...] get ...`` (table or ``/format:list``; ``\\r\\r\\n`` line ends on a pipe, UTF-16 with
  a BOM when redirected to a file, the one-time "Please wait while WMIC is being installed." on 5.x),
  ``shutdown /r /s /a /t N``, ``certutil [-f] -decode|-encode in out`` and ``-hashfile`` (6.x),
  ``cscript`` (see below), ``find``/``findstr``, ``wusa`` (``/uninstall /kb:N`` from 6.1), ``pkgmgr /up:``.
* A program that is neither built in, a tool of that Windows, nor an existing file fails as cmd.exe does:
  "'x' is not recognized as an internal or external command, operable program or batch file.", exit 1.
* Hotfix packages present on the host, or on a share (``\\\\server\\share\\...`` mapped by the host's
  ``shares`` / ``share_root``) run their installer (see ``packages.py``). A PE that is not a package and
  scripts other than batch files are refused with a ``winsim:`` message: winsim does not pretend to run them.
* Batch files (``.bat``, ``.cmd``) run in the calling cmd, line by line, as NT 4.0's cmd runs them: each line
  is expanded when it is reached (no delayed expansion: ``!VAR!`` is text), ``%0``-``%9`` are the batch's
  arguments and ``%%`` a percent sign, ``@`` hides one line, ``echo off`` the rest, ``:label`` lines are
  skipped, ``goto label`` (case-insensitive, also from ``if errorlevel N goto label``) jumps, a missing label
  ends the batch with "The system cannot find the batch label specified - label", ``exit [n]`` ends cmd
  itself. ``goto :eof`` ends the batch: that is a command extension of Windows 2000's cmd, accepted here
  because NT 4.0 batches written for both systems use it (inferred; a plain ``goto end`` works everywhere).
* ``cscript [//nologo] decoder.vbs in out`` honours one script shape, the usual way to upload binaries to a
  host without certutil (XP): a script that uses ``Msxml2.DOMDocument`` (or ``Microsoft.XMLDOM``) with
  ``dataType = "bin.base64"`` and ``nodeTypedValue``, and ``ADODB.Stream`` ``SaveToFile``, taking its paths
  from ``WScript.Arguments``. winsim then decodes the base64 text file ``WScript.Arguments(0)`` into
  ``WScript.Arguments(1)`` (``SaveToFile ..., 2`` overwrites; without it an existing file is an error).
  Two more shapes read ``WScript.StdIn.ReadAll`` (everything the WinRS client sends up to ``End``): the same
  decoder writing ``WScript.Arguments(0)``, and a copier writing stdin as it came with
  ``FileSystemObject.CreateTextFile(WScript.Arguments(0), True)``. A host with ``features.wsh_enabled: false``
  (Windows Script Host disabled by policy) refuses every script.
* Processes killed by ``terminate`` or by a reboot end with 0xC000013A (STATUS_CONTROL_C_EXIT).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import inspect
import ntpath
import operator
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import packages, pe, powershell
from .machine import (
    REG_BINARY,
    REG_DWORD,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_TYPE_NAMES,
    FileSystemError,
    normalize_path,
)
from .wmi import Instance, WmiError

if TYPE_CHECKING:
    from .machine import Host

OEM = "cp437"
KILLED = -1073741510  # 0xC000013A STATUS_CONTROL_C_EXIT


class _NeedLine:
    """Yielded by a command that reads a line of stdin; the process sends back the line or None (EOF)."""


class _NeedAll:
    """Yielded by a program that reads its stdin to the end (``findstr``, a script reading ``WScript.StdIn``);
    the process sends back everything the client wrote, once the client has ended the stream (``End``)."""


class _Block:
    """Yielded by a program that waits for a user who never comes (an installer's wizard)."""


NEED_LINE = _NeedLine()
NEED_ALL = _NeedAll()
BLOCK = _Block()
Request = _NeedLine | _NeedAll | _Block
Gen = Generator[Request, "str | bytes | None", int]


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# --- the process --------------------------------------------------------------------------------------


class Process:
    """A process started in a WinRS shell. Output is cmd's OEM code page (437)."""

    def __init__(self, host: Host, command: str, arguments: list[str], cwd: str | None) -> None:
        self.host = host
        self.command_line = " ".join([command, *arguments]).strip()
        self._cwd = cwd
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._stdin = bytearray()
        self._stdin_closed = False
        self._exit: int | None = None
        self._gen: Gen | None = None
        self._request: Request | None = None

    def start(self) -> None:
        with self.host.lock:
            shell = Shell(self.host, self, self._cwd)
            self._gen = shell.run_program(self.command_line, top=True)
            self._pump(first=True)

    def write_stdin(self, data: bytes, end: bool) -> None:
        with self.host.lock:
            if self._exit is not None:
                return
            self._stdin += data
            self._stdin_closed = self._stdin_closed or end
            self._pump()

    def read(self) -> tuple[bytes, bytes, int | None]:
        with self.host.lock:
            self.host.is_up()  # a due reboot kills the process first
            self._pump()
            out, err = bytes(self._stdout), bytes(self._stderr)
            self._stdout.clear()
            self._stderr.clear()
            return out, err, self._exit

    def terminate(self) -> None:
        with self.host.lock:
            self._kill()

    def kill_for_shutdown(self) -> None:
        self._kill()

    @property
    def finished(self) -> bool:
        return self._exit is not None

    def _kill(self) -> None:
        if self._exit is None:
            self._exit = KILLED
            gen, self._gen = self._gen, None
            # A process can end itself (``shutdown /r /t 0`` inside it): its generator is then running and
            # is simply dropped once it yields back to _pump.
            if gen is not None and inspect.getgeneratorstate(gen) != inspect.GEN_RUNNING:
                gen.close()

    def _next_line(self) -> str | bool | None:
        """The next stdin line, None at end of input, False when more input must arrive first."""
        if b"\n" in self._stdin:
            raw, _, rest = bytes(self._stdin).partition(b"\n")
            self._stdin = bytearray(rest)
            return raw.rstrip(b"\r").decode(OEM)
        if self._stdin_closed:
            if self._stdin:
                raw = bytes(self._stdin)
                self._stdin.clear()
                return raw.rstrip(b"\r").decode(OEM)
            return None
        return False

    def _pump(self, first: bool = False) -> None:
        while self._exit is None and self._gen is not None:
            try:
                if first:
                    first = False
                    self._request = next(self._gen)
                elif isinstance(self._request, _NeedLine):
                    line = self._next_line()
                    if line is False:
                        return
                    self._request = self._gen.send(line if isinstance(line, str) else None)
                elif isinstance(self._request, _NeedAll):
                    # A pipe: the reader blocks until the writer closes it (WinRS: a Send with End="true").
                    if not self._stdin_closed:
                        return
                    data, self._stdin = bytes(self._stdin), bytearray()
                    self._request = self._gen.send(data)
                else:
                    return  # blocked until terminated
            except StopIteration as stop:
                if self._exit is None:
                    self._exit = int(stop.value or 0)
                self._gen = None


@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit_code: int | None  # None: still running (waiting for input or a user)

    @property
    def out(self) -> str:
        return self.stdout.decode(OEM)

    @property
    def err(self) -> str:
        return self.stderr.decode(OEM)


def run_command(host: Host, line: str, stdin: bytes | None = None) -> CommandResult:
    """Run ``line`` as a WinRS command (WinRS hands it to ``cmd.exe /c``), feed ``stdin`` (then end it) and
    collect everything. A process still running afterwards (an installer's wizard) is terminated, its
    exit_code left None."""
    process = host.start_process(line, [], None)
    if stdin is not None:
        process.write_stdin(stdin, True)
    out, err, code = process.read()
    if code is None:
        process.terminate()
    return CommandResult(out, err, code)


# --- output sinks -------------------------------------------------------------------------------------


class Sink:
    """Where a command's stdout or stderr goes: the process streams, a file, a pipe buffer or nul."""

    def __init__(self, target: bytearray | None, path: str | None = None, append: bool = False) -> None:
        self.target = target  # None: nul
        self.path = path
        self.append = append

    @property
    def is_file(self) -> bool:
        return self.path is not None

    def write(self, data: bytes) -> None:
        if self.target is not None:
            self.target += data


# --- parsing ------------------------------------------------------------------------------------------


def split_operators(line: str) -> list[tuple[str, str]]:
    """``a & b && c || d`` -> [("", "a "), ("&", " b "), ("&&", " c "), ("||", " d")]; ``|`` stays inside."""
    parts: list[tuple[str, str]] = []
    op, current, quoted, i = "", [], False, 0
    while i < len(line):
        char = line[i]
        if char == '"':
            quoted = not quoted
        elif char == "^" and not quoted and i + 1 < len(line):
            current.append(line[i:i + 2])
            i += 2
            continue
        elif not quoted and char == "&" and current and current[-1] in "<>":
            pass  # ">&2" is a handle redirection, not a command separator
        elif not quoted and char == "&":
            parts.append((op, "".join(current)))
            current = []
            if line[i:i + 2] == "&&":
                op, i = "&&", i + 2
            else:
                op, i = "&", i + 1
            continue
        elif not quoted and line[i:i + 2] == "||":
            parts.append((op, "".join(current)))
            current, op, i = [], "||", i + 2
            continue
        current.append(char)
        i += 1
    parts.append((op, "".join(current)))
    return parts


def split_pipes(text: str) -> list[str]:
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif char == "^" and not quoted and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        elif char == "|" and not quoted:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def parse_redirections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Remove redirections from a simple command: (command text, [(">1"|">>1"|">2"|"<0"|"2>&1"..., target)]).
    A handle digit counts only when it stands alone before ``>`` (``echo a2>f`` writes "a2")."""
    out: list[str] = []
    redirs: list[tuple[str, str]] = []
    quoted, i = False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif char == "^" and not quoted and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        elif not quoted and char in "<>":
            handle = "0" if char == "<" else "1"
            if char == ">" and out and out[-1] in "0123456789" and (len(out) == 1 or out[-2] in " \t"):
                handle = out.pop()
            op = char
            i += 1
            if char == ">" and i < len(text) and text[i] == ">":
                op, i = ">>", i + 1
            if i < len(text) and text[i] == "&" and i + 1 < len(text) and text[i + 1].isdigit():
                redirs.append((f"{handle}{op}&", text[i + 1]))
                i += 2
                continue
            while i < len(text) and text[i] in " \t":
                i += 1
            start, in_quotes = i, False
            while i < len(text) and (in_quotes or text[i] not in " \t<>&|"):
                if text[i] == '"':
                    in_quotes = not in_quotes
                i += 1
            redirs.append((f"{handle}{op}", text[start:i].replace('"', "")))
            continue
        out.append(char)
        i += 1
    return "".join(out), redirs


def unescape(text: str) -> str:
    """Remove cmd's ``^`` escapes outside quotes."""
    out, quoted, i = [], False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif char == "^" and not quoted and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def argv(text: str) -> list[str]:
    """CommandLineToArgvW rules: whitespace separates, quotes group, ``\\"`` is a quote, backslashes before a
    quote are halved."""
    args: list[str] = []
    current: list[str] = []
    in_arg = quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t" and not quoted:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
            i += 1
            continue
        in_arg = True
        if char == "\\":
            count = 0
            while i < len(text) and text[i] == "\\":
                count += 1
                i += 1
            if i < len(text) and text[i] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    i += 1
            else:
                current.append("\\" * count)
            continue
        if char == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current.append('"')
                i += 2
                continue
            quoted = not quoted
            i += 1
            continue
        current.append(char)
        i += 1
    if in_arg:
        args.append("".join(current))
    return args


def split_command(text: str) -> tuple[str, str]:
    """(command word, rest) -- the rest keeps its leading delimiter, as ``echo`` needs it."""
    stripped = text.lstrip(" \t@")
    if stripped.startswith('"'):
        end = stripped.find('"', 1)
        end = len(stripped) if end < 0 else end + 1
        return stripped[:end].strip('"'), stripped[end:]
    match = re.match(r"[^\s,;=(/+\"]+", stripped)
    word = match.group(0) if match else ""
    # cmd splits a built-in's name from ``.``, ``\`` and ``:`` too (``echo.``, ``cd\``, ``echo:``).
    for builtin in sorted(BUILTIN_NAMES, key=len, reverse=True):
        if word.casefold().startswith(builtin) and len(word) > len(builtin) and word[len(builtin)] in ".\\:[]":
            return word[:len(builtin)], stripped[len(builtin):]
    return word, stripped[len(word):]


# --- the shell ----------------------------------------------------------------------------------------

Handler = Callable[["Shell", str, "Io"], Any]


class Io:
    """The standard handles of one simple command."""

    def __init__(self, out: Sink, err: Sink, stdin: bytes | None) -> None:
        self.out = out
        self.err = err
        self.stdin = stdin

    def print(self, text: str) -> None:
        self.out.write(text.encode(OEM, "replace"))

    def error(self, text: str) -> None:
        self.err.write(text.encode(OEM, "replace"))


class Shell:
    """One cmd.exe instance: its environment, current directory and errorlevel."""

    def __init__(self, host: Host, process: Process, cwd: str | None,
                 env: dict[str, str] | None = None) -> None:
        self.host = host
        self.process = process
        self.env = dict(env) if env is not None else host.environment()
        self.cwd = normalize_path(cwd) if cwd else host.user_profile
        if not host.fs.is_dir(self.cwd):
            self.cwd = host.user_profile
        self.errorlevel = 0
        self.echo_on = True

    # environment ---------------------------------------------------------------------------------------

    def getenv(self, name: str) -> str | None:
        folded = name.casefold()
        dynamic = {
            "errorlevel": str(self.errorlevel), "cd": self.cwd,
            "date": f"{dt.datetime.now():%a %m/%d/%Y}", "time": f"{dt.datetime.now():%H:%M:%S.00}",
            "random": str(int(dt.datetime.now().timestamp() * 1000) % 32768),
        }
        for key, value in self.env.items():
            if key.casefold() == folded:
                return value
        return dynamic.get(folded)

    def setenv(self, name: str, value: str | None) -> None:
        for key in list(self.env):
            if key.casefold() == name.casefold():
                del self.env[key]
        if value:
            self.env[name] = value

    def expand(self, line: str) -> str:
        def sub(match: re.Match[str]) -> str:
            value = self.getenv(match.group(1))
            return match.group(0) if value is None else value

        return re.sub(r"%([^%\s][^%]*?)%", sub, line)

    # paths ---------------------------------------------------------------------------------------------

    def full_path(self, path: str) -> str:
        text = path.strip().strip('"')
        if text.startswith("\\\\"):
            return text
        if len(text) >= 2 and text[1] == ":":
            if len(text) == 2 or text[2] not in "\\/":
                text = ntpath.join(self.cwd, text[2:]) if text[0].upper() == self.cwd[0].upper() else text
        elif text.startswith(("\\", "/")):
            text = self.cwd[:2] + text
        else:
            text = ntpath.join(self.cwd, text)
        return normalize_path(text)

    def share_path(self, unc: str) -> Path | None:
        """The directory behind ``\\\\server\\share\\rest`` (read-only), None when no share maps it."""
        parts = [p for p in unc.strip("\\").split("\\") if p]
        if len(parts) < 2:
            return None
        root: Path | None = None
        prefix = f"\\\\{parts[0]}\\{parts[1]}".casefold()
        for name, directory in self.host.shares.items():
            if name.rstrip("\\").casefold() == prefix:
                root = Path(directory)
        if root is None and self.host.share_root:
            root = _find_ci(Path(self.host.share_root), parts[:2])
        if root is None:
            return None
        target = _find_ci(root, parts[2:])
        if target is None:
            return root.joinpath(*parts[2:])
        resolved = target.resolve()
        if root.resolve() not in (resolved, *resolved.parents):
            return None
        return resolved

    def read_file(self, path: str) -> bytes:
        """Bytes of a host file or a share file; FileSystemError as Windows reports the failure."""
        full = self.full_path(path)
        if full.startswith("\\\\"):
            local = self.share_path(full)
            if local is None:
                raise FileSystemError(53, "The network path was not found.")
            if not local.is_file():
                raise FileSystemError(2, "The system cannot find the file specified.")
            return local.read_bytes()
        if self.host.fs.is_dir(full):
            raise FileSystemError(5, "Access is denied.")
        return self.host.fs.read(full)

    def file_exists(self, path: str) -> bool:
        full = self.full_path(path)
        if full.startswith("\\\\"):
            local = self.share_path(full)
            return local is not None and local.exists()
        return self.host.fs.exists(full)

    # running -------------------------------------------------------------------------------------------

    def run_program(self, command_line: str, top: bool = False) -> Gen:
        """The process entry point: WinRS runs the command line as ``cmd /c``."""
        try:
            code = yield from self.run_line(command_line, Io(Sink(self.process._stdout),
                                                                Sink(self.process._stderr), None))
        except _Exit as exit_:
            code = exit_.code
        except _Goto:
            code = self.errorlevel  # goto outside a batch file does nothing
        self.host.save()
        return code

    def run_line(self, line: str, io: Io) -> Gen:
        limit = 2047 if self.host.os.major < 5 else 8191
        if len(line) > limit:
            io.error("The input line is too long.\r\n")
            self.errorlevel = 1
            return 1
        expanded = self.expand(line)
        ok = True
        for op, segment in split_operators(expanded):
            if (op == "&&" and not ok) or (op == "||" and ok):
                continue
            if not segment.strip():
                if op:
                    io.error(f"{op} was unexpected at this time.\r\n")
                    self.errorlevel = 255
                    return 255
                continue
            code = yield from self.run_pipeline(segment, io)
            ok = code == 0
        return self.errorlevel

    def run_pipeline(self, text: str, io: Io) -> Gen:
        stages = split_pipes(text)
        stdin = io.stdin
        code = 0
        for index, stage in enumerate(stages):
            last = index == len(stages) - 1
            buffer = bytearray()
            out = io.out if last else Sink(buffer)
            code = yield from self.run_simple(stage, Io(out, io.err, stdin))
            stdin = bytes(buffer)
        return code

    def run_simple(self, text: str, io: Io) -> Gen:
        command_text, redirs = parse_redirections(text)
        stage_io = self._open_redirections(redirs, io)
        if stage_io is None:
            self.errorlevel = 1
            return 1
        try:
            code = yield from self.dispatch(command_text, stage_io)
        finally:
            self._flush(stage_io)
        self.errorlevel = code
        return code

    def _open_redirections(self, redirs: list[tuple[str, str]], io: Io) -> Io | None:
        out, err, stdin = io.out, io.err, io.stdin
        for op, target in redirs:
            if op.endswith("&"):
                if op.startswith("2") and target == "1":
                    err = out
                elif op.startswith("1") and target == "2":
                    out = err
                continue
            if op.startswith("0"):
                try:
                    stdin = self.read_file(target)
                except FileSystemError as exc:
                    io.error(_win_message(exc) + "\r\n")
                    return None
                continue
            sink = self._file_sink(target, append=">>" in op, io=io)
            if sink is None:
                return None
            if op.startswith("2"):
                err = sink
            elif op.startswith("1"):
                out = sink
            # handles 3-9: the file is created, nothing the command prints goes there
        return Io(out, err, stdin)

    def _file_sink(self, target: str, append: bool, io: Io) -> Sink | None:
        if ntpath.basename(target.strip('"')).split(".")[0].casefold() == "nul":
            return Sink(None)
        full = self.full_path(target)
        fs = self.host.fs
        if full.startswith("\\\\"):
            io.error("Access is denied.\r\n")
            return None
        if not fs.is_dir(ntpath.dirname(full)):
            io.error("The system cannot find the path specified.\r\n")
            return None
        if fs.is_dir(full):
            io.error("Access is denied.\r\n")
            return None
        entry = fs.entry(full)
        if entry is not None and self.host.file_in_use(full):
            io.error("The process cannot access the file because it is being used by another process.\r\n")
            return None
        if not append or entry is None:
            fs.write(full, b"")  # cmd opens (creates or truncates) the file before the command runs
        return Sink(bytearray(), full, append=True)

    def _flush(self, io: Io) -> None:
        for sink in {id(s): s for s in (io.out, io.err)}.values():
            if sink.path is not None and sink.target:
                self.host.fs.write(sink.path, bytes(sink.target), append=True)
                sink.target.clear()

    def dispatch(self, text: str, io: Io) -> Gen:
        word, rest = split_command(text)
        if not word:
            return self.errorlevel
        handler = BUILTINS.get(word.casefold())
        if handler is not None:
            result = handler(self, rest, io)
        else:
            result = self.run_external(word, unescape(rest), io)
        if isinstance(result, Generator):
            code = yield from result
        else:
            code = result
        return int(code)

    # external programs ---------------------------------------------------------------------------------

    def resolve(self, word: str) -> tuple[str, str] | None:
        """("tool", name) | ("file", full path) | None."""
        exts = [e.casefold() for e in (self.getenv("PATHEXT") or ".COM;.EXE;.BAT;.CMD").split(";") if e]
        has_ext = "." in ntpath.basename(word)
        candidates = [word] if has_ext else [word + e for e in exts]
        if any(sep in word for sep in "\\/:"):
            for name in candidates:
                if self.file_exists(name) and not self.host.fs.is_dir(self.full_path(name)):
                    return "file", self.full_path(name)
            return self._system_program(word)
        for name in candidates:
            path = self.full_path(name)
            if self.host.fs.entry(path) is not None:
                return "file", path
        stem = word.rsplit(".", 1)[0] if has_ext and word.casefold().endswith(".exe") else word
        if stem.casefold() in TOOLS and self.has_program(stem) and (not has_ext or word.casefold().endswith(".exe")):
            return "tool", stem.casefold()
        for directory in (self.getenv("PATH") or "").split(";"):
            if not directory:
                continue
            for name in candidates:
                path = normalize_path(ntpath.join(directory, name))
                if self.host.fs.entry(path) is not None:
                    return "file", path
        return None

    def has_program(self, name: str) -> bool:
        # powershell.exe comes with WMF 2.0 (built into 2008 R2) as a feature, not with the profile's tools.
        if name.casefold() == "powershell":
            return powershell.installed(self.host)
        return self.host.has_tool(name)

    def _system_program(self, word: str) -> tuple[str, str] | None:
        """A tool or cmd.exe named by its full path (``C:\\WINDOWS\\system32\\cmd.exe``): winsim keeps them
        virtual, not as files, so they are recognised by where Windows installs them."""
        full = self.full_path(word)
        directory, base = ntpath.split(full)
        stem = base[:-4] if base.casefold().endswith(".exe") else base
        homes = {normalize_path(self.host.system32).casefold(),
                 normalize_path(self.host.system32 + "\\wbem").casefold()}
        if directory.casefold() not in homes:
            return None
        if stem.casefold() == "cmd":
            return "cmd", "cmd"
        if stem.casefold() in TOOLS and self.has_program(stem):
            return "tool", stem.casefold()
        return None

    def run_external(self, word: str, rest: str, io: Io) -> Any:
        found = self.resolve(word)
        if found is None:
            io.error(f"'{word}' is not recognized as an internal or external command,\r\n"
                     "operable program or batch file.\r\n")
            return 1
        kind, name = found
        if kind == "cmd":
            return b_cmd(self, rest, io)
        if kind == "tool":
            return TOOLS[name](self, rest, io)
        return self.run_file(name, rest, io)

    def run_file(self, path: str, rest: str, io: Io) -> Gen:
        args = argv(rest)
        extension = ntpath.splitext(path)[1].casefold()
        try:
            data = self.read_file(path)
        except FileSystemError as exc:
            io.error(_win_message(exc) + "\r\n")
            return 1
        if extension == ".msu":
            return (yield from self._installer(packages.run_wusa(self.host, path, data, args), io))
        if extension in (".bat", ".cmd"):
            return (yield from self.run_batch(path, data, args, io))
        if extension not in (".exe", ".com"):
            io.error(f"winsim: cannot run {path}: only hotfix packages and built-in tools are simulated\r\n")
            return 1
        if pe.read_version_info(data) is None:
            io.error(f"{path} is not a valid Win32 application.\r\n")
            return 1
        outcome = packages.run_executable(self.host, path, data, args)
        if outcome is None:
            io.error(f"winsim: cannot run {path}: it is not a hotfix package\r\n")
            return 1
        return (yield from self._installer(outcome, io))

    def run_batch(self, path: str, data: bytes, args: list[str], io: Io) -> Gen:
        """Run a batch file in this shell (its ``set`` and ``cd`` stay, as in cmd); see the module docstring."""
        lines = data.decode(OEM, "replace").replace("\r\n", "\n").split("\n")
        labels: dict[str, int] = {}
        for index, raw in enumerate(lines):
            label = _batch_label(raw)
            if label is not None:
                labels.setdefault(label, index)
        params = [path, *args]
        counter = 0
        while counter < len(lines):
            raw = lines[counter].strip()
            counter += 1
            if not raw or raw.startswith(":"):
                continue
            quiet = raw.startswith("@")
            line = _batch_params(raw.lstrip("@").lstrip(), params)
            if self.echo_on and not quiet:
                io.print(f"\r\n{self.cwd}>{line}\r\n")
            try:
                yield from self.run_line(line, io)
            except _Goto as jump:
                if jump.label == "eof":
                    break
                if jump.label not in labels:
                    io.error(f"The system cannot find the batch label specified - {jump.label}\r\n")
                    self.errorlevel = 1
                    break
                counter = labels[jump.label] + 1
        return self.errorlevel

    def _installer(self, outcome: packages.InstallOutcome, io: Io) -> Gen:
        if outcome.stdout:
            io.print(outcome.stdout)
        if outcome.hang:
            while True:
                yield BLOCK
        return outcome.exit_code

    def read_line(self, io: Io) -> Generator[Request, str | None, str | None]:
        """A line from the command's stdin: a pipe or file when redirected, else the process's stdin."""
        if io.stdin is not None:
            text = io.stdin.decode(OEM)
            line, sep, rest = text.partition("\n")
            io.stdin = rest.encode(OEM) if sep else b""
            return line.rstrip("\r") if (sep or line) else None
        answer = yield NEED_LINE
        return answer if isinstance(answer, str) or answer is None else answer.decode(OEM)

    def read_all(self, io: Io) -> Generator[Request, str | bytes | None, bytes]:
        """Everything on the command's stdin: a pipe or file when redirected, else the process's stdin (what
        the WinRS client sends, up to its ``End``)."""
        if io.stdin is not None:
            data, io.stdin = io.stdin, b""
            return data
        answer = yield NEED_ALL
        return answer if isinstance(answer, bytes) else b""


class _Goto(Exception):
    """``goto`` unwinds the line it is on (an ``if``, an ``&`` chain) back to the batch that runs it."""

    def __init__(self, label: str) -> None:
        self.label = label


def _batch_label(line: str) -> str | None:
    # cmd matches a label by its first word, case-insensitively; "::" comments are labels nobody jumps to.
    text = line.strip()
    if not text.startswith(":"):
        return None
    words = text[1:].split()
    return words[0].casefold() if words else None


def _batch_params(line: str, params: list[str]) -> str:
    """``%0``-``%9`` and ``%%`` of a batch line (done before the line's %VAR% expansion)."""
    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "%%":
            return "%"
        index = int(token[1])
        return params[index] if index < len(params) else ""

    return re.sub(r"%%|%[0-9]", sub, line)


def _find_ci(base: Path, parts: list[str]) -> Path | None:
    """``base/parts...`` matching each component case-insensitively (shares are Windows paths)."""
    current = base
    for part in parts:
        if part in ("..", "."):
            return None
        if not current.is_dir():
            return None
        exact = current / part
        if exact.exists():
            current = exact
            continue
        match = next((c for c in current.iterdir() if c.name.casefold() == part.casefold()), None)
        if match is None:
            return None
        current = match
    return current


def _win_message(exc: FileSystemError) -> str:
    return {2: "The system cannot find the file specified.", 3: "The system cannot find the path specified.",
            5: "Access is denied.", 32: "The process cannot access the file because it is being used by another "
            "process.", 53: "The network path was not found."}.get(exc.winerror, str(exc))


# --- built-in commands --------------------------------------------------------------------------------


def b_echo(sh: Shell, rest: str, io: Io) -> int:
    text = unescape(rest)
    if not text.strip():
        if text[:1] in (".", ":", "\\", "[", "]", "(", "/", "+", ","):
            io.print("\r\n")
        else:
            io.print(f"ECHO is {'on' if sh.echo_on else 'off'}.\r\n")
        return 0
    body = text[1:]
    if text[0] in ".:(":
        io.print(body + "\r\n")
        return 0
    if body.strip().casefold() in ("on", "off"):
        sh.echo_on = body.strip().casefold() == "on"
        return 0
    io.print(body + "\r\n")
    return 0


def b_type(sh: Shell, rest: str, io: Io) -> int:
    names = argv(unescape(rest))
    if not names:
        io.error("The syntax of the command is incorrect.\r\n")
        return 1
    code = 0
    for name in names:
        try:
            data = sh.read_file(name)
        except FileSystemError as exc:
            io.error(_win_message(exc) + "\r\n")
            code = 1
            continue
        if len(names) > 1:
            io.error(f"\r\n{name}\r\n\r\n\r\n")
        io.out.write(data)
    return code


def _switch_and_names(rest: str, switch: str) -> tuple[bool, list[str]]:
    """A built-in's arguments as cmd.exe splits them: whether ``switch`` (``/q``, any case) is given, and the
    operands (everything not starting with ``/``)."""
    args = argv(unescape(rest))
    return any(a.casefold() == switch for a in args), [a for a in args if not a.startswith("/")]


def b_del(sh: Shell, rest: str, io: Io) -> Gen:
    quiet, names = _switch_and_names(rest, "/q")
    if not names:
        io.error("The syntax of the command is incorrect.\r\n")
        return 1
    fs = sh.host.fs
    for name in names:
        full = sh.full_path(name)
        matches = _glob(sh, full)
        everything = fs.is_dir(full) or ntpath.basename(full) in ("*", "*.*")
        if fs.is_dir(full):
            matches = [e for e in fs.listdir(full) if fs.entry(e) is not None]
        if not matches:
            io.error(f"Could Not Find {full}\r\n")
            continue
        if everything and not quiet:
            # Deleting a whole directory's files asks first, unless /Q.
            target = full.rstrip("\\") + "\\*" if fs.is_dir(full) else full
            io.print(f"{target}, Are you sure (Y/N)? ")
            answer = yield from sh.read_line(io)
            io.print("\r\n")
            if not answer or answer.strip()[:1].casefold() != "y":
                continue
        for path in matches:
            if sh.host.file_in_use(path):
                io.error(f"{path}\r\nThe process cannot access the file because it is being used by another "
                         "process.\r\n")
                continue
            fs.delete(path)
    return 0  # del leaves the errorlevel at 0 even when a file was not found


def _glob(sh: Shell, full: str) -> list[str]:
    directory, pattern = ntpath.split(full)
    fs = sh.host.fs
    if not any(c in pattern for c in "*?"):
        return [full] if fs.entry(full) is not None else []
    return [p for p in fs.listdir(directory)
            if fs.entry(p) is not None and fnmatch.fnmatch(ntpath.basename(p).casefold(), pattern.casefold())]


def b_mkdir(sh: Shell, rest: str, io: Io) -> int:
    names = argv(unescape(rest))
    if not names:
        io.error("The syntax of the command is incorrect.\r\n")
        return 1
    code = 0
    for name in names:
        full = sh.full_path(name)
        if sh.host.fs.exists(full):
            io.error(f"A subdirectory or file {name} already exists.\r\n")
            code = 1
            continue
        try:
            sh.host.fs.mkdir(full)
        except FileSystemError as exc:
            io.error(_win_message(exc) + "\r\n")
            code = 1
    return code


def b_rmdir(sh: Shell, rest: str, io: Io) -> int:
    recursive, names = _switch_and_names(rest, "/s")
    if not names:
        io.error("The syntax of the command is incorrect.\r\n")
        return 1
    fs = sh.host.fs
    for name in names:
        full = sh.full_path(name)
        if not fs.is_dir(full):
            io.error("The system cannot find the file specified.\r\n")
            return 2
        if recursive:
            prefix = full.casefold().rstrip("\\") + "\\"
            for path in [e.path for k, e in fs.files.items() if k.startswith(prefix)]:
                fs.delete(path)
            for key in sorted((k for k in fs.dirs if k.startswith(prefix)), key=len, reverse=True):
                del fs.dirs[key]
        try:
            fs.rmdir(full)
        except FileSystemError as exc:
            io.error(_win_message(exc) + "\r\n")
            return 145 if exc.winerror == 145 else 1
    return 0


def b_copy(sh: Shell, rest: str, io: Io) -> Gen:
    overwrite, names = _switch_and_names(rest, "/y")
    if len(names) not in (1, 2):
        io.error("The syntax of the command is incorrect.\r\n")
        return 1
    source = names[0]
    try:
        data = sh.read_file(source)
    except FileSystemError as exc:
        io.error(_win_message(exc) + "\r\n")
        io.print("        0 file(s) copied.\r\n")
        return 1
    dest = sh.full_path(names[1]) if len(names) == 2 else sh.cwd
    fs = sh.host.fs
    if fs.is_dir(dest):
        dest = ntpath.join(dest, ntpath.basename(sh.full_path(source).rstrip("\\")))
    if dest.startswith("\\\\"):
        io.error("Access is denied.\r\n")
        io.print("        0 file(s) copied.\r\n")
        return 1
    if fs.entry(dest) is not None and not overwrite:
        io.print(f"Overwrite {dest}? (Yes/No/All): ")
        answer = yield from sh.read_line(io)
        if not answer or answer.strip()[:1].casefold() not in ("y", "a"):
            io.print("\r\n        0 file(s) copied.\r\n")
            return 0
    try:
        if sh.full_path(source).startswith("\\\\"):
            fs.write(dest, data)
        else:
            entry = fs.entry(sh.full_path(source))
            assert entry is not None
            if sh.host.file_in_use(dest):
                raise FileSystemError(32, "in use")
            fs.place(dest, entry.ref, entry.size, entry.modified)
    except FileSystemError as exc:
        io.error(_win_message(exc) + "\r\n")
        io.print("        0 file(s) copied.\r\n")
        return 1
    io.print("        1 file(s) copied.\r\n")
    return 0


def b_cd(sh: Shell, rest: str, io: Io) -> int:
    target = unescape(rest).strip()
    if target.casefold().startswith("/d"):
        target = target[2:].strip()
    if not target:
        io.print(sh.cwd + "\r\n")
        return 0
    full = sh.full_path(target)
    if not sh.host.fs.is_dir(full):
        io.error("The system cannot find the path specified.\r\n")
        return 1
    sh.cwd = full
    return 0


def b_set(sh: Shell, rest: str, io: Io) -> Any:
    text = unescape(rest).strip()
    if text.casefold().startswith("/p"):
        raw = unescape(rest).lstrip()
        return _set_prompt(sh, raw[2:].lstrip(), io)  # the prompt keeps its trailing blanks
    if text.casefold().startswith("/a"):
        io.error("winsim: set /a is not simulated\r\n")
        return 1
    if text.startswith('"') and text.count('"') >= 2:
        text = text[1:text.rfind('"')]
    if "=" not in text:
        listing = sorted(sh.env.items(), key=lambda kv: kv[0].casefold())
        found = [f"{k}={v}\r\n" for k, v in listing if k.casefold().startswith(text.casefold())]
        if not found:
            io.error(f"Environment variable {text} not defined\r\n")
            return 1
        io.print("".join(found))
        return 0
    name, _, value = text.partition("=")
    sh.setenv(name, value)
    return 0


def _set_prompt(sh: Shell, text: str, io: Io) -> Gen:
    name, _, prompt = text.partition("=")
    io.print(prompt)
    line = yield from sh.read_line(io)
    if line is None:
        return 1
    sh.setenv(name, line)
    return 0


def b_exit(sh: Shell, rest: str, io: Io) -> int:
    args = unescape(rest).split()
    if args and args[0].casefold() == "/b":
        args = args[1:]
    code = sh.errorlevel
    if args:
        try:
            code = int(args[0])
        except ValueError:
            code = 0
    raise _Exit(code)


def b_ver(sh: Shell, rest: str, io: Io) -> int:
    io.print("\r\n" + _version_banner(sh.host) + "\r\n")
    return 0


def _version_banner(host: Host) -> str:
    o = host.os
    if o.major < 5:
        return "Windows NT Version 4.0  "
    if (o.major, o.minor) == (5, 1):
        return f"Microsoft Windows XP [Version {o.version}]"
    return f"Microsoft Windows [Version {o.version}]"


def b_rem(sh: Shell, rest: str, io: Io) -> int:
    return sh.errorlevel


def b_noop(sh: Shell, rest: str, io: Io) -> int:
    return 0


def b_pause(sh: Shell, rest: str, io: Io) -> Gen:
    io.print("Press any key to continue . . . ")
    yield from sh.read_line(io)
    io.print("\r\n")
    return 0


def b_if(sh: Shell, rest: str, io: Io) -> Gen:
    text = rest.strip()
    negate = False
    insensitive = False
    if text[:3].casefold() == "/i ":
        insensitive, text = True, text[3:].lstrip()
    if text[:4].casefold() == "not ":
        negate, text = True, text[4:].lstrip()
    match = re.match(r"(?i)(exist|errorlevel)\s+(\"[^\"]*\"|\S+)\s+(.*)$", text)
    if match:
        kind, operand, command = match.group(1).casefold(), match.group(2), match.group(3)
        if kind == "exist":
            condition = sh.file_exists(operand)
        else:
            try:
                condition = sh.errorlevel >= int(operand)
            except ValueError:
                io.error(f"{operand} was unexpected at this time.\r\n")
                return 255
    else:
        cmp = re.match(r"(\"[^\"]*\"|[^=\s]+)\s*==\s*(\"[^\"]*\"|\S+)\s+(.*)$", text)
        if not cmp:
            io.error("The syntax of the command is incorrect.\r\n")
            return 1
        left, right, command = cmp.group(1), cmp.group(2), cmp.group(3)
        condition = left.casefold() == right.casefold() if insensitive else left == right
    if condition != negate:
        return (yield from sh.run_simple(command, io))
    return sh.errorlevel


def b_goto(sh: Shell, rest: str, io: Io) -> int:
    label = unescape(rest).strip().lstrip(":").split()
    if not label:
        io.error("No batch label specified to GOTO command.\r\n")
        return 1
    raise _Goto(label[0].casefold())


def b_cmd(sh: Shell, rest: str, io: Io) -> Gen:
    """A nested ``cmd``: ``/c`` and ``/k`` run a line in a child shell; without them it reads stdin."""
    text = rest.strip()
    switch = re.match(r"(?i)((?:/[a-z](?::\S*)?\s*)*?)/([ck])\s?(.*)$", text, re.S)
    child = Shell(sh.host, sh.process, sh.cwd, sh.env)
    if switch:
        line = switch.group(3)
        if line.startswith('"') and line.count('"') >= 2:
            line = line[1:line.rfind('"')] + line[line.rfind('"') + 1:]
        try:
            code = yield from child.run_line(line, io)
        except _Exit as exit_:
            code = exit_.code
        except _Goto:
            code = child.errorlevel  # goto outside a batch file does nothing
        return code
    return (yield from _interactive(child, io))


def _interactive(sh: Shell, io: Io) -> Gen:
    host = sh.host
    if host.os.major < 5:
        banner = "Microsoft(R) Windows NT(TM)\r\n(C) Copyright 1985-1996 Microsoft Corp."
    elif host.os.nt6:
        year = 2006 if host.os.minor == 0 else 2009
        banner = f"{_version_banner(host)}\r\nCopyright (c) {year} Microsoft Corporation.  All rights reserved."
    else:
        banner = f"{_version_banner(host)}\r\n(C) Copyright 1985-{2001 if host.os.minor == 1 else 2003} " \
                 "Microsoft Corp."
    io.print(banner + "\r\n\r\n" + sh.cwd + ">")
    while True:
        line = yield from sh.read_line(io)
        if line is None:
            return sh.errorlevel
        io.print(line + "\r\n")
        try:
            yield from sh.run_line(line, io)
        except _Exit as exit_:
            return exit_.code
        io.print("\r\n" + sh.cwd + ">")


def b_dir(sh: Shell, rest: str, io: Io) -> int:
    bare, names = _switch_and_names(rest, "/b")
    full = sh.full_path(names[0]) if names else sh.cwd
    fs = sh.host.fs
    if fs.is_dir(full):
        directory, entries = full, fs.listdir(full)
    else:
        directory, entries = ntpath.dirname(full), _glob(sh, full)
    if not entries and not fs.is_dir(full):
        if not bare:
            io.print(" Volume in drive C has no label.\r\n Volume Serial Number is 1C2D-3E4F\r\n\r\n"
                     f" Directory of {directory}\r\n\r\n")
        io.error("File Not Found\r\n")
        return 1
    if bare:
        io.print("".join(ntpath.basename(e) + "\r\n" for e in entries))
        return 0
    lines = [" Volume in drive C has no label.", " Volume Serial Number is 1C2D-3E4F", "",
             f" Directory of {directory}", ""]
    total = files = dirs = 0
    if fs.is_dir(full) and len(directory) > 3:
        lines += [f"{sh.host.boot_time:%m/%d/%Y  %I:%M %p}    <DIR>          {n}" for n in (".", "..")]
        dirs += 2
    for path in entries:
        entry = fs.entry(path)
        if entry is None:
            lines.append(f"{sh.host.boot_time:%m/%d/%Y  %I:%M %p}    <DIR>          {ntpath.basename(path)}")
            dirs += 1
        else:
            lines.append(f"{entry.modified:%m/%d/%Y  %I:%M %p} {entry.size:>17,} {ntpath.basename(path)}")
            files += 1
            total += entry.size
    lines += [f"{files:>16} File(s) {total:>14,} bytes", f"{dirs:>16} Dir(s)  10,737,418,240 bytes free", ""]
    io.print("\r\n".join(lines))
    return 0


BUILTINS: dict[str, Handler] = {
    "echo": b_echo, "type": b_type, "del": b_del, "erase": b_del, "mkdir": b_mkdir, "md": b_mkdir,
    "rmdir": b_rmdir, "rd": b_rmdir, "copy": b_copy, "cd": b_cd, "chdir": b_cd, "set": b_set, "exit": b_exit,
    "ver": b_ver, "rem": b_rem, "cls": b_noop, "title": b_noop, "pause": b_pause, "if": b_if, "cmd": b_cmd,
    "cmd.exe": b_cmd, "dir": b_dir, "goto": b_goto,
}
BUILTIN_NAMES = tuple(BUILTINS)


# --- tools --------------------------------------------------------------------------------------------


def t_hostname(sh: Shell, rest: str, io: Io) -> int:
    if rest.strip():
        io.error("sethostname: Use the Network Control Panel Applet to set hostname.\r\n")
        return 1
    io.print(sh.host.name + "\r\n")
    return 0


def t_whoami(sh: Shell, rest: str, io: Io) -> int:
    io.print(f"{sh.host.name.casefold()}\\{sh.host.user.casefold()}\r\n")
    return 0


def t_find(sh: Shell, rest: str, io: Io) -> Gen:
    args = argv(rest)
    insensitive = any(a.casefold() == "/i" for a in args)
    count_only = any(a.casefold() == "/c" for a in args)
    invert = any(a.casefold() == "/v" for a in args)
    words = [a for a in args if not a.startswith("/")]
    if not words:
        io.error("FIND: Parameter format not correct\r\n")
        return 2
    needle, files = words[0], words[1:]
    sources = [(f, sh.read_file(f)) for f in files if sh.file_exists(f)] if files else [
        ("", (yield from sh.read_all(io)))]
    found = 0
    for name, data in sources:
        lines = [ln.rstrip("\r") for ln in data.decode(OEM).split("\n")]
        def hit(line: str) -> bool:
            return (needle.casefold() in line.casefold()) if insensitive else (needle in line)

        hits = [ln for ln in lines if hit(ln) != invert and (ln or invert)]
        if name:
            io.print(f"\r\n---------- {name.upper()}" + (f": {len(hits)}" if count_only else "") + "\r\n")
        if count_only and not name:
            io.print(f"{len(hits)}\r\n")
        elif not count_only:
            io.print("".join(h + "\r\n" for h in hits))
        found += len(hits)
    return 0 if found else 1


def t_findstr(sh: Shell, rest: str, io: Io) -> Gen:
    args = argv(rest)
    insensitive = any(a.casefold() == "/i" for a in args)
    literal = [a[3:] for a in args if a.casefold().startswith("/c:")]
    words = [a for a in args if not a.startswith("/")]
    needles = literal or (words[0].split() if words else [])
    files = words[1:] if not literal else words
    if not needles:
        io.error("FINDSTR: Bad command line\r\n")
        return 2
    data = b"".join(sh.read_file(f) for f in files if sh.file_exists(f)) if files else (yield from sh.read_all(io))
    hits = []
    for line in data.decode(OEM).split("\n"):
        text = line.rstrip("\r")
        hay = text.casefold() if insensitive else text
        if any((n.casefold() if insensitive else n) in hay for n in needles):
            hits.append(text + "\r\n")
    io.print("".join(hits))
    return 0 if hits else 1


# reg.exe --------------------------------------------------------------------------------------------------


def _reg_legacy(sh: Shell) -> bool:
    return not sh.host.os.nt6  # reg.exe 3.0 (XP/2003) prints differently from Vista's


def _reg_error(sh: Shell, io: Io, message: str) -> int:
    if _reg_legacy(sh):
        io.error(f"\r\nError:  {message.rstrip('.')}\r\n")
    else:
        io.error(f"ERROR: {message}\r\n")
    return 1


def _reg_syntax(sh: Shell, io: Io, op: str) -> int:
    if _reg_legacy(sh):
        io.error(f"\r\nError:  Invalid syntax.\r\nType \"REG {op.upper()} /?\" for usage.\r\n")
    else:
        io.error(f"ERROR: Invalid syntax.\r\nType \"REG {op.upper()} /?\" for usage.\r\n")
    return 1


def _reg_key(sh: Shell, io: Io, raw: str, op: str) -> str | None:
    key = raw
    if key.startswith("\\\\"):
        parts = key[2:].split("\\", 1)
        if len(parts) < 2 or parts[0].casefold() not in (sh.host.name.casefold(), "localhost", "."):
            _reg_error(sh, io, "The network path was not found.")
            return None
        key = parts[1]
    try:
        sh.host.registry.split(key)
    except (KeyError, ValueError):
        if _reg_legacy(sh):
            io.error("\r\nError:  Invalid key name\r\n")
        else:
            io.error(f"ERROR: Invalid key name.\r\nType \"REG {op.upper()} /?\" for usage.\r\n")
        return None
    return key


def _reg_data(sh: Shell, type_: int, data: Any) -> str:
    if type_ in (REG_DWORD, REG_QWORD):
        return f"0x{int(data):x}"
    if type_ in (REG_BINARY, REG_NONE):
        return bytes(data).hex().upper()
    if type_ == REG_MULTI_SZ:
        joined = "\\0".join(data)
        return joined + "\\0\\0" if _reg_legacy(sh) else joined
    return str(data)


def _reg_value_line(sh: Shell, name: str, type_: int, data: Any) -> str:
    shown = name or ("<NO NAME>" if _reg_legacy(sh) else "(Default)")
    sep = "\t" if _reg_legacy(sh) else "    "
    return f"    {shown}{sep}{REG_TYPE_NAMES[type_]}{sep}{_reg_data(sh, type_, data)}\r\n"


def _reg_options(args: list[str]) -> tuple[dict[str, str | None], list[str]]:
    opts: dict[str, str | None] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("/") and len(arg) > 1:
            name = arg[1:].casefold()
            if name in ("v", "t", "d", "s") and i + 1 < len(args) and not (name == "s" and args[i + 1].startswith("/")):
                opts[name] = args[i + 1]
                i += 2
                continue
            opts[name] = None
        else:
            positional.append(arg)
        i += 1
    return opts, positional


def t_reg(sh: Shell, rest: str, io: Io) -> Any:
    args = argv(rest)
    if not args:
        io.error("ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n")
        return 1
    op = args[0].casefold()
    handler = {"query": _reg_query, "add": _reg_add, "delete": _reg_delete}.get(op)
    if handler is None:
        io.error("ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n")
        return 1
    return handler(sh, args[1:], io)


def _reg_query(sh: Shell, args: list[str], io: Io) -> int:
    opts, positional = _reg_options(args)
    if len(positional) != 1:
        return _reg_syntax(sh, io, "query")
    key_path = _reg_key(sh, io, positional[0], "query")
    if key_path is None:
        return 1
    reg = sh.host.registry
    if reg.access(key_path) == "none":
        return _reg_error(sh, io, "Access is denied.")
    key = reg.open(key_path)
    if key is None:
        return _reg_error(sh, io, "The system was unable to find the specified registry key or value.")
    header = "\r\n! REG.EXE VERSION 3.0\r\n" if _reg_legacy(sh) else ""
    out = [header]
    if "v" in opts or "ve" in opts:
        name = "" if "ve" in opts else (opts["v"] or "")
        value = key.values.get(name.casefold())
        if value is None:
            if "ve" in opts and not _reg_legacy(sh):
                io.print(f"\r\n{reg.display_path(key_path)}\r\n    (Default)    REG_SZ    (value not set)\r\n\r\n")
                return 0
            return _reg_error(sh, io, "The system was unable to find the specified registry key or value.")
        out.append(f"\r\n{reg.display_path(key_path)}\r\n" + _reg_value_line(sh, value.name, value.type, value.data)
                   + "\r\n")
        io.print("".join(out))
        return 0
    recursive = "s" in opts
    for path, current in (reg.walk(key_path) if recursive else [(key_path, key)]):
        if reg.access(path) == "none":
            continue
        # Vista's reg.exe names a key only when it prints values under it; reg.exe 3.0 always does.
        if current.values or _reg_legacy(sh) or recursive:
            out.append(f"\r\n{reg.display_path(path)}\r\n")
            out += [_reg_value_line(sh, v.name, v.type, v.data) for v in current.values.values()]
        if not recursive and current.subkeys:
            out.append("\r\n")
            out += [f"{reg.display_path(path)}\\{k.name}\r\n" for k in current.subkeys.values()]
    if not recursive:
        out.append("\r\n" if key.values and not key.subkeys else "")
    io.print("".join(out))
    return 0


def _parse_reg_data(type_: int, text: str, separator: str) -> Any:
    if type_ in (REG_DWORD, REG_QWORD):
        number = int(text, 16) if text.casefold().startswith("0x") else int(text)
        if not 0 <= number < (2**32 if type_ == REG_DWORD else 2**64):
            raise ValueError(text)
        return number
    if type_ in (REG_BINARY, REG_NONE):
        return bytes.fromhex(text) if text else b""
    if type_ == REG_MULTI_SZ:
        items = text.split(separator) if text else []
        while items and items[-1] == "":
            items.pop()
        return items
    return text


def _reg_add(sh: Shell, args: list[str], io: Io) -> Gen:
    opts, positional = _reg_options(args)
    if len(positional) != 1 or ("v" in opts and "ve" in opts):
        return _reg_syntax(sh, io, "add")
    key_path = _reg_key(sh, io, positional[0], "add")
    if key_path is None:
        return 1
    reg = sh.host.registry
    type_name = (opts.get("t") or "REG_SZ").upper()
    types = {n: t for t, n in REG_TYPE_NAMES.items()}
    if type_name not in types:
        return _reg_error(sh, io, "Invalid type specified.") if not _reg_legacy(sh) else _reg_syntax(sh, io, "add")
    type_ = types[type_name]
    separator = (opts.get("s") or "\\0") if "s" in opts else "\\0"
    try:
        data = _parse_reg_data(type_, opts.get("d") or "", separator)
    except ValueError:
        return _reg_syntax(sh, io, "add")
    if reg.access(key_path) != "full":
        return _reg_error(sh, io, "Access is denied.")
    if "v" in opts or "ve" in opts:
        name = "" if "ve" in opts else (opts["v"] or "")
        if reg.get(key_path, name) is not None and "f" not in opts:
            choice = "(Y/N)" if _reg_legacy(sh) else "(Yes/No)"
            io.print(f"Value {name or '(Default)'} exists, overwrite{choice}? ")
            answer = yield from sh.read_line(io)
            if not answer or answer.strip()[:1].casefold() != "y":
                io.print("\r\nThe operation was canceled by the user.\r\n")
                return 1
        reg.set(key_path, name, type_, data)
    else:
        reg.create(key_path)
    io.print("\r\nThe operation completed successfully\r\n" if _reg_legacy(sh)
             else "The operation completed successfully.\r\n")
    return 0


def _reg_delete(sh: Shell, args: list[str], io: Io) -> Gen:
    opts, positional = _reg_options(args)
    if len(positional) != 1:
        return _reg_syntax(sh, io, "delete")
    key_path = _reg_key(sh, io, positional[0], "delete")
    if key_path is None:
        return 1
    reg = sh.host.registry
    key = reg.open(key_path)
    if key is None:
        return _reg_error(sh, io, "The system was unable to find the specified registry key or value.")
    if reg.access(key_path) != "full":
        return _reg_error(sh, io, "Access is denied.")
    choice = "(Y/N)" if _reg_legacy(sh) else "(Yes/No)"
    if "v" in opts or "ve" in opts:
        name = "" if "ve" in opts else (opts["v"] or "")
        if reg.get(key_path, name) is None:
            return _reg_error(sh, io, "The system was unable to find the specified registry key or value.")
        question = f"Delete the registry value {name or '(Default)'} {choice}? "
    elif "va" in opts:
        question = f"Delete all values under the registry key {reg.display_path(key_path)} {choice}? "
    else:
        question = f"Permanently delete the registry key {reg.display_path(key_path)} {choice}? "
    if "f" not in opts:
        io.print(question)
        answer = yield from sh.read_line(io)
        if not answer or answer.strip()[:1].casefold() != "y":
            io.print("\r\nThe operation was canceled by the user.\r\n")
            return 1
    if "v" in opts or "ve" in opts:
        reg.delete_value(key_path, "" if "ve" in opts else (opts["v"] or ""))
    elif "va" in opts:
        key.values.clear()
    else:
        reg.delete_key(key_path, recursive=True)  # reg.exe deletes the whole subtree, unlike StdRegProv
    io.print("\r\nThe operation completed successfully\r\n" if _reg_legacy(sh)
             else "The operation completed successfully.\r\n")
    return 0


# wmic -------------------------------------------------------------------------------------------------------

WMIC_ALIASES = {"qfe": "Win32_QuickFixEngineering", "datafile": "CIM_DataFile", "os": "Win32_OperatingSystem",
                "computersystem": "Win32_ComputerSystem", "service": "Win32_Service"}


def _wmic_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S.000000+000")
    if isinstance(value, list):
        return "{" + ",".join(f'"{v}"' if isinstance(v, str) else _wmic_value(v) for v in value) + "}"
    return str(value)


def _wmic_split(text: str) -> list[str]:
    """wmic's own tokenising: whitespace outside quotes; quotes stay in the token (stripped later)."""
    tokens, current, quote = [], [], ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char in " \t":
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def _wmic_error(sh: Shell, io: Io, description: str) -> int:
    io.error(f"Node - {sh.host.name.upper()}\r\nERROR:\r\nDescription = {description}\r\n\r\n")
    return 1  # winsim's choice: wmic's exit code for a failed query


def t_wmic(sh: Shell, rest: str, io: Io) -> int:
    host = sh.host
    tokens = _wmic_split(rest)
    text_format = "table"
    for token in list(tokens):
        if token.casefold().startswith("/format:"):
            text_format = token.split(":", 1)[1].casefold()
            tokens.remove(token)
        elif token.casefold() == "/value":
            text_format = "list"
            tokens.remove(token)
    if not host.os.nt6 and host.features.get("wmic_first_run_banner", True) and not host.flags.get("wmic_installed"):
        host.flags["wmic_installed"] = True
        io.print("Please wait while WMIC is being installed.\r\n")
    if not tokens:
        io.error("wmic:root\\cli>\r\n")
        return 0
    class_name = WMIC_ALIASES.get(tokens[0].casefold())
    if class_name is None:
        io.error(f"{tokens[0]} - Alias not found.\r\n")
        return 44135
    where: str | None = None
    rest_tokens = tokens[1:]
    if rest_tokens and rest_tokens[0].casefold() == "where":
        if len(rest_tokens) < 2:
            return _wmic_error(sh, io, "Invalid query")
        where = rest_tokens[1]
        if where[:1] in "\"'" and where[-1:] == where[:1] and len(where) > 1:
            where = where[1:-1]
        rest_tokens = rest_tokens[2:]
    if not rest_tokens or rest_tokens[0].casefold() not in ("get", "list"):
        return _wmic_error(sh, io, "Invalid verb") if rest_tokens else _wmic_error(sh, io, "Invalid query")
    props = [p.strip() for p in " ".join(rest_tokens[1:]).split(",") if p.strip()] \
        if rest_tokens[0].casefold() == "get" else []
    try:
        condition = WhereClause(where) if where is not None else None
        instances = host.wmi_enumerate("root/cimv2", class_name, filtered=condition is not None)
        if condition is not None:
            instances = [i for i in instances if condition.matches(i)]
    except WhereError:
        return _wmic_error(sh, io, "Invalid query")
    except WmiError as exc:
        return _wmic_error(sh, io, "Invalid query" if exc.kind == "invalid_parameter" else exc.message)
    if not instances:
        io.error("No Instance(s) Available.\r\n")
        return 0
    names = _wmic_columns(instances[0], props)
    if names is None:
        return _wmic_error(sh, io, "Invalid query")
    rows = [[_wmic_value(i.get(n)) for n in names] for i in instances]
    if text_format == "list":
        lines = ["", ""]
        for row in rows:
            lines += [f"{n}={v}" for n, v in zip(names, row, strict=True)] + ["", ""]
        lines.append("")
    else:
        widths = [max(len(n), *(len(r[c]) for r in rows)) + 2 for c, n in enumerate(names)]
        lines = ["".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
        lines += ["".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        lines.append("")
    _wmic_write(io, lines)
    return 0


def _wmic_columns(instance: Instance, props: list[str]) -> list[str] | None:
    available = {k.casefold(): k for k in instance.properties}
    if not props:
        return sorted(available.values(), key=str.casefold)
    names = []
    for prop in props:
        if prop.casefold() not in available:
            return None
        names.append(available[prop.casefold()])
    # wmic orders the columns alphabetically, whatever order "get" names them in.
    return sorted(names, key=str.casefold)


def _wmic_write(io: Io, lines: list[str]) -> None:
    if io.out.is_file:
        # Redirected to a file wmic writes UTF-16LE with a BOM (the file gets one only at its start).
        text = "\r\n".join(lines)
        io.out.write(b"\xff\xfe" + text.encode("utf-16-le"))
    else:
        # On a pipe every line ends "\r\r\n": wmic's CRLF goes through a text-mode conversion once more.
        io.out.write("".join(line + "\r\r\n" for line in lines[:-1]).encode(OEM, "replace"))


class WhereError(ValueError):
    pass


class WhereClause:
    """The WQL condition of ``wmic ... where``: =, <>, !=, <, >, <=, >=, LIKE, AND, OR, NOT, parentheses.
    Strings in ' or "; a backslash escapes the next character, a lone one is an invalid query."""

    _TOKEN = re.compile(r"\s*(?:(?P<str>'|\")|(?P<op><>|!=|<=|>=|=|<|>)|(?P<par>[()])|(?P<word>[A-Za-z_][\w.]*)"
                        r"|(?P<num>-?\d+))")

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.tree = self._or()
        if self.pos != len(self.tokens):
            raise WhereError("trailing text")

    def _tokenize(self, text: str) -> list[tuple[str, object]]:
        tokens: list[tuple[str, object]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = self._TOKEN.match(text, pos)
            if not match:
                raise WhereError(f"bad character at {pos}")
            if match.group("str"):
                quote, pos = match.group("str"), match.end()
                value = []
                while pos < len(text) and text[pos] != quote:
                    if text[pos] == "\\":
                        if pos + 1 >= len(text) or text[pos + 1] not in "\\'\"":
                            raise WhereError("lone backslash")
                        pos += 1
                    value.append(text[pos])
                    pos += 1
                if pos >= len(text):
                    raise WhereError("unterminated string")
                tokens.append(("str", "".join(value)))
                pos += 1
                continue
            kind = next(k for k in ("op", "par", "word", "num") if match.group(k))
            word = match.group(kind)
            if kind == "word" and word.upper() in ("AND", "OR", "NOT", "LIKE", "NULL", "IS"):
                kind = word.upper()
            tokens.append((kind, int(word) if kind == "num" else word))
            pos = match.end()
        return tokens

    def _peek(self) -> tuple[str, object]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def _take(self) -> tuple[str, object]:
        token = self._peek()
        self.pos += 1
        return token

    def _or(self) -> Any:
        left = self._and()
        while self._peek()[0] == "OR":
            self._take()
            left = ("or", left, self._and())
        return left

    def _and(self) -> Any:
        left = self._not()
        while self._peek()[0] == "AND":
            self._take()
            left = ("and", left, self._not())
        return left

    def _not(self) -> Any:
        if self._peek()[0] == "NOT":
            self._take()
            return ("not", self._not())
        if self._peek() == ("par", "("):
            self._take()
            inner = self._or()
            if self._take() != ("par", ")"):
                raise WhereError("missing )")
            return inner
        kind, prop = self._take()
        if kind != "word":
            raise WhereError("property expected")
        op_kind, op = self._take()
        if op_kind == "IS":
            negate = self._peek()[0] == "NOT"
            if negate:
                self._take()
            if self._take()[0] != "NULL":
                raise WhereError("NULL expected")
            return ("isnull", prop, negate)
        if op_kind not in ("op", "LIKE"):
            raise WhereError("operator expected")
        value_kind, value = self._take()
        if value_kind not in ("str", "num", "word"):
            raise WhereError("value expected")
        return ("cmp", prop, "like" if op_kind == "LIKE" else op, value)

    def matches(self, instance: Instance) -> bool:
        return bool(self._eval(self.tree, instance))

    def _eval(self, node: Any, instance: Instance) -> bool:
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], instance) or self._eval(node[2], instance)
        if kind == "and":
            return self._eval(node[1], instance) and self._eval(node[2], instance)
        if kind == "not":
            return not self._eval(node[1], instance)
        try:
            actual = instance.get(node[1])
        except KeyError:
            raise WhereError(f"no property {node[1]}") from None
        if kind == "isnull":
            return (actual is None) != bool(node[2])
        _, _, op, expected = node
        if actual is None:
            return False
        if op == "like":
            pattern = "^" + re.escape(str(expected)).replace("%", ".*").replace("_", ".") + "$"
            return re.match(pattern, str(actual), re.IGNORECASE | re.S) is not None
        left: Any = actual.casefold() if isinstance(actual, str) else actual
        right: Any = str(expected).casefold() if isinstance(actual, str) else expected
        if isinstance(left, (int, float)) and not isinstance(right, (int, float)):
            try:
                right = int(str(right))
            except ValueError:
                return False
        compare = {"=": operator.eq, "<>": operator.ne, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
                   "<=": operator.le, ">=": operator.ge}[str(op)]
        try:
            return bool(compare(left, right))
        except TypeError:
            raise WhereError(f"cannot compare {node[1]} with {expected!r}") from None


# shutdown ---------------------------------------------------------------------------------------------------


def t_shutdown(sh: Shell, rest: str, io: Io) -> int:
    args = argv(rest)
    flags: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg[:1] not in "/-":
            return _shutdown_usage(io)
        name = arg[1:].casefold()
        if name in ("t", "c", "d", "m") and i + 1 < len(args):
            flags[name] = args[i + 1]
            i += 2
            continue
        flags[name] = None
        i += 1
    host = sh.host
    if "a" in flags:
        if host.cancel_reboot():
            return 0
        io.error("Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n")
        return 1116
    action = next((a for a in ("r", "s", "p", "l") if a in flags), None)
    if action is None or "m" in flags:
        return _shutdown_usage(io)
    if action == "l":
        return 0
    try:
        delay = 0 if action == "p" else int(flags.get("t") or 30)
    except ValueError:
        return _shutdown_usage(io)
    limit = 315360000 if (host.os.major, host.os.minor) >= (6, 1) else 600
    if not 0 <= delay <= limit:
        return _shutdown_usage(io)
    if host.reboot_scheduled():
        io.error("A system shutdown has already been scheduled.(1190)\r\n")
        return 1190
    if action == "r":
        host.reboot(delay)
    else:
        host.power_off(delay)
    return 0


def _shutdown_usage(io: Io) -> int:
    io.print("Usage: shutdown [/i | /l | /s | /r | /g | /a | /p | /h | /e] [/f]\r\n"
             "    [/m \\\\computer][/t xxx][/d [p|u:]xx:yy [/c \"comment\"]]\r\n")
    return 1


# certutil ---------------------------------------------------------------------------------------------------


def t_certutil(sh: Shell, rest: str, io: Io) -> int:
    args = argv(rest)
    force = any(a.casefold() in ("-f", "/f") for a in args)
    words = [a for a in args if a.casefold() not in ("-f", "/f")]
    if not words:
        io.print("CertUtil: -dump command completed successfully.\r\n")
        return 0
    verb = words[0].casefold().lstrip("-/")
    if verb in ("decode", "encode") and len(words) == 3:
        return _certutil_code(sh, io, verb, words[1], words[2], force)
    if verb == "hashfile" and len(words) in (2, 3) and sh.host.os.nt6:
        return _certutil_hash(sh, io, words[1], words[2] if len(words) == 3 else "SHA1")
    io.print(f"CertUtil: Unknown arg: {words[0]}\r\n")
    return -2147024809  # 0x80070057 E_INVALIDARG


def _certutil_fail(io: Io, verb: str, hresult: int, message: str) -> int:
    win32 = hresult & 0xFFFF if (hresult & 0xFFFF0000) == 0x80070000 else None
    detail = f"(WIN32: {win32})" if win32 is not None else f"({hresult - 2**32})"
    io.print(f"CertUtil: -{verb} command FAILED: 0x{hresult:08x} {detail}\r\nCertUtil: {message}\r\n")
    return hresult - 2**32


_DECODE_WHITESPACE = bytes(c for c in range(256) if chr(c).isspace())


def _certutil_code(sh: Shell, io: Io, verb: str, source: str, dest: str, force: bool) -> int:
    try:
        data = sh.read_file(source)
    except FileSystemError as exc:
        code = 0x80070000 | exc.winerror
        return _certutil_fail(io, verb, code, _win_message(exc))
    target = sh.full_path(dest)
    if sh.host.fs.entry(target) is not None and not force:
        return _certutil_fail(io, verb, 0x80070050, "The file exists.")
    if verb == "decode":
        armored = re.sub(rb"-----(BEGIN|END)[^-]*-----", b"", data) if b"-----" in data else data
        # Whitespace (what \s matches in Latin-1) dropped in one C-level pass: megabytes of text go through
        # here, and the whole fleet shares one interpreter.
        compact = armored.translate(None, _DECODE_WHITESPACE)
        try:
            output = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            return _certutil_fail(io, verb, 0x80090005, "Bad Data.")
    else:
        encoded = base64.b64encode(data).decode()
        body = "\r\n".join(encoded[i:i + 64] for i in range(0, len(encoded), 64))
        output = f"-----BEGIN CERTIFICATE-----\r\n{body}\r\n-----END CERTIFICATE-----\r\n".encode()
    try:
        if not sh.host.fs.is_dir(ntpath.dirname(target)):
            raise FileSystemError(3, "The system cannot find the path specified.")
        sh.host.fs.write(target, output)
    except FileSystemError as exc:
        return _certutil_fail(io, verb, 0x80070000 | exc.winerror, _win_message(exc))
    io.print(f"Input Length = {len(data)}\r\nOutput Length = {len(output)}\r\n"
             f"CertUtil: -{verb} command completed successfully.\r\n")
    return 0


def _certutil_hash(sh: Shell, io: Io, source: str, algorithm: str) -> int:
    try:
        data = sh.read_file(source)
    except FileSystemError as exc:
        return _certutil_fail(io, "hashfile", 0x80070000 | exc.winerror, _win_message(exc))
    name = algorithm.upper()
    if name not in ("MD5", "SHA1", "SHA256", "SHA384", "SHA512"):
        return _certutil_fail(io, "hashfile", 0x80090008, "Invalid algorithm specified.")
    digest = hashlib.new(name.lower().replace("sha", "sha") if name != "SHA1" else "sha1", data).digest()
    spaced = " ".join(f"{b:02x}" for b in digest)  # Vista/7 certutil separates the bytes
    io.print(f"{name} hash of file {source}:\r\n{spaced}\r\nCertUtil: -hashfile command completed successfully.\r\n")
    return 0


# cscript ----------------------------------------------------------------------------------------------------

_DECODER_MARKERS = (("msxml2.domdocument", "microsoft.xmldom"), ("bin.base64",), ("nodetypedvalue",),
                    ("adodb.stream",), ("savetofile",), ("wscript.arguments",))
_COPIER_MARKERS = (("scripting.filesystemobject",), ("createtextfile",), (".write",), ("wscript.arguments",))
_STDIN_MARKERS = (("wscript.stdin",), ("readall",))


def _shaped(folded: str, markers: tuple[tuple[str, ...], ...]) -> bool:
    return all(any(m in folded for m in group) for group in markers)


def t_cscript(sh: Shell, rest: str, io: Io) -> Gen:
    args = argv(rest)
    host_opts = [a.casefold() for a in args if a.startswith("//")]
    script_args = [a for a in args if not a.startswith("//")]
    if "//nologo" not in host_opts and "//b" not in host_opts:
        wsh = str(sh.host.features.get("wsh_version", "5.6"))
        copyright_line = "Copyright (C) Microsoft Corporation 1996-2001. All rights reserved." if wsh == "5.6" \
            else "Copyright (C) Microsoft Corporation. All rights reserved."
        io.print(f"Microsoft (R) Windows Script Host Version {wsh}\r\n{copyright_line}\r\n\r\n")
    if not script_args:
        io.print("Usage: CScript scriptname.extension [option...] [arguments...]\r\n")
        return 0
    if not sh.host.features.get("wsh_enabled", True):
        # HKLM\SOFTWARE\Microsoft\Windows Script Host\Settings\Enabled = 0, as some hardening guides set it.
        io.error("Windows Script Host access is disabled on this machine. Contact your administrator for "
                 "details.\r\n")
        return 1
    script = sh.full_path(script_args[0])
    try:
        source = sh.read_file(script).decode("latin-1")
    except FileSystemError:
        io.error(f"Input Error: Can not find script file \"{script}\".\r\n")
        return 1
    folded = source.casefold()
    if _shaped(folded, _STDIN_MARKERS):
        # WScript.StdIn.ReadAll blocks until the stdin pipe is closed (WinRS: the Send with End="true").
        if len(script_args) < 2:
            io.error(f"{script}(1, 1) Microsoft VBScript runtime error: Subscript out of range\r\n")
            return 1
        data = yield from sh.read_all(io)
        if _shaped(folded, _DECODER_MARKERS):
            return _vbs_decode_bytes(sh, io, script, data, script_args[1], overwrite=_overwrites(folded))
        if _shaped(folded, _COPIER_MARKERS):
            return _vbs_write_text(sh, io, script, data, script_args[1])
    if not _shaped(folded, _DECODER_MARKERS) or _shaped(folded, _STDIN_MARKERS):
        io.error(f"winsim: {script}: cscript only runs base64 upload script shapes (MSXML bin.base64 + "
                 "ADODB.Stream SaveToFile from a file or from WScript.StdIn, or WScript.StdIn.ReadAll written "
                 "with FileSystemObject.CreateTextFile; paths from WScript.Arguments)\r\n")
        return 1
    if len(script_args) < 3:
        io.error(f"{script}(1, 1) Microsoft VBScript runtime error: Subscript out of range\r\n")
        return 1
    return _vbs_decode(sh, io, script, script_args[1], script_args[2], _overwrites(folded))


def _overwrites(folded: str) -> bool:
    return re.search(r"savetofile\s*\(?[^,\r\n]+,\s*2", folded) is not None


def _vbs_write_text(sh: Shell, io: Io, script: str, data: bytes, dest: str) -> int:
    """``fso.CreateTextFile(path, True).Write WScript.StdIn.ReadAll``: the bytes as they came (ANSI text)."""
    target = sh.full_path(dest)
    try:
        if not sh.host.fs.is_dir(ntpath.dirname(target)):
            raise FileSystemError(3, "The system cannot find the path specified.")
        sh.host.fs.write(target, data)
    except FileSystemError:
        io.error(f"{script}(2, 1) Microsoft VBScript runtime error: Path not found\r\n")
        return 1
    return 0


def _vbs_decode(sh: Shell, io: Io, script: str, source: str, dest: str, overwrite: bool) -> int:
    try:
        data = sh.read_file(source)
    except FileSystemError:
        io.error(f"{script}(1, 1) Microsoft VBScript runtime error: File not found\r\n")
        return 1
    return _vbs_decode_bytes(sh, io, script, data, dest, overwrite)


def _vbs_decode_bytes(sh: Shell, io: Io, script: str, data: bytes, dest: str, overwrite: bool) -> int:
    text = data.decode("latin-1")
    compact = re.sub(r"\s+", "", text)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        io.error(f"{script}(1, 1) msxml3.dll: Error parsing '{compact[:20]}' as bin.base64 datatype.\r\n")
        return 1
    target = sh.full_path(dest)
    fs = sh.host.fs
    if (fs.entry(target) is not None and not overwrite) or not fs.is_dir(ntpath.dirname(target)):
        io.error(f"{script}(1, 1) ADODB.Stream: Write to file failed.\r\n")
        return 1
    try:
        fs.write(target, data)
    except FileSystemError:
        io.error(f"{script}(1, 1) ADODB.Stream: Write to file failed.\r\n")
        return 1
    return 0


# wusa -------------------------------------------------------------------------------------------------------


def t_wusa(sh: Shell, rest: str, io: Io) -> Gen:
    args = argv(rest)
    files = [a for a in args if not a.startswith("/")]
    switches = [a for a in args if a.startswith("/")]
    if not files and not any(a.casefold() == "/uninstall" for a in switches):
        while True:
            yield BLOCK  # wusa without a file shows its help dialog
    path = sh.full_path(files[0]) if files else ""
    data: bytes | None = None
    if path:
        try:
            data = sh.read_file(path)
        except FileSystemError:
            data = None
    return (yield from sh._installer(packages.run_wusa(sh.host, path, data, switches), io))


def t_pkgmgr(sh: Shell, rest: str, io: Io) -> Gen:
    return (yield from sh._installer(packages.run_pkgmgr(sh.host, argv(rest)), io))


TOOLS: dict[str, Handler] = {
    "hostname": t_hostname, "whoami": t_whoami, "find": t_find, "findstr": t_findstr, "reg": t_reg,
    "wmic": t_wmic, "shutdown": t_shutdown, "certutil": t_certutil, "cscript": t_cscript, "wusa": t_wusa,
    "pkgmgr": t_pkgmgr, "powershell": powershell.run,
}

