# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One NT 4.0 host over SMB: its settings, its one session, its counters and the retry of reads.

The jobs done over it (files, registry, collect, restart, services) are the classes beside this one; the
transport (``transport.SMBTransport``) is all of them together."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from ...errors import HostUnreachableError, TransportError
from ..base import LOG_STEPS, LogFn
from ..retry import RetryPolicy
from .impacket_lib import IMPACKET
from .registry import RemoteRegistry
from .session import Session, _no_log, redact
from .settings import SMBSettings

T = TypeVar("T")


class SmbHost:
    """Talks to one NT 4.0 host over SMB. Create with settings; ``close()`` when done. Use it from one
    thread at a time (its one SMB session is not thread-safe)."""

    def __init__(self, settings: SMBSettings, log: LogFn | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        IMPACKET.require()  # before any request: the error names the pip package
        self.settings = settings
        self._log = log or _no_log
        self._sleep = sleep
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._session: Session | None = None
        self._registry: RemoteRegistry | None = None
        self.bytes_read = 0  # file content read through the shares (proves ranged version reads)
        # Whether a session to the host has logged on in this task: a failure after that is a host lost
        # (HostUnreachableError.lost, which the task's restart wait in tasks/resume.py acts on).
        self._answered = False

    # --- bookkeeping -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def request_count(self) -> int:
        return sum(self._counts.values())

    def requests_by_name(self) -> dict[str, int]:
        return dict(self._counts)

    def reset_counters(self) -> None:
        self._counts.clear()
        self.bytes_read = 0

    def log(self, level: int, message: str) -> None:
        self._log(level, redact(message, self.settings.password))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self._registry = None

    def session(self) -> Session:
        if self._session is None:
            try:
                self._session = Session(self.settings, self._counts, self.log)
            except HostUnreachableError as exc:
                exc.lost = exc.lost or self._answered
                raise
            self._answered = True
            self._registry = RemoteRegistry(self._session)
        return self._session

    @property
    def registry(self) -> RemoteRegistry:
        self.session()
        if self._registry is None:  # set together with the session
            raise AssertionError("the session has no remote registry")
        return self._registry

    # A read whose connection broke after this attempt's session had logged on went to a host that is up (a
    # restart closes the listeners: refused): up to this many times ``retries`` retries, none beyond
    # ``retries`` after LIVE_RETRY_WINDOW seconds, with backoff capped at LIVE_BACKOFF_MAX (docs/transport.md).
    LIVE_RETRY_FACTOR = 4
    LIVE_RETRY_WINDOW = 60.0
    LIVE_BACKOFF_MAX = 2.0

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.settings.retries, self.settings.backoff, live_factor=self.LIVE_RETRY_FACTOR,
                           live_window=self.LIVE_RETRY_WINDOW, live_backoff_max=self.LIVE_BACKOFF_MAX,
                           clock=self._clock, sleep=self._sleep)

    def _read(self, what: str, call: Callable[[], T]) -> T:
        """Run a read; when the connection breaks (or cannot be made), retry on a new session a bounded
        number of times with backoff. Credentials, bad requests and host answers are never retried.

        Failures in a row where the host did not take a session (refused, reset during logon) end after
        ``retries`` retries as ``HostUnreachableError`` (lost when the host answered earlier: tasks/resume.py
        waits for it). A connection that broke after the session had logged on is a host that is up on a
        lossy network, where a reset RPC call is no sign of a restart: such failures are retried further and
        giving up on them is a failure, not unreachable."""
        budget = self.retry_policy.start()
        broken = 0  # failures after the session had logged on
        while True:
            try:
                return call()
            except (HostUnreachableError, OSError) as exc:
                # Only a break of a session that had logged on is a host that is up: a refused connection or a
                # failed logon is a host going down or still starting (lost when it answered earlier in the
                # task, which is what the task's restart wait in tasks/resume.py acts on).
                logged_on = self._session is not None
                self.close()
                alive = logged_on and isinstance(exc, HostUnreachableError) and exc.lost
                broken += alive
                budget.failed(answered=alive, host_up=alive)
                if budget.exhausted:
                    if budget.gave_up_on_live_host:
                        raise TransportError(budget.gave_up(
                            self.host, what, f"the host is up (each of {broken} sessions logged on) but the "
                                             f"connection broke every time; last: "
                                             f"{redact(str(exc), self.settings.password)}")) from None
                    if isinstance(exc, HostUnreachableError):
                        exc.lost = exc.lost or self._answered
                        raise
                    lost = HostUnreachableError(f"{self.host}: {what}: {redact(str(exc), self.settings.password)}")
                    lost.lost = self._answered
                    raise lost from None
                delay = budget.next_delay()
                self.log(LOG_STEPS, f"{self.host}: {what} failed ({exc}); retry {budget.attempt + 1} (at most "
                                    f"{budget.limit}) in {delay:g}s")
                budget.pause(delay)
