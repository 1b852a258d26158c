# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection waits: request retries, polling, and waiting for a host's new boot.

Every transport and the task layer use these instead of loops of their own (tests/unit/layout/test_layering.py
checks it), so the budgets cannot drift apart and every wait has an injectable clock.

* ``RetryPolicy``: how often and how long a request is tried again (docs/transport.md, "Retries"). Failures in
  a row where the host said nothing (refused, reset before it answered: what a restart looks like) end after
  ``retries`` retries; a request of a host that keeps answering between failures (a lossy network, a busy
  service) is retried up to ``live_factor`` times as often within ``live_window`` seconds.
* ``poll``: ask until there is an answer, with growing pauses, never past the caller's timeout.
* ``wait_for_boot``: poll a host's boot time until it differs from the one before a restart (or until the host
  answers at all), asking for the restart again while a request whose answer was lost shows no effect.
* ``repeat_when_lost``: run a request whose answer may be lost; look at the host before running it again.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import KbfixError

T = TypeVar("T")

# A restart request whose answer was lost is asked again when the host still reports the old boot time this
# long after it (a host that took it stops answering within seconds: the services stop early in a shutdown),
# up to RESTART_REQUESTS requests in all. Both transports and every caller share these.
RESTART_ASK_AGAIN = 60.0
RESTART_REQUESTS = 3
POLL_INTERVAL = 2.0
MAX_POLL_INTERVAL = 15.0
POLL_GROWTH = 1.5


@dataclass(frozen=True)
class RetryPolicy:
    """A transport's retry budget. ``backoff`` doubles with each attempt, capped by ``backoff_max`` (and by
    ``live_backoff_max`` while the host is answering); ``jitter`` makes half of each pause random ("equal
    jitter") so many controllers hitting one host spread out."""

    retries: int
    backoff: float
    backoff_max: float | None = None
    live_factor: int = 1
    live_window: float = 60.0
    live_backoff_max: float | None = None
    jitter: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, *, live: bool = False) -> float:
        """The pause before retry number ``attempt + 1``."""
        ceiling = self.backoff * (2.0 ** attempt)
        if self.backoff_max is not None:
            ceiling = min(ceiling, self.backoff_max)
        if live and self.live_backoff_max is not None:
            ceiling = min(ceiling, self.live_backoff_max)
        if not self.jitter:
            return ceiling
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def start(self) -> RetryBudget:
        """The count of one request's attempts, started now."""
        return RetryBudget(self, self.clock())

    def rounds(self, limit: int) -> Iterator[int]:
        """Attempt numbers 0..``limit`` with the backoff slept between them, for work that decides for itself
        when to stop (``break``/``return``) and gives up on the last one."""
        for attempt in range(limit + 1):
            if attempt:
                self.sleep(self.delay(attempt - 1))
            yield attempt


@dataclass
class RetryBudget:
    """One request's attempts under a ``RetryPolicy``: call ``failed`` after each failure, then ``exhausted``
    says whether to give up, else ``pause`` waits for the next attempt."""

    policy: RetryPolicy
    started: float
    attempt: int = 0
    silent: int = 0  # failures in a row where the host said nothing
    live: bool = False  # whether the host is up by the last failure (it answered between failures)

    def failed(self, *, answered: bool, host_up: bool) -> None:
        """Record a failure. ``answered``: the host answered this attempt (a fault, a 5xx, a logged-on session
        that broke later); ``host_up``: the host is known to be up, so a read may be retried further."""
        self.silent = 0 if answered else self.silent + 1
        self.live = host_up and self.silent <= self.policy.retries

    @property
    def elapsed(self) -> float:
        return self.policy.clock() - self.started

    @property
    def limit(self) -> int:
        """How many retries this request gets, as things stand."""
        if self.live and self.elapsed < self.policy.live_window:
            return self.policy.retries * self.policy.live_factor
        return self.policy.retries

    @property
    def exhausted(self) -> bool:
        return self.attempt >= self.limit or self.silent > self.policy.retries

    @property
    def gave_up_on_live_host(self) -> bool:
        """Whether giving up now is giving up on a host that is up (several attempts, the host answering):
        a failure to report as such, never as unreachable."""
        return self.live and self.attempt > 0

    def next_delay(self) -> float:
        return self.policy.delay(self.attempt, live=self.live)

    def pause(self, delay: float | None = None) -> None:
        self.policy.sleep(self.next_delay() if delay is None else delay)
        self.attempt += 1

    def gave_up(self, host: str, what: str, detail: str) -> str:
        return f"{host}: gave up on {what} after {self.attempt + 1} attempts in {self.elapsed:.1f} s; {detail}"


