# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commands on NT 4.0 without WinRM: a batch file on ADMIN$ (``command.py``) run by a one-shot service created,
started and deleted again through the service control manager (``\\pipe\\svcctl``)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ...errors import ArgumentError, HostUnreachableError, KbfixError, RemoteCommandError, TransportError
from ..base import LOG_STEPS, CommandResult
from ..retry import Pacing, poll
from . import command
from .files import FileJobs
from .impacket_lib import DELETE, scmr
from .session import Session

# Error codes of StartService (winerror.h): a batch run through cmd.exe never tells the SCM it is running,
# so the SCM gives up waiting after 30 s (1053) - by then the command is running or done.
ERROR_SERVICE_REQUEST_TIMEOUT = 1053
ERROR_SERVICE_MARKED_FOR_DELETE = 1072


class ServiceJobs(FileJobs):
    """Commands run by a one-shot service."""

    def run_command(self, line: str, *, timeout: float, success_codes: Sequence[int] | None = (0,),
                    expected_codes: Sequence[int] = ()) -> CommandResult:
        """Run ``line`` on the host (see command.py). The exit code is exact for 0, ``success_codes`` and
        ``expected_codes`` (signed); any other code is reported as None, and fails when ``success_codes`` is
        given."""
        name = f"kbfix-{secrets.token_hex(4)}"
        base = f"Temp\\{name}"
        body = command.batch_file(line, f"%SystemRoot%\\{base}.out", f"%SystemRoot%\\{base}.res", success_codes,
                                  expected_codes)
        if not 0 < timeout <= 86400:
            raise ArgumentError("timeout", "must be between 0 and 86400 seconds")
        self.log(LOG_STEPS, f"{self.host}: run {line[:200]} as service {name}")
        service_created = False
        try:
            self._put("ADMIN$", base + ".cmd", body)
            service = self._create_service(name, f"%COMSPEC% /C %SystemRoot%\\{base}.cmd")
            service_created = True  # from here on the service is deleted again, whatever happens
            self._start_service(name, service)
            code = self._wait_for(base + ".res", timeout, line)
            output = self._fetch("ADMIN$", base + ".out") or ""
        finally:
            problems = self._cleanup(name if service_created else None, base)
        if problems:
            self.log(LOG_STEPS, f"{self.host}: could not clean up: {'; '.join(problems)}")
        result = CommandResult(line, code, output, "")
        if success_codes is not None and (code is None or code not in {command.signed(c) for c in success_codes}):
            shown = "none of the listed codes" if code is None else str(code)
            raise RemoteCommandError(f"{self.host}: {line[:200]} ended with exit code {shown} "
                                     f"(expected {', '.join(map(str, success_codes))}): {output.strip()[:300]}",
                                     code, output, "")
        return result

    def _scm(self) -> tuple[Session, Any, Any]:
        session = self.session()
        dce = session.pipe("svcctl", scmr.MSRPC_UUID_SCMR)
        code, response = session.invoke("ROpenSCManagerW", "", lambda: scmr.hROpenSCManagerW(
            dce, dwDesiredAccess=scmr.SC_MANAGER_CREATE_SERVICE | scmr.SC_MANAGER_CONNECT))
        if code != 0:
            raise TransportError(f"{self.host}: cannot open the service control manager (Win32 error {code})")
        return session, dce, response["lpScHandle"]

    def _create_service(self, name: str, binary: str) -> Any:
        """Create the one-shot service; returns its handle."""
        session, dce, manager = self._scm()
        try:
            code, response = session.invoke("RCreateServiceW", name, lambda: scmr.hRCreateServiceW(
                dce, manager, name + "\0", name + "\0", dwServiceType=scmr.SERVICE_WIN32_OWN_PROCESS,
                dwStartType=scmr.SERVICE_DEMAND_START, dwErrorControl=scmr.SERVICE_ERROR_IGNORE,
                lpBinaryPathName=binary + "\0"))
        except HostUnreachableError:
            # A broken connection is not "cannot create": the host went down (a restart under way) or the
            # network dropped the call; the task's restart wait (tasks/resume.py) waits and starts again.
            raise
        except TransportError as exc:  # a fault: this SCM cannot create services at all (Samba's, for one)
            raise TransportError(f"cannot create the service {name} to run the command: {exc}") from None
        if code != 0:
            raise TransportError(f"{self.host}: cannot create the service {name} (Win32 error {code})")
        return response["lpServiceHandle"]

    def _start_service(self, name: str, service: Any) -> None:
        session, dce = self.session(), self.session().pipe("svcctl", scmr.MSRPC_UUID_SCMR)
        code, _reply = session.invoke("RStartServiceW", name, lambda: scmr.hRStartServiceW(dce, service))
        if code not in (0, ERROR_SERVICE_REQUEST_TIMEOUT):
            raise TransportError(f"{self.host}: cannot start the service {name} (Win32 error {code})")

    def _wait_for(self, result: str, timeout: float, line: str) -> int | None:
        def finished() -> tuple[int | None] | None:
            text = self._fetch("ADMIN$", result)
            if text is None:
                return None
            try:
                done = command.parse_result(text)
            except ValueError as exc:
                raise TransportError(f"{self.host}: {exc}") from None
            return None if done is None else (done.exit_code,)

        def timed_out() -> RemoteCommandError:
            return RemoteCommandError(f"{self.host}: {line[:200]} did not finish within {timeout:g} seconds")

        pacing = Pacing(0.5, 5.0, clock=self._clock, sleep=self._sleep)
        return poll(finished, timeout=timeout, pacing=pacing, on_timeout=timed_out, ask_first=True)[0]

    def _cleanup(self, service: str | None, base: str) -> list[str]:
        problems: list[str] = []
        if service is not None:
            try:
                session, dce, manager = self._scm()
                code, response = session.invoke("ROpenServiceW", service, lambda: scmr.hROpenServiceW(
                    dce, manager, service + "\0", DELETE))
                if code == 0:
                    code, _reply = session.invoke("RDeleteService", service,
                                                  lambda: scmr.hRDeleteService(dce, response["lpServiceHandle"]))
                if code not in (0, ERROR_SERVICE_MARKED_FOR_DELETE):
                    problems.append(f"service {service}: Win32 error {code}")
            except KbfixError as exc:
                problems.append(f"service {service}: {exc}")
        for suffix in (".cmd", ".out", ".res"):
            problem = self._delete("ADMIN$", base + suffix)
            if problem:
                problems.append(problem)
        return problems
