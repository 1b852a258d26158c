# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot time and restart of an NT 4.0 host: ``NetrServerStatisticsGet`` level 0 over ``\\pipe\\srvsvc`` gives
``sts0_start``, when the Server service started (on NT, during boot); ``BaseInitiateSystemShutdown`` over
``\\pipe\\winreg`` restarts it; the wait for a new ``sts0_start`` is ``retry.wait_for_boot``."""

from __future__ import annotations

import dataclasses
import datetime

from ...errors import ArgumentError, AuthenticationError, HostUnreachableError, RebootTimeoutError, TransportError
from ..base import LOG_STEPS, MAX_REBOOT_DELAY, MAX_REBOOT_MESSAGE
from ..retry import RESTART_ASK_AGAIN, Pacing, RestartRequest, wait_for_boot
from .host import SmbHost
from .impacket_lib import srvs


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


class RestartJobs(SmbHost):
    """The boot time, and a restart proven by a new one."""

    def boot_time(self) -> datetime.datetime:
        """When the Server service started (``sts0_start`` of NetrServerStatisticsGet level 0, seconds since
        1970 UTC): NT 4.0 has no LastBootUpTime, and the Server service starts with the system."""
        def read() -> datetime.datetime:
            session = self.session()
            dce = session.pipe("srvsvc", srvs.MSRPC_UUID_SRVS)
            request = srvs.NetrServerStatisticsGet()
            request["ServerName"] = srvs.NULL
            request["Service"] = srvs.NULL
            request["Level"] = 0
            request["Options"] = 0
            code, response = session.call(dce, request, "level 0")
            if code != 0:
                raise TransportError(f"{self.host}: NetrServerStatisticsGet returned Win32 error {code}")
            start = int(response["InfoStruct"]["sts0_start"])
            if start == 0:
                raise TransportError(f"{self.host}: NetrServerStatisticsGet reports no start time")
            return _utc(start)
        return self._read("boot time", read)

    def initiate_restart(self, *, delay: int, message: str) -> None:
        """Ask the host to restart in ``delay`` seconds (BaseInitiateSystemShutdown), without waiting."""
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_REBOOT_DELAY:
            raise ArgumentError("delay", f"must be a whole number of seconds from 0 to {MAX_REBOOT_DELAY}")
        if len(message) > MAX_REBOOT_MESSAGE or "\0" in message:
            raise ArgumentError("message", f"must be at most {MAX_REBOOT_MESSAGE} characters without NUL")
        self.registry.shutdown(message, delay)
        self.log(LOG_STEPS, f"{self.host}: restart requested in {delay}s")

    def restart(self, *, timeout: float, delay: int = 0, message: str = "", connect_timeout: float | None = None,
                before: datetime.datetime | None = None, poll_interval: float = 2.0,
                ask_again_after: float = RESTART_ASK_AGAIN) -> datetime.datetime:
        """Restart and wait until the host answers with a new boot time (returned). The boot time is read
        first (or ``before``, read by the caller): a restart that cannot be proven is not started. While
        waiting each probe connects with ``connect_timeout`` seconds (default: the transport's timeout), so a
        host that is down does not hold one probe for a minute. ``timeout`` counts from the end of ``delay``
        and bounds the whole wait, repeated requests included (``retry.wait_for_boot``)."""
        if not 0 < timeout <= 86400:
            raise ArgumentError("timeout", "must be between 0 and 86400 seconds")
        if connect_timeout is not None and not 0 < connect_timeout <= 3600:
            raise ArgumentError("connect_timeout", "must be between 0 and 3600 seconds")
        if before is None:
            before = self.boot_time()
        lost = self._ask_restart(delay, message)
        self.close()
        self._sleep(delay)

        def ask_again() -> bool:
            again = self._ask_restart(delay, message, repeat=True)
            self.close()
            return again

        def timed_out(last_error: str) -> RebootTimeoutError:
            return RebootTimeoutError(f"Timed out waiting for {self.host} to come back after the restart: no new "
                                      f"boot time after {timeout:g} seconds (last error: {last_error})")

        settings = self.settings
        if connect_timeout is not None:
            self.settings = dataclasses.replace(settings, timeout=connect_timeout)
        try:
            booted = wait_for_boot(
                self.host, self.boot_time, before=before, timeout=timeout,
                pacing=Pacing(poll_interval, poll_interval, clock=self._clock, sleep=self._sleep),
                on_timeout=timed_out, log=lambda text: self.log(LOG_STEPS, text),
                restart=RestartRequest(lost, ask_again, ask_again_after), on_error=self.close)
        finally:
            if self.settings is not settings:
                self.close()  # the probe session's socket has the short timeout
                self.settings = settings
        self.log(LOG_STEPS, f"{self.host}: back up, Server service started {booted.isoformat()}")
        return booted

    def _ask_restart(self, delay: int, message: str, *, repeat: bool = False) -> bool:
        """Ask for the restart; True when the answer was lost (the host may or may not have taken it). A repeat
        that the host refuses (a shutdown already under way) is waited for; a first request refused fails."""
        try:
            self.initiate_restart(delay=delay, message=message)
        except HostUnreachableError as exc:
            self.log(LOG_STEPS, f"{self.host}: connection dropped as the restart was asked for ({exc})")
            return True
        except TransportError as exc:
            if not repeat or isinstance(exc, AuthenticationError):
                raise
            self.log(LOG_STEPS, f"{self.host}: the restart request was refused ({exc}); waiting for it")
        return False
