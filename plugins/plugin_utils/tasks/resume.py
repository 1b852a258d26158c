# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host that goes down in the middle of a task: wait for it within the reboot timeout, then start the
task again from a fresh read of the host's state.

The transport has already retried the request (a few seconds of backoff) and classified the failure: a
refused or reset connection, or the HTTP 400 a restarted WinRM gives to a session it no longer knows, all
arrive here as ``HostUnreachableError``. A restart takes minutes, longer than any request retry, so this loop
waits for the host with the same deadline the reboot module uses. Nothing is repeated blindly: the task
starts over from reading the host, so what was done before the restart is found done and not done twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import AuthenticationError, HostUnreachableError, RebootTimeoutError
from ..transport.base import LOG_STEPS, Transport
from ..transport.retry import MAX_POLL_INTERVAL, POLL_INTERVAL, Pacing, wait_for_boot

T = TypeVar("T")

# A host that restarts more often than this within one task is not restarting, it is failing.
MAX_RESUMES = 3
# The result key saying that a task waited for its host to come back (one line per wait), and the line.
WAITED_KEY = "waited_for_restart"
WAITED_NOTE = "the host went down during the task ({reason}); resumed from a fresh read after it answered again"


def run_task(transport: Transport, work: Callable[[], dict[str, Any]], *, timeout: float) -> dict[str, Any]:
    """``run_resuming`` for a module whose work starts from reading the host (so starting it again is safe):
    its result, with ``waited_for_restart`` listing each wait when the host went down during the task."""
    waited: list[str] = []
    out = run_resuming(transport, work, timeout=timeout, on_resume=lambda reason: waited.append(
        WAITED_NOTE.format(reason=reason)))
    if waited:
        out[WAITED_KEY] = waited
    return out


def run_resuming(transport: Transport, work: Callable[[], T], *, timeout: float,
                 on_resume: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, poll_interval: float = POLL_INTERVAL,
                 max_poll_interval: float = MAX_POLL_INTERVAL) -> T:
    """``work()``, started again after the host comes back whenever it raises ``HostUnreachableError``.

    ``timeout`` (seconds, 0 = do not wait) bounds each wait. ``on_resume`` hears the reason each time the
    work starts again. A reboot timeout of the task's own (``RebootTimeoutError``, from a restart the task
    asked for) is already the result of such a wait and is not waited for again."""
    resumes = 0
    while True:
        try:
            return work()
        except RebootTimeoutError:
            raise
        except HostUnreachableError as exc:
            # A host that never answered in this task was down before it started: report it at once.
            if not exc.lost or timeout <= 0 or resumes >= MAX_RESUMES:
                raise
            reason = str(exc)
            transport.log(LOG_STEPS, f"{transport.host}: lost the host during the task ({reason}); waiting up to "
                                     f"{timeout:g} s for it to answer again")
            wait_until_reachable(transport, reason, timeout=timeout, sleep=sleep, clock=clock,
                                 poll_interval=poll_interval, max_poll_interval=max_poll_interval)
            resumes += 1
            if on_resume is not None:
                on_resume(reason)


def wait_until_reachable(transport: Transport, reason: str, *, timeout: float,
                         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                         poll_interval: float = POLL_INTERVAL, max_poll_interval: float = MAX_POLL_INTERVAL) -> None:
    """Poll the host's boot time until it answers, or raise ``HostUnreachableError`` with the reason the
    host was lost and the last probe's error once ``timeout`` seconds have passed."""
    def timed_out(last_error: str) -> HostUnreachableError:
        return HostUnreachableError(
            f"{transport.host}: the host went down during the task ({reason}) and did not answer again "
            f"within {timeout:g} seconds (last error: {last_error})")

    # An authentication error is the host up and saying no: waiting longer will not change that.
    booted = wait_for_boot(transport.host, transport.boot_time, before=None, timeout=timeout,
                           pacing=Pacing(poll_interval, max_poll_interval, clock=clock, sleep=sleep),
                           on_timeout=timed_out, log=lambda text: transport.log(LOG_STEPS, text),
                           fatal=(AuthenticationError,), known_error=reason)
    transport.log(LOG_STEPS, f"{transport.host}: answering again (booted {booted.isoformat()}); starting "
                             "the task again from a fresh read")
