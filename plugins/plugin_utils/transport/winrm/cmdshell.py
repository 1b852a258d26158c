# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes through the WinRM cmd shell (WinRS), and reboots (uploads: ``upload.py``).

A command is ``cmd.exe /c <line>`` on the host: Create a shell, Command, Receive until the command state
is Done, Delete the shell.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import TracebackType

from ...errors import (
    AmbiguousWriteError,
    HostUnreachableError,
    InstanceNotFoundError,
    KbfixError,
    OperationTimeoutError,
    RebootTimeoutError,
    RemoteCommandError,
    TransportError,
)
from .. import escape
from ..base import DEFAULT_COMMAND_TIMEOUT, LOG_OPERATIONS, LOG_STEPS, CommandResult
from ..retry import MAX_POLL_INTERVAL, POLL_INTERVAL, RESTART_ASK_AGAIN, Pacing, RestartRequest, wait_for_boot
from . import replies, wmi, wsman
from .client import WinRMClient, with_settings

CMD_MAX_LINE = escape.CMD_MAX_LINE
NOT_RECOGNIZED_EXIT = 9009  # cmd.exe /c <unknown program>
DEFAULT_TIMEOUT = DEFAULT_COMMAND_TIMEOUT


def _codec(codepage: int) -> str:
    return "utf-8" if codepage == 65001 else f"cp{codepage}"


