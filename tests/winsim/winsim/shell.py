"""The WinRS cmd shell (resource ``.../windows/shell/cmd``): Create, Command, Send, Receive, Signal, Delete.

Processes come from ``Host.start_process``; this module only keeps the WS-Man side: shell and command ids,
buffered output, the Receive long-poll (Windows holds a Receive until output arrives or OperationTimeout
passes, then faults with 2150858793 and the client simply asks again), idle expiry and the shell quota.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import functools
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import faults
from .soap import NS_SHELL, Elem, child, child_text, local_name, new_guid, parse_duration

CMD_SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SIGNAL_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/"
COMMAND_NOT_FOUND = 2150859085

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], Awaitable[T]]


def command_not_found(command_id: str) -> faults.WsmanFault:
    return faults.WsmanFault(
        COMMAND_NOT_FOUND,
        "w:InvalidParameter",
        f"The WS-Management service cannot process the request because the command with CommandId {command_id} "
        "was not found in the shell. The command may have been terminated or never started.",
    )


OEM_CODEPAGE = 437
UTF8_CODEPAGE = 65001


@dataclass
class Command:
    command_id: str
    process: Any  # machine half's Process
    codepage: int = OEM_CODEPAGE
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None
    _stdin_decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    def to_console(self, data: bytes, final: bool) -> bytes:
        """Client stdin -> the console's bytes. The machine's console is OEM (cp437); WinRS with
        WINRS_CODEPAGE=65001 (what Ansible asks for) means the client writes UTF-8."""
        if self.codepage != UTF8_CODEPAGE:
            return data
        return self._stdin_decoder.decode(data, final).encode("cp437", "replace")

    def from_console(self, data: bytes) -> bytes:
        """Console output -> what the client receives: re-encoded as UTF-8 under code page 65001."""
        if self.codepage != UTF8_CODEPAGE or not data:
            return data
        return data.decode("cp437").encode("utf-8")

    @property
    def finished(self) -> bool:
        return self.exit_code is not None


@dataclass
class Shell:
    shell_id: str
    owner: str
    working_directory: str | None
    environment: dict[str, str]
    options: dict[str, str]
    input_streams: str
    output_streams: str
    idle_timeout: float
    codepage: int = OEM_CODEPAGE
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    commands: dict[str, Command] = field(default_factory=dict)

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def expired(self, now: float) -> bool:
        return now - self.last_used > self.idle_timeout


class ShellManager:
    """The open shells of one host."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.shells: dict[str, Shell] = {}

    def count(self, owner: str) -> int:
        return sum(1 for shell in self.shells.values() if shell.owner.lower() == owner.lower())

    def clear(self) -> None:
        """The host rebooted: every shell and process is gone without a trace."""
        self.shells.clear()

    async def expire_idle(self, run: Runner[Any]) -> None:
        now = time.monotonic()
        for shell in [s for s in self.shells.values() if s.expired(now)]:
            await self.delete(shell.shell_id, run)

    def get(self, shell_id: str | None) -> Shell:
        shell = self.shells.get((shell_id or "").upper())
        if shell is None:
            raise faults.shell_not_found(shell_id or "")
        shell.touch()
        return shell

    def create(self, owner: str, body: ET.Element | None, options: dict[str, str], limit: int) -> Shell:
        if self.count(owner) >= limit:
            raise faults.quota_shells(limit)
        if body is None or body.tag != f"{{{NS_SHELL}}}Shell":
            raise faults.schema_validation("Create on the cmd shell needs an rsp:Shell body")
        shell = Shell(
            shell_id=new_guid(),
            owner=owner,
            working_directory=child_text(body, NS_SHELL, "WorkingDirectory") or None,
            environment=_environment(body),
            options=dict(options),
            input_streams=child_text(body, NS_SHELL, "InputStreams") or "stdin",
            output_streams=child_text(body, NS_SHELL, "OutputStreams") or "stdout stderr",
            idle_timeout=self._idle_timeout(body),
            codepage=_codepage(options),
        )
        self.shells[shell.shell_id] = shell
        return shell

    def _idle_timeout(self, body: ET.Element) -> float:
        text = child_text(body, NS_SHELL, "IdleTimeOut")
        # A client may shorten the idle timeout, never lengthen it past the service's setting.
        return min(parse_duration(text), self.idle_timeout) if text else self.idle_timeout

    async def command(self, shell: Shell, body: ET.Element | None, start: Callable[[str, list[str], str | None], Any],
                      run: Runner[Any]) -> str:
        if body is None or local_name(body.tag) != "CommandLine":
            raise faults.schema_validation("Command needs an rsp:CommandLine body")
        command = child_text(body, NS_SHELL, "Command")
        if not command:
            raise faults.schema_validation("rsp:CommandLine has no rsp:Command")
        # pywinrm joins all arguments into one rsp:Arguments, pypsrp writes one element per argument.
        arguments = [(el.text or "") for el in body.findall(f"{{{NS_SHELL}}}Arguments")]
        command_id = (body.get("CommandId") or new_guid()).upper()
        process = await run(lambda: start(command, arguments, shell.working_directory))
        shell.commands[command_id] = Command(command_id, process, shell.codepage)
        return command_id

    async def send(self, shell: Shell, body: ET.Element | None, run: Runner[Any], corrupt: bool = False) -> None:
        if body is None or local_name(body.tag) != "Send":
            raise faults.schema_validation("Send needs an rsp:Send body")
        for stream in body.findall(f"{{{NS_SHELL}}}Stream"):
            cmd = self._command(shell, stream.get("CommandId"))
            try:
                data = base64.b64decode(stream.text or "", validate=True)
            except binascii.Error as exc:
                raise faults.schema_validation("stdin is not base64") from exc
            end = (stream.get("End") or "").lower() == "true"
            if corrupt and data:
                # Injected: the middle byte changes (to another base64 letter, so the text still decodes).
                middle = next((i for i in range(len(data) // 2, len(data)) if data[i:i + 1].isalnum()), None)
                if middle is not None:
                    swapped = b"B" if data[middle:middle + 1] == b"A" else b"A"
                    data = data[:middle] + swapped + data[middle + 1:]
            await run(functools.partial(cmd.process.write_stdin, cmd.to_console(data, end), end))

    async def receive(self, shell: Shell, body: ET.Element | None, timeout: float, max_bytes: int,
                      run: Runner[Any]) -> Elem:
        desired = child(body, NS_SHELL, "DesiredStream")
        if desired is None:
            raise faults.schema_validation("Receive needs rsp:Receive/rsp:DesiredStream")
        cmd = self._command(shell, desired.get("CommandId"))
        await self._wait_for_output(cmd, timeout, run)
        shell.touch()
        return _receive_response(cmd, (desired.text or "stdout stderr").split(), max_bytes)

    async def _wait_for_output(self, cmd: Command, timeout: float, run: Runner[Any]) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            await self._pump(cmd, run)
            if cmd.stdout or cmd.stderr or cmd.finished:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise faults.operation_timed_out()
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)

    async def _pump(self, cmd: Command, run: Runner[Any]) -> None:
        if cmd.finished:
            return
        out, err, code = await run(cmd.process.read)
        cmd.stdout += cmd.from_console(out)
        cmd.stderr += cmd.from_console(err)
        cmd.exit_code = code

    async def signal(self, shell: Shell, body: ET.Element | None, run: Runner[Any]) -> None:
        if body is None or local_name(body.tag) != "Signal":
            raise faults.schema_validation("Signal needs an rsp:Signal body")
        code = (child_text(body, NS_SHELL, "Code") or "").lower()
        command_id = (body.get("CommandId") or "").upper()
        cmd = shell.commands.get(command_id)
        if cmd is None:
            return  # clients send terminate after the command ended; Windows treats it as done
        # terminate, ctrl_c and ctrl_break all end a cmd-run process from the client's point of view.
        if code.startswith(SIGNAL_PREFIX) and code.endswith(("/terminate", "/ctrl_c", "/ctrl_break")):
            if not cmd.finished:
                await run(cmd.process.terminate)
            del shell.commands[command_id]
            return
        raise faults.schema_validation(f"unknown signal code {code!r}")

    async def delete(self, shell_id: str, run: Runner[Any]) -> None:
        shell = self.shells.pop(shell_id.upper(), None)
        if shell is None:
            raise faults.shell_not_found(shell_id)
        for cmd in shell.commands.values():
            if not cmd.finished:
                await run(cmd.process.terminate)

    def _command(self, shell: Shell, command_id: str | None) -> Command:
        cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise command_not_found(command_id or "")
        return cmd


def _codepage(options: dict[str, str]) -> int:
    text = options.get("WINRS_CODEPAGE", "")
    try:
        return int(text) if text else OEM_CODEPAGE
    except ValueError as exc:
        raise faults.schema_validation(f"WINRS_CODEPAGE {text!r} is not a code page number") from exc


def _environment(body: ET.Element) -> dict[str, str]:
    env = child(body, NS_SHELL, "Environment")
    if env is None:
        return {}
    return {var.get("Name", ""): var.text or "" for var in env.findall(f"{{{NS_SHELL}}}Variable") if var.get("Name")}


def _take(buffer: bytearray, limit: int) -> bytes:
    chunk = bytes(buffer[:limit])
    del buffer[:limit]
    return chunk


def _receive_response(cmd: Command, streams: list[str], max_bytes: int) -> Elem:
    children: list[Elem | str] = []
    budget = max_bytes
    for name in streams:
        buffer = cmd.stdout if name == "stdout" else cmd.stderr if name == "stderr" else bytearray()
        chunk = _take(buffer, max(budget, 0))
        budget -= len(chunk)
        if chunk:
            children.append(Elem("rsp:Stream", [("Name", name), ("CommandId", cmd.command_id)],
                                 text=base64.b64encode(chunk).decode("ascii")))
    done = cmd.finished and not cmd.stdout and not cmd.stderr
    if done:
        # Windows closes each stream with an empty End="true" element alongside the Done state.
        children.extend(Elem("rsp:Stream", [("Name", name), ("CommandId", cmd.command_id), ("End", "true")])
                        for name in streams)
        state = Elem("rsp:CommandState", [("CommandId", cmd.command_id), ("State", STATE_DONE)],
                     [Elem("rsp:ExitCode", text=str(cmd.exit_code))])
    else:
        state = Elem("rsp:CommandState", [("CommandId", cmd.command_id), ("State", STATE_RUNNING)])
    children.append(state)
    return Elem("rsp:ReceiveResponse", [("xmlns:rsp", NS_SHELL)], children)


def create_response(shell: Shell, address: str, detailed: bool) -> list[Elem]:
    """``x:ResourceCreated`` (all versions) plus, from WinRM 2.0 on, the ``rsp:Shell`` description."""
    selector = Elem("w:SelectorSet", children=[Elem("w:Selector", [("Name", "ShellId")], text=shell.shell_id)])
    created = Elem("x:ResourceCreated", children=[
        Elem("a:Address", text=address),
        Elem("a:ReferenceParameters", children=[Elem("w:ResourceURI", text=CMD_SHELL_URI), selector]),
    ])
    if not detailed:
        return [created]
    description = Elem("rsp:Shell", [("xmlns:rsp", NS_SHELL)], [
        Elem("rsp:ShellId", text=shell.shell_id),
        Elem("rsp:ResourceUri", text=CMD_SHELL_URI),
        Elem("rsp:Owner", text=shell.owner),
        Elem("rsp:ClientIP", text="127.0.0.1"),
        Elem("rsp:IdleTimeOut", text=f"PT{shell.idle_timeout:.3f}S"),
        Elem("rsp:InputStreams", text=shell.input_streams),
        Elem("rsp:OutputStreams", text=shell.output_streams),
        Elem("rsp:ShellRunTime", text="P0DT0H0M0S"),
        Elem("rsp:ShellInactivity", text="P0DT0H0M0S"),
    ])
    return [created, description]


def command_response(command_id: str) -> Elem:
    return Elem("rsp:CommandResponse", [("xmlns:rsp", NS_SHELL)], [Elem("rsp:CommandId", text=command_id)])
