# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM client's connections to one host: the in-flight bound and connection reuse in one place."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, TypeAlias

from . import ntlm_http

if TYPE_CHECKING:
    from winrm.protocol import Protocol


# What the pool hands out: our own NTLM-over-HTTP session where it applies (``use_own_ntlm``), else a
# pywinrm protocol. Both carry one request at a time.
Channel: TypeAlias = "Protocol | ntlm_http.NtlmHttpSession"


class Lease:
    def __init__(self, protocol: Channel, fresh: bool) -> None:
        self.protocol = protocol
        self.fresh = fresh
        self.broken = False


# When a request finds every connection busy, does it queue or open its own? With NTLM over HTTP through
# ntlm_http a new connection costs the TCP handshake and one HTTP round trip (the challenge) before its
# first request; a request queued on a ready (authenticated) connection waits one round trip per request
# ahead of it. So:
# * while every open connection is still in its handshake, a request opens its own: it would wait for that
#   handshake anyway, and its own runs in parallel (one HTTP request more, no time lost);
# * once a connection is ready, another is opened only when more than WAITING_PER_CONNECTION requests wait
#   per ready connection: TCP plus one round trip is about 2.5 round trips on a WAN (bench/proxy.py models
#   the TCP handshake as 1.5), worth it only for the third request waiting.
# Both costs scale with the round trip, so the rule holds at 0 ms as at 25 ms (docs/performance.md has the
# measurement that chose it). A request that has waited CONNECT_PATIENCE seconds opens one anyway: a slow
# enumeration or a Receive long-poll (up to the operation timeout) must not hold up the others.
WAITING_PER_CONNECTION = 2
CONNECT_PATIENCE = 1.0


class ProtocolPool:
    """Up to ``size`` pywinrm protocols for one host, each used by one thread at a time, opened lazily.

    NTLM (and Kerberos/CredSSP) authenticate a TCP connection and number the sealed messages on it, so
    one protocol cannot carry two requests at once; concurrency needs one protocol per in-flight request.
    Idle protocols are reused, so a serial caller does exactly one handshake, and concurrent requests open
    a new one only while no open one is ready yet, or when the queue for the ready ones is long enough to
    be worth a handshake (above). A protocol counts as opening until its first request (which carries the
    handshake) comes back. The semaphore is the per-host in-flight bound."""

    def __init__(self, factory: Callable[[], Channel], size: int, *,
                 waiting_per_connection: int = WAITING_PER_CONNECTION, patience: float = CONNECT_PATIENCE) -> None:
        self._factory = factory
        self._size = size
        self._waiting_per_connection = waiting_per_connection
        self._patience = patience
        self._sem = threading.BoundedSemaphore(size)
        self._cond = threading.Condition()
        self._idle: list[Channel] = []
        self._open = 0  # protocols handed out or idle, not yet closed
        self._opening = 0  # of those, protocols still on their first request (the handshake)
        self._waiting = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.opened = 0  # protocols created: each one authenticates its own connection
        self.peak_wanted = 0  # most requests wanting a connection at once (queued or on the wire)

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        # A caller counts as waiting from its arrival, also while the in-flight bound holds it back: that
        # queue is the demand that may justify another connection.
        with self._cond:
            self._waiting += 1
            self.peak_wanted = max(self.peak_wanted, self._waiting + self.in_flight)
            self._cond.notify()  # a queued caller looks again: the queue may now be worth a connection
        try:
            self._sem.acquire()
        except BaseException:
            with self._cond:
                self._waiting -= 1
            raise
        try:
            lease = self._take()
            try:
                yield lease
            finally:
                self._give_back(lease)
        finally:
            self._sem.release()

    def _take(self) -> Lease:
        with self._cond:
            try:
                protocol = self._wait_for_protocol()
            finally:
                self._waiting -= 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if protocol is not None:
            return Lease(protocol, False)
        try:
            return Lease(self._factory(), True)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._opening -= 1
                self.in_flight -= 1
                self._cond.notify()
            raise

    def _wait_for_protocol(self) -> Channel | None:
        """An idle protocol, or None when the caller is to open a new one (counted as open already).
        Called with ``_cond`` held."""
        deadline: float | None = None
        while True:
            if self._idle:
                return self._idle.pop()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._patience
            ready = self._open - self._opening
            if self._open < self._size and (
                    ready == 0 or self._waiting > self._waiting_per_connection * ready or now >= deadline):
                self._open += 1
                self._opening += 1
                self.opened += 1
                return None
            # Past the deadline with every connection open: wait for one to come back.
            self._cond.wait(deadline - now if deadline > now else None)

    def _give_back(self, lease: Lease) -> None:
        with self._cond:
            self.in_flight -= 1
            if lease.fresh:
                self._opening -= 1
            if lease.broken:
                self._open -= 1
            else:
                self._idle.append(lease.protocol)
            self._cond.notify()
        if lease.broken:
            close_protocol(lease.protocol)

    def clear(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for protocol in idle:
            close_protocol(protocol)


def close_protocol(protocol: Channel) -> None:
    # Closing a dead connection must never mask the error that killed it.
    with suppress(Exception):
        if isinstance(protocol, ntlm_http.NtlmHttpSession):
            protocol.close()
        else:
            protocol.transport.close_session()
