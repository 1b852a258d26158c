# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files to the host through the WinRM cmd shell, without PowerShell (docs/transport.md, "Uploads").

**stdin** (the usual way): one Command starts a process that reads its standard input to the end, and the
base64 text of the file goes to it in WS-Man ``Send`` requests (MS-WSMV 3.1.4.13: Send pipes input to a running
command; the last one carries ``End="true"``, which closes the pipe). Each Send is filled up to the host's
MaxEnvelopeSizekb (150 KB before WinRM 3.0), so a megabyte costs about 13 requests. The reading process is
``cscript`` with a small script written by ``echo`` in the same command line:

* where ``certutil`` exists (Server 2003, Vista and later) the script copies stdin into ``<file>.b64`` and
  ``certutil -f -decode`` writes the file, followed by ``certutil -hashfile <file>`` (SHA-1, the default; no
  algorithm argument, which a certutil older than Windows 7's may not take; a certutil without the verb answers
  "Unknown arg" and the size is then the check);
* where it does not (XP, or a 2003 host whose certutil was removed) the script decodes stdin itself with
  MSXML's ``bin.base64`` type and ``ADODB.Stream``.

**echo** (the fallback, for a host whose stdin path fails: Windows Script Host disabled by policy, say):
base64 in ``echo`` commands of 6,000 characters appended to ``<file>.b64``, then the same decode. About 450
requests per megabyte.