@dataclass(frozen=True)
class Pacing:
    """How a wait paces its questions: the first pause, how it grows, its ceiling, and the clock it runs on."""

    interval: float = POLL_INTERVAL
    max_interval: float = MAX_POLL_INTERVAL
    growth: float = POLL_GROWTH
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


def poll(check: Callable[[], T | None], *, timeout: float, pacing: Pacing, on_timeout: Callable[[], Exception],
         ask_first: bool = False) -> T:
    """``check()`` until it returns something other than None, pausing between the questions, never sleeping
    past ``timeout`` seconds from now and never asking after them; then ``on_timeout()`` is raised.
    ``ask_first``: ask at once (and once more at the deadline), else pause before each question."""
    deadline = pacing.clock() + timeout
    interval = pacing.interval
    if ask_first:
        found = check()
        if found is not None:
            return found
    while True:
        remaining = deadline - pacing.clock()
        if remaining <= 0:
            raise on_timeout()
        pacing.sleep(min(interval, remaining))
        interval = min(interval * pacing.growth, pacing.max_interval)
        found = check()
        if found is not None:
            return found


@dataclass
class RestartRequest:
    """A restart that was asked for: ``lost`` when its answer was lost (the host may or may not have taken it)
    and ``ask_again()``, which asks once more and says whether that answer was lost too."""

    lost: bool
    ask_again: Callable[[], bool]
    ask_again_after: float = RESTART_ASK_AGAIN
    max_requests: int = RESTART_REQUESTS


def wait_for_boot(host: str, boot_time: Callable[[], datetime.datetime | None], *, before: datetime.datetime | None,
                  timeout: float, pacing: Pacing, on_timeout: Callable[[str], Exception],
                  log: Callable[[str], None], restart: RestartRequest | None = None,
                  fatal: tuple[type[KbfixError], ...] = (), on_error: Callable[[], None] | None = None,
                  known_error: str = "none") -> datetime.datetime:
    """Poll ``boot_time()`` until it answers with a time other than ``before`` (any time when ``before`` is
    None: the host answers again), within ``timeout`` seconds in all, the repeated restart requests included.

    While waiting, errors of the probe (refused, reset, 503 while services start, authentication not ready yet)
    are the host being down: ``on_error()`` hears each, the wait goes on. ``fatal`` errors end it. A ``restart``
    whose answer was lost is asked again when the host still reports ``before`` ``ask_again_after`` seconds
    after the last request, up to ``max_requests`` requests. ``on_timeout(last_error)`` is raised at the end
    (``known_error`` when no probe failed)."""
    last_error = known_error
    asked = pacing.clock()
    requests = 1

    def probe() -> datetime.datetime | None:
        nonlocal last_error, asked, requests
        try:
            booted = boot_time()
        except fatal:
            raise
        except KbfixError as exc:
            if on_error is not None:
                on_error()
            last_error = str(exc)
            return None
        if booted is not None and booted != before:
            return booted
        last_error = "the host reports no boot time" if booted is None else \
            f"the host still reports the boot time {booted.isoformat()}"
        if restart is not None and restart.lost and requests < restart.max_requests \
                and pacing.clock() - asked >= restart.ask_again_after:
            log(f"{host}: no restart {restart.ask_again_after:g} s after a restart request whose answer was lost; "
                "asking again")
            restart.lost = restart.ask_again()
            requests += 1
            asked = pacing.clock()
        return None

    return poll(probe, timeout=timeout, pacing=pacing, on_timeout=lambda: on_timeout(last_error))


def repeat_when_lost(run: Callable[[], T], settle: Callable[[KbfixError], T | None], *,
                     lost: tuple[type[KbfixError], ...], rounds: int) -> T:
    """``run()``; when its answer is lost (one of ``lost``), ``settle(error)`` looks at the host first and its
    answer, if not None, stands for the lost one; else ``run()`` again, up to ``rounds`` repeats."""
    repeats = 0
    while True:
        try:
            return run()
        except lost as exc:
            if repeats >= rounds:
                raise
            repeats += 1
            settled = settle(exc)
            if settled is not None:
                return settled