class CmdShell:
    """One WinRS cmd shell; use as a context manager so the shell is always deleted (WinRM 2.0 allows
    only 5 shells per user)."""

    def __init__(self, client: WinRMClient, *, codepage: int = 437, working_directory: str | None = None,
                 environment: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        # 437 is the OEM code page every supported Windows accepts; UTF-8 (65001) is unreliable before Vista.
        self.client = client
        self.codepage = codepage
        self.working_directory = working_directory
        self.environment = dict(environment or {})
        self.shell_id: str | None = None
        self._clock = clock

    def __enter__(self) -> CmdShell:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> str:
        if self.shell_id is None:
            request = wsman.shell_create_request(codepage=self.codepage, working_directory=self.working_directory,
                                                 environment=self.environment)
            self.shell_id = replies.shell_id(self.client.send(request, idempotent=True))
            self.client.log(LOG_OPERATIONS, f"{self.client.host}: opened cmd shell {self.shell_id}")
        return self.shell_id

    def close(self) -> None:
        if self.shell_id is None:
            return
        shell_id, self.shell_id = self.shell_id, None
        try:
            self.client.send(wsman.shell_delete_request(shell_id), idempotent=True)
        except KbfixError as exc:  # the service drops idle shells itself; do not hide the real error
            self.client.log(LOG_STEPS, f"{self.client.host}: could not delete shell {shell_id}: {exc}")

    def run(self, line: str, *, timeout: float = DEFAULT_TIMEOUT, stdin: bytes | None = None) -> CommandResult:
        """Run one cmd.exe command line and wait for it. On timeout the command is terminated (Signal)
        and ``RemoteCommandError`` raised with the output so far."""
        if len(line) > CMD_MAX_LINE:
            raise TransportError(f"command line of {len(line)} characters exceeds cmd.exe's {CMD_MAX_LINE}")
        shell_id = self.open()
        self.client.log(LOG_STEPS, f"{self.client.host}: run {line[:200]}")
        reply = self.client.send(wsman.shell_command_request(shell_id, line), idempotent=False)
        command_id = replies.command_id(reply)
        if stdin is not None:
            self.client.send(wsman.shell_send_request(shell_id, command_id, stdin, end=True), idempotent=False)
        return self.collect(shell_id, command_id, line, timeout)

    def collect(self, shell_id: str, command_id: str, line: str, timeout: float) -> CommandResult:
        """Receive a started command's output until it is done (``line`` names it in messages)."""
        deadline = self._clock() + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                self._terminate(shell_id, command_id)
                raise RemoteCommandError(f"{self.client.host}: {line[:200]} did not finish within {timeout:g} "
                                         "seconds and was terminated", None, self._text(out), self._text(err))
            try:
                # Receive long-polls for up to OperationTimeout; the timeout fault just means "no output yet".
                # Never poll past our own deadline (at least 1 s: shorter waits only add requests). A Receive
                # is not repeatable: the service hands each piece of output (and the exit code) out once, so
                # one lost after sending is an ambiguous command (AmbiguousWriteError), settled by the caller:
                # a Receive sent again gets nothing of what the lost one took, and would report a command
                # that worked as failed.
                request = wsman.shell_receive_request(shell_id, command_id, max(1.0, remaining))
                chunk = replies.receive_chunk(self.client.send(request, idempotent=False, retry_timeouts=False,
                                                               poll=True))
            except OperationTimeoutError:
                continue
            out.append(chunk.stdout)
            err.append(chunk.stderr)
            if chunk.done:
                code = chunk.exit_code if chunk.exit_code is not None else -1
                return CommandResult(line, code, self._text(out), self._text(err))

    def _terminate(self, shell_id: str, command_id: str) -> None:
        try:
            self.client.send(wsman.shell_signal_request(shell_id, command_id), idempotent=True)
        except KbfixError as exc:
            self.client.log(LOG_STEPS, f"{self.client.host}: could not terminate command: {exc}")

    def _text(self, parts: list[bytes]) -> str:
        return b"".join(parts).decode(_codec(self.codepage), "replace")


def _check(result: CommandResult, success_codes: Sequence[int] | None, host: str) -> CommandResult:
    if success_codes is not None and result.exit_code not in success_codes:
        detail = (result.stderr or result.stdout).strip()
        raise RemoteCommandError(f"{host}: {result.command[:200]} exited with {result.exit_code}"
                                 + (f": {detail[:500]}" if detail else ""),
                                 result.exit_code, result.stdout, result.stderr)
    return result


def run(client: WinRMClient, program: str, args: Sequence[str] = (), *, timeout: float = DEFAULT_TIMEOUT,
        success_codes: Sequence[int] | None = (0,), shell: CmdShell | None = None,
        repeatable: bool = False) -> CommandResult:
    """Run ``program`` with ``args`` (each quoted for cmd.exe; see escape.cmd_quote for what is refused)."""
    return run_line(client, escape.cmd_line(program, list(args)), timeout=timeout,
                    success_codes=success_codes, shell=shell, repeatable=repeatable)


def run_line(client: WinRMClient, line: str, *, timeout: float = DEFAULT_TIMEOUT,
             success_codes: Sequence[int] | None = (0,), shell: CmdShell | None = None,
             repeatable: bool = False) -> CommandResult:
    """Run a cmd.exe line the caller built (quoting is the caller's: use escape.py).

    ``repeatable``: running the line twice does no harm (``del``, ``reg add /f``, a decode that overwrites
    its output), so when the Command was lost after sending (``AmbiguousWriteError``) it is run again in a
    new shell, as often as the client retries a read. Otherwise the ambiguity goes to the caller, who must
    look at the host before deciding (an installer, an append)."""
    attempt = 0
    while True:
        try:
            if shell is not None:
                return _check(shell.run(line, timeout=timeout), success_codes, client.host)
            with CmdShell(client) as own:
                return _check(own.run(line, timeout=timeout), success_codes, client.host)
        except AmbiguousWriteError as exc:
            if not repeatable or attempt >= client.settings.retries:
                raise
            attempt += 1
            if shell is not None:
                shell.close()  # the shell may have gone with the connection; the next run opens a new one
            client.log(LOG_STEPS, f"{client.host}: {exc}; running {line[:80]} again (it is repeatable)")


def reg_add_none(client: WinRMClient, key: str, name: str) -> None:
    """Write a REG_NONE value with reg.exe (StdRegProv has no method for that type)."""
    args = ["add", key, "/ve"] if name == "" else ["add", key, "/v", name]
    run(client, "reg", [*args, "/t", "REG_NONE", "/f"], timeout=120, repeatable=True)


def delete_file(client: WinRMClient, path: str) -> None:
    """``del /f /q`` a file this collection put on the host; del exits 0 for a missing file too."""
    run_line(client, f"del /f /q {escape.cmd_path(path)}", success_codes=None, timeout=120, repeatable=True)


# ---------------------------------------------------------------------------------------------------
# Reboot


REBOOT_METHODS = ("shutdown", "wmi")
# What shutdown.exe exits with when a restart is already on its way (Win32 ERROR_SHUTDOWN_IS_SCHEDULED and
# ERROR_SHUTDOWN_IN_PROGRESS): asking again after a lost reply is then done, not failed.
SHUTDOWN_ALREADY_SCHEDULED = 1190
SHUTDOWN_IN_PROGRESS = 1115


def shutdown_args(delay: int, message: str) -> list[str]:
    """shutdown.exe's arguments: restart, force applications closed, after ``delay`` seconds, with an
    optional comment (``/c``) shown to logged-on users."""
    args = ["/r", "/f", "/t", str(delay)]
    return [*args, "/c", message] if message else args


def boot_time(client: WinRMClient) -> datetime.datetime:
    """The host's LastBootUpTime; a reboot is only proven by this value changing, so it must be there."""
    booted = wmi.last_boot_time(client)
    if booted is None:
        raise TransportError(f"{client.host}: Win32_OperatingSystem has no LastBootUpTime")
    return booted


def reboot(client: WinRMClient, *, timeout: float = 600, delay: int = 0, message: str = "",
           method: str = "shutdown", connect_timeout: float | None = None, before: datetime.datetime | None = None,
           poll_interval: float = POLL_INTERVAL, max_poll_interval: float = MAX_POLL_INTERVAL,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
           grace: float = RESTART_ASK_AGAIN) -> datetime.datetime:
    """Restart the host and wait until WinRM answers with a NEW LastBootUpTime. Returns it.

    ``delay`` and ``message`` are shutdown.exe's ``/t`` and ``/c`` (method ``shutdown`` only; Win32Shutdown
    restarts at once). ``timeout`` counts from the end of ``delay``, so a long delay does not eat it, and bounds
    the whole wait, restart requests asked again included. ``connect_timeout`` bounds each TCP connect while
    waiting (capped at 5 s, see ``wait_for_new_boot``). ``before`` is a boot time the caller has just read
    (saves a query). ``grace``: how long a restart request lost after sending gets to show a new boot before it
    is asked again (safe: a restart that is on its way after all answers 1190 or 1115)."""
    if method not in REBOOT_METHODS:
        raise ValueError(f"unknown reboot method {method!r}")
    if before is None:
        before = boot_time(client)
    client.log(LOG_STEPS, f"{client.host}: rebooting (booted {before.isoformat()}) with {method}"
                          + (f" in {delay}s" if method == "shutdown" else ""))
    started = _request_restart(client, method, delay, message)
    client.close()
    if method == "shutdown" and delay > 0:
        sleep(delay)

    def ask_again() -> bool:
        again = _request_restart(client, method, 0, message, again=True)
        client.close()
        return not again

    waiter = client if connect_timeout is None else with_settings(client, connection_timeout=connect_timeout)
    return wait_for_new_boot(waiter, before, timeout=timeout, poll_interval=poll_interval,
                             max_poll_interval=max_poll_interval, sleep=sleep, clock=clock,
                             restart=RestartRequest(not started, ask_again, grace))


def _request_restart(client: WinRMClient, method: str, delay: int, message: str, again: bool = False) -> bool:
    """Ask for the restart. False when the request was lost after sending (reset, or the service's
    operation timeout): the restart may or may not be under way, and the caller settles it by whether a
    new boot shows up."""
    try:
        _start_restart(client, method, delay, message, again)
    except AmbiguousWriteError as exc:
        client.log(LOG_STEPS, f"{client.host}: {exc}; watching for the restart before asking again")
        return False
    except HostUnreachableError as exc:
        # The host going down under our feet is the expected way for this request to end (connection
        # refused or reset while it is down). Had the request never arrived, the wait below reports the
        # unchanged boot time.
        client.log(LOG_STEPS, f"{client.host}: connection dropped as the reboot started ({exc})")
    except InstanceNotFoundError as exc:
        # With a short /t the restart can win the race against the shell's Receive: once WinRM is back the
        # old shell id is unknown ("shell not found"). Win32Shutdown has no shell, so there it is real.
        if method != "shutdown":
            raise
        client.log(LOG_STEPS, f"{client.host}: the shell was gone as the reboot started ({exc})")
    return True


def _start_restart(client: WinRMClient, method: str, delay: int, message: str, again: bool = False) -> None:
    if method == "wmi":
        rv = wmi.win32_shutdown(client, 6)  # 2 reboot + 4 force
        if rv != 0:
            raise RemoteCommandError(f"{client.host}: Win32Shutdown(6) returned {rv}", rv)
        return
    codes = (0, SHUTDOWN_ALREADY_SCHEDULED, SHUTDOWN_IN_PROGRESS) if again else (0,)
    run(client, "shutdown", shutdown_args(delay, message), timeout=120, success_codes=codes)


def wait_for_new_boot(client: WinRMClient, before: datetime.datetime, *, timeout: float,
                      poll_interval: float = POLL_INTERVAL, max_poll_interval: float = MAX_POLL_INTERVAL,
                      sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                      restart: RestartRequest | None = None) -> datetime.datetime:
    """Wait for a LastBootUpTime other than ``before`` (``retry.wait_for_boot``), within ``timeout`` seconds."""
    # No retries inside the client: the wait is the retry, with its own pacing and deadline.
    probe = with_settings(client, retries=0, connection_timeout=min(5.0, client.settings.connection_timeout))

    def timed_out(last_error: str) -> RebootTimeoutError:
        return RebootTimeoutError(f"Timed out waiting for {client.host} to come back after reboot: no new boot "
                                  f"time after {timeout:g} seconds (last error: {last_error})")

    try:
        booted = wait_for_boot(client.host, partial(wmi.last_boot_time, probe), before=before, timeout=timeout,
                               pacing=Pacing(poll_interval, max_poll_interval, clock=clock, sleep=sleep),
                               on_timeout=timed_out, log=lambda text: client.log(LOG_STEPS, text), restart=restart)
    finally:
        probe.close()
    client.log(LOG_STEPS, f"{client.host}: back up, booted {booted.isoformat()}")
    return booted