Either way the size of the result is checked (certutil's ``Output Length`` or CIM_DataFile) and the SHA-1 where
the host computes one; a file that does not match is deleted and ``WriteVerificationError`` raised, before
anything runs it.

Faults: a Send or Receive lost after sending cannot be repeated (the service would append the chunk twice, or has
handed the output out already), so the upload starts again from a fresh file in a fresh shell; so does an
upload whose shell vanished (``InvalidSelectors``: the host restarted, or idled the shell out). A refused Send
(quota) is resent by the client: the service did nothing with it. A host that stays down raises
``HostUnreachableError``, which the task-level wait handles (tasks/resume.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import (
    AmbiguousWriteError,
    ArgumentError,
    InstanceNotFoundError,
    KbfixError,
    NotFoundError,
    RemoteCommandError,
    TransportError,
    WriteVerificationError,
)
from .. import escape
from ..base import LOG_STEPS, CommandResult, PackageSource, StagedPackage
from . import cmdshell, replies, wmi, wsman
from .client import WinRMClient

UPLOAD_METHODS = ("auto", "stdin", "echo")
B64_LINE = 6000  # characters of base64 per echo command: with the redirection it stays under 8191
STDIN_LINE = 64  # base64 line length on stdin: what certutil -encode writes, so certutil -decode reads it
# What a Send envelope carries besides the stream: headers, selectors, options (measured: about 1.3 KB), with
# room for a longer host name or shell id.
SEND_OVERHEAD = 4096
UPLOAD_TIMEOUT = 1800.0  # the Receive that waits for the reading process after the last Send
ATTEMPTS = 3  # fresh starts of one upload after a lost Send or Receive, or a vanished shell

_COPY_STDIN = (
    'Set fso = CreateObject("Scripting.FileSystemObject")',
    "Set out = fso.CreateTextFile(WScript.Arguments(0), True)",
    "out.Write WScript.StdIn.ReadAll",
    "out.Close",
)
_DECODE_STDIN = (
    "text = WScript.StdIn.ReadAll",
    'text = Replace(Replace(text, vbCr, ""), vbLf, "")',
    'Set doc = CreateObject("MSXML2.DOMDocument")',
    'Set node = doc.createElement("b64")',
    'node.dataType = "bin.base64"',
    "node.text = text",
    'Set stream = CreateObject("ADODB.Stream")',
    "stream.Type = 1",
    "stream.Open",
    "stream.Write node.nodeTypedValue",
    "stream.SaveToFile WScript.Arguments(0), 2",
    "stream.Close",
)
# The echo path's decoder for hosts without certutil: the same, reading the .b64 file named by Arguments(0).
_DECODE_FILE = (
    'Set fso = CreateObject("Scripting.FileSystemObject")',
    "Set src = fso.OpenTextFile(WScript.Arguments(0), 1)",
    "text = src.ReadAll",
    "src.Close",
    *_DECODE_STDIN[1:-2],
    "stream.SaveToFile WScript.Arguments(1), 2",
    "stream.Close",
)

_OUTPUT_LENGTH = re.compile(r"Output Length = (\d+)")
_SHA1_LINE = re.compile(r"^\s*((?:[0-9a-fA-F]{2} ?){20})\s*$", re.MULTILINE)


class StdinPathError(TransportError):
    """The host ran the stdin path's command but it did not do its job (no cscript, Windows Script Host
    disabled): the echo path may still work."""


@dataclass(frozen=True)
class UploadResult:
    path: str
    size: int | None  # None: no file arrived
    decoder: str  # "certutil" or "vbscript"
    method: str  # "stdin" or "echo"
    sha1: str | None  # what the host computed, when it could


def send_chunk_size(client: WinRMClient) -> int:
    """Bytes of stdin per Send: what fits in the host's MaxEnvelopeSizekb once base64-encoded in the envelope."""
    room = wsman.max_envelope_size(client.stack_version) - SEND_OVERHEAD
    return room // 4 * 3


def stdin_text(data: bytes) -> bytes:
    """The file as base64 lines of ``STDIN_LINE`` characters, CRLF-ended: the text the host decodes."""
    encoded = base64.b64encode(data)
    lines = [encoded[i:i + STDIN_LINE] for i in range(0, len(encoded), STDIN_LINE)]
    return b"".join(line + b"\r\n" for line in lines)


def _echo_command(text: str, path: str, append: bool) -> str:
    """``echo text`` into ``path`` (appending or truncating). Redirection first: "echo ...1>>file" would make a
    trailing digit a handle number on cmd.exe."""
    return f"{'>>' if append else '>'}{escape.cmd_path(path)} echo {escape.cmd_echo_text(text)}"


def _script_line(lines: Sequence[str], script: str) -> str:
    """One cmd line that writes ``lines`` into ``script`` (the first echo truncates it)."""
    return "&".join(_echo_command(text, script, append=bool(i)) for i, text in enumerate(lines))


def upload(client: WinRMClient, data: bytes, remote_path: str, *, method: str = "auto",
           certutil: bool | None = None, echo_line: int = B64_LINE) -> UploadResult:
    """Put ``data`` at ``remote_path`` and check it. ``method``: ``stdin``, ``echo`` or ``auto`` (stdin, echo
    when the host cannot run the stdin path). ``certutil``: whether the host has certutil (False on XP; None:
    try it). ``echo_line``: base64 characters per echo command."""
    escape.cmd_path(remote_path, "remote_path")
    if method not in UPLOAD_METHODS:
        raise ArgumentError("method", f"must be one of {', '.join(UPLOAD_METHODS)}, not {method!r}")
    if echo_line % 4 or not 4 <= echo_line <= cmdshell.CMD_MAX_LINE - 600:
        raise ValueError("echo_line must be a multiple of 4 that leaves room for the redirection")
    result: UploadResult | None = None
    if method in ("auto", "stdin"):
        try:
            result = _stdin_upload(client, data, remote_path, certutil)
        except StdinPathError as exc:
            if method == "stdin":
                raise
            client.log(LOG_STEPS, f"{client.host}: the stdin upload failed ({exc}); uploading with echo commands")
    if result is None:
        result = _echo_upload(client, data, remote_path, echo_line)
    _verify(client, data, result)
    return result


def _verify(client: WinRMClient, data: bytes, result: UploadResult) -> None:
    """Size, and the SHA-1 where the host computed one; a mismatch deletes the file before anything runs it."""
    # SHA-1 because certutil -hashfile computes it on every version that has -hashfile; this catches damage in
    # transit, it is not the package's authenticity (that is checked before staging).
    expected = hashlib.sha1(data).hexdigest()  # noqa: S324
    problem = None
    if result.size is None:
        problem = "no file arrived"
    elif result.size != len(data):
        problem = f"{result.size} bytes arrived, {len(data)} were sent"
    elif result.sha1 is not None and result.sha1 != expected:
        problem = f"its SHA-1 on the host is {result.sha1}, the package's is {expected}"
    if problem is None:
        return
    try:
        cmdshell.delete_file(client, result.path)
    except KbfixError as exc:
        client.log(LOG_STEPS, f"{client.host}: could not delete {result.path}: {exc}")
    raise WriteVerificationError(f"{client.host}: the package uploaded to {result.path} is not the package: "
                                 f"{problem}; the file was deleted and nothing was installed")


# ------------------------------------------------------------------------------------------------ stdin


def _stdin_upload(client: WinRMClient, data: bytes, remote_path: str, certutil: bool | None) -> UploadResult:
    attempt = 0
    while True:
        try:
            with cmdshell.CmdShell(client) as shell:
                return _stdin_once(shell, data, remote_path, certutil)
        except (AmbiguousWriteError, InstanceNotFoundError) as exc:
            # Lost after sending, or the shell is gone with a restart: nothing can be resumed where it broke.
            # The script overwrites its output, so starting again from the first byte is safe.
            if attempt >= ATTEMPTS:
                raise
            attempt += 1
            client.log(LOG_STEPS, f"{client.host}: upload of {remote_path} broken off ({exc}); starting again "
                                  f"from a fresh file in a fresh shell ({attempt} of {ATTEMPTS})")


def _stdin_once(shell: cmdshell.CmdShell, data: bytes, remote_path: str, certutil: bool | None) -> UploadResult:
    client = shell.client
    decode_on_host = certutil is False
    script = remote_path + ".kbfix.vbs"
    received = remote_path if decode_on_host else remote_path + ".b64"
    text = stdin_text(data)
    # The script is removed in the same line once it has done its job (a failure leaves it for _remove below).
    line = (_script_line(_DECODE_STDIN if decode_on_host else _COPY_STDIN, script)
            + f"&cscript //nologo {escape.cmd_path(script)} {escape.cmd_path(received)}"
            + f" && del /f /q {escape.cmd_path(script)}")
    chunk = send_chunk_size(client)
    client.log(LOG_STEPS, f"{client.host}: uploading {len(data)} bytes to {remote_path} through stdin in "
                          f"{max(1, -(-len(text) // chunk))} Sends")
    shell_id = shell.open()
    command_id = replies.command_id(client.send(wsman.shell_command_request(shell_id, line), idempotent=False))
    for start in range(0, max(len(text), 1), chunk):
        last = start + chunk >= len(text)
        client.send(wsman.shell_send_request(shell_id, command_id, text[start:start + chunk], end=last),
                    idempotent=False, retry_timeouts=False)
    copied = shell.collect(shell_id, command_id, f"cscript {script}", UPLOAD_TIMEOUT)
    if copied.exit_code != 0:
        _remove(shell, [script, received])
        raise StdinPathError(f"{client.host}: the stdin reader exited with {copied.exit_code}: "
                             f"{(copied.stderr or copied.stdout).strip()[:300]}")
    if decode_on_host:
        return UploadResult(remote_path, _file_size(client, remote_path), "vbscript", "stdin", None)
    decoded = _certutil_decode(shell, received, remote_path, [script])
    if decoded is None:  # no certutil after all: decode the received text with the script decoder
        _script_decode(shell, received, remote_path, [script])
        return UploadResult(remote_path, _file_size(client, remote_path), "vbscript", "stdin", None)
    size, sha1 = decoded
    return UploadResult(remote_path, size, "certutil", "stdin", sha1)


def _certutil_decode(shell: cmdshell.CmdShell, b64_path: str, remote_path: str,
                     also_delete: Sequence[str]) -> tuple[int, str | None] | None:
    """Decode with certutil, remove the text and hash the result in one command line; (size, sha1 or None), or
    None when the host has no certutil (the .b64 file is then still there). The line's exit code is the hash's,
    so the outcome is read from certutil's own report."""
    client = shell.client
    source, target = escape.cmd_path(b64_path), escape.cmd_path(remote_path)
    removed = " ".join(escape.cmd_path(p) for p in (b64_path, *also_delete))
    line = f"certutil -f -decode {source} {target} && del /f /q {removed} & certutil -hashfile {target}"
    try:
        result = cmdshell.run_line(client, line, shell=shell, success_codes=None)
    except AmbiguousWriteError as exc:
        # Lost after sending: the line may have run to its end, text removed. Not blindly again: look first.
        shell.close()
        if _file_size(client, b64_path) is not None:
            client.log(LOG_STEPS, f"{client.host}: {exc}; {b64_path} is still there: decoding again")
            result = cmdshell.run_line(client, line, shell=shell, success_codes=None, repeatable=True)
            if _OUTPUT_LENGTH.search(result.stdout + result.stderr) is None and not _not_recognized(result):
                # The client may have sent the line twice (its answer lost again): the first run decoded and
                # removed the text, the second found no text to decode. What is on the host decides.
                client.log(LOG_STEPS, f"{client.host}: the decode gave no length; checking what arrived")
                _remove(shell, [b64_path, *also_delete])
                return _settled_decode(shell, remote_path)
        else:
            client.log(LOG_STEPS, f"{client.host}: {exc}; {b64_path} is gone: the decode ran, checking its result")
            return _settled_decode(shell, remote_path)
    output = result.stdout + result.stderr
    length = _OUTPUT_LENGTH.search(output)
    if length is None:
        if _not_recognized(result):
            return None
        _remove(shell, [b64_path, *also_delete])
        raise RemoteCommandError(f"{client.host}: certutil -decode failed: {output.strip()[:300]}",
                                 result.exit_code, result.stdout, result.stderr)
    return int(length.group(1)), _sha1(output)


def _settled_decode(shell: cmdshell.CmdShell, remote_path: str) -> tuple[int, str | None]:
    """The size and hash of a file a lost decode line wrote (hashing is harmless to repeat)."""
    client = shell.client
    hashed = cmdshell.run_line(client, f"certutil -hashfile {escape.cmd_path(remote_path)}", shell=shell,
                               success_codes=None, repeatable=True)
    size = _file_size(client, remote_path)
    if size is None:
        raise TransportError(f"{client.host}: the decode of {remote_path} was lost and the file is not there")
    return size, _sha1(hashed.stdout + hashed.stderr)


def _sha1(output: str) -> str | None:
    digest = _SHA1_LINE.search(output)
    return digest.group(1).replace(" ", "").lower() if digest else None


def _script_decode(shell: cmdshell.CmdShell, b64_path: str, remote_path: str, also_delete: Sequence[str]) -> None:
    """Decode a .b64 file with the VBScript decoder (hosts without certutil), written in one command line."""
    client = shell.client
    client.log(LOG_STEPS, f"{client.host}: no certutil (XP): decoding with VBScript")
    script = remote_path + ".decode.vbs"
    # The script saves with adSaveCreateOverWrite: running the line twice does no harm.
    line = (_script_line(_DECODE_FILE, script)
            + f"&cscript //nologo {escape.cmd_path(script)} {escape.cmd_path(b64_path)} {escape.cmd_path(remote_path)}")
    try:
        cmdshell.run_line(client, line, shell=shell, timeout=600, repeatable=True)
    finally:
        _remove(shell, [script, b64_path, *also_delete])


def _remove(shell: cmdshell.CmdShell, paths: Sequence[str]) -> None:
    names = " ".join(escape.cmd_path(p) for p in paths)
    cmdshell.run_line(shell.client, f"del /f /q {names}", shell=shell, success_codes=None, repeatable=True)


def _not_recognized(result: CommandResult) -> bool:
    # cmd.exe exits 9009 for an unknown program; the English message is a fallback for simulators.
    text = (result.stderr + result.stdout).casefold()
    return (result.exit_code == cmdshell.NOT_RECOGNIZED_EXIT
            or "is not recognized as an internal or external command" in text)


def _file_size(client: WinRMClient, path: str) -> int | None:
    facts = wmi.file_facts(client, [path]).get(path.casefold())
    return facts.size if facts is not None and facts.exists else None


# ------------------------------------------------------------------------------------------------- echo


def _echo_upload(client: WinRMClient, data: bytes, remote_path: str, line_length: int) -> UploadResult:
    encoded = base64.b64encode(data).decode("ascii")
    lines = [encoded[i:i + line_length] for i in range(0, len(encoded), line_length)] or ["===="]
    b64_path = remote_path + ".b64"
    client.log(LOG_STEPS, f"{client.host}: uploading {len(data)} bytes to {remote_path} in {len(lines)} commands")
    with cmdshell.CmdShell(client) as shell:
        _append_lines(shell, lines, b64_path)
        decoded = _certutil_decode(shell, b64_path, remote_path, [])
        if decoded is None:
            _script_decode(shell, b64_path, remote_path, [])
    if decoded is not None:
        return UploadResult(remote_path, decoded[0], "certutil", "echo", decoded[1])
    return UploadResult(remote_path, _file_size(client, remote_path), "vbscript", "echo", None)


def _append_lines(shell: cmdshell.CmdShell, lines: Sequence[str], target: str) -> int:
    """Write ``lines`` to ``target`` (first one truncates), one echo per command. A command lost in a
    connection reset is settled by the file's size, never by blindly repeating an append."""
    client = shell.client
    size = 0
    for i, text in enumerate(lines):
        line = _echo_command(text, target, append=bool(i))
        expected = size + len(text) + 2  # echo ends each line with CRLF
        attempt = 0
        while True:
            try:
                cmdshell.run_line(client, line, shell=shell, timeout=300)
                break
            except AmbiguousWriteError as exc:
                if attempt >= client.settings.retries:
                    raise
                attempt += 1
                shell.close()  # the shell may be gone with the connection; the next command opens a new one
                found = _file_size(client, target)
                client.log(LOG_STEPS, f"{client.host}: {exc}; {target} has {found} bytes ({size} before this line)")
                if found == expected:
                    break  # the line arrived before the connection broke
                if found != size and not (found is None and i == 0):
                    raise TransportError(f"{client.host}: upload to {target} interrupted; the file has {found} "
                                         f"bytes where {size} or {expected} were expected") from None
        size = expected
    return size


# ---------------------------------------------------------------------------------------------- staging


def check_copied(client: WinRMClient, data: bytes, path: str, method: str, *,
                 certutil: bool | None = None) -> UploadResult:
    """Check a file put on the host another way (an SMB copy) as an upload is checked: its SHA-1 where
    ``certutil -hashfile`` answers, its size through CIM_DataFile; a mismatch deletes it."""
    sha1 = None
    if certutil is not False:
        hashed = cmdshell.run_line(client, f"certutil -hashfile {escape.cmd_path(path)}", success_codes=None,
                                   repeatable=True)
        sha1 = _sha1(hashed.stdout + hashed.stderr)
    result = UploadResult(path, _file_size(client, path), "certutil" if sha1 else "none", method, sha1)
    _verify(client, data, result)
    return result


def stage_package(client: WinRMClient, source: PackageSource, destination: str) -> StagedPackage:
    """Where the package runs from. ``data`` is uploaded to ``destination`` and checked; ``host_path`` must
    exist on the host; ``unc_path`` is used as it is (WMI cannot see network paths, and over NTLM the shell has
    no network credentials: the share must allow the computer account or anonymous read)."""
    if source.data is not None:
        done = upload(client, source.data, destination, method=source.upload_method, certutil=source.certutil)
        return StagedPackage(done.path, done.method, done.size, done.sha1, uploaded=True)
    if source.host_path:
        facts = wmi.file_facts(client, [source.host_path]).get(source.host_path.casefold())
        if facts is None or not facts.exists:
            raise NotFoundError(f"{client.host}: package {source.host_path} does not exist on the host")
        return StagedPackage(source.host_path, "host", facts.size)
    if source.unc_path and source.unc_path.startswith("\\\\"):
        escape.cmd_path(source.unc_path, "unc_path")
        return StagedPackage(source.unc_path, "unc", None)
    raise NotFoundError("no package source: give data, a path on the host or a UNC path")
