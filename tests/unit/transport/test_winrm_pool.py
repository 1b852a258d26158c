# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client's connection pool (issue 13): connections are opened lazily, in parallel only while none is ready
yet, then when the queue for the ready ones is worth a handshake or a request has waited too long, within the
in-flight bound.

The pool hands out real pywinrm ``Protocol`` objects (creating one does not connect: the handshake happens on
its first message), so these tests need no host; the callers hold their lease for a while the way a request
holds its connection until the reply."""

from __future__ import annotations

import threading
import time

import pytest
from winrm.protocol import Protocol

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.pool import ProtocolPool


def new_protocol() -> Protocol:
    return Protocol("http://192.0.2.1:5985/wsman", transport="ntlm", username="u", password="p")


def hold_concurrently(pool: ProtocolPool, callers: int, seconds: float) -> list[Protocol]:
    """``callers`` threads arriving together, each holding a lease for ``seconds``; the protocols they got."""
    got: list[Protocol] = []
    lock = threading.Lock()
    start = threading.Barrier(callers)

    def caller() -> None:
        start.wait()
        with pool.lease() as lease:
            with lock:
                got.append(lease.protocol)
            time.sleep(seconds)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == callers
    return got


def test_serial_callers_share_one_connection() -> None:
    pool = ProtocolPool(new_protocol, 5)
    seen = set()
    for _ in range(6):
        with pool.lease() as lease:
            seen.add(id(lease.protocol))
    assert pool.opened == 1 and len(seen) == 1


def test_requests_arriving_during_the_handshake_open_their_own() -> None:
    """Three requests at once on a new pool (a task's first round): none of them finds a connection ready, and
    waiting for the first one's handshake is no faster than doing its own in parallel, so each opens one."""
    pool = ProtocolPool(new_protocol, 5)
    got = hold_concurrently(pool, 3, 0.05)
    assert pool.opened == 3 and len({id(p) for p in got}) == 3
    assert pool.peak_in_flight == 3 and pool.peak_wanted == 3


def test_requests_queue_for_a_ready_connection_up_to_two_each() -> None:
    """Once a connection is ready (authenticated), a new one is worth it only for the third request waiting
    per ready connection: three concurrent requests share it, a fourth opens another."""
    pool = ProtocolPool(new_protocol, 5)
    with pool.lease():
        pass  # the handshake: the connection is ready from now on
    got = hold_concurrently(pool, 3, 0.05)
    assert pool.opened == 1 and len({id(p) for p in got}) == 1
    got = hold_concurrently(pool, 4, 0.05)
    assert pool.opened == 2 and len({id(p) for p in got}) == 2


def test_a_deep_queue_opens_more_connections_up_to_the_bound() -> None:
    """Fifty callers (the in-flight bound holds 45 of them back): the queue is worth more connections, up to
    the bound, and never more requests on the wire than the bound."""
    pool = ProtocolPool(new_protocol, 5)
    got = hold_concurrently(pool, 50, 0.02)
    assert pool.opened == 5 and len({id(p) for p in got}) == 5
    assert pool.peak_in_flight == 5


def test_a_request_waits_at_most_the_patience_for_a_busy_connection() -> None:
    """One request holds the connection (a Receive long-poll, a slow enumeration): the next one waits its
    patience, then opens its own instead of waiting for the reply."""
    pool = ProtocolPool(new_protocol, 5, patience=0.05)
    with pool.lease():
        pass  # authenticated: the slow request below holds a ready connection, not one still opening
    released = threading.Event()
    held = threading.Event()

    def slow() -> None:
        with pool.lease():
            held.set()
            released.wait(10)

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pool.lease() as lease:
            waited = time.monotonic() - started
            assert lease.fresh
        assert pool.opened == 2
        assert waited >= 0.05
    finally:
        released.set()
        thread.join(10)


def test_a_broken_connection_is_not_reused() -> None:
    pool = ProtocolPool(new_protocol, 2)
    with pool.lease() as lease:
        first = lease.protocol
        lease.broken = True
    with pool.lease() as lease:
        assert lease.fresh and lease.protocol is not first
    assert pool.opened == 2


def test_a_factory_failure_does_not_leak_a_slot() -> None:
    calls = []

    def factory() -> Protocol:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("cannot set up")
        return new_protocol()

    pool = ProtocolPool(factory, 1)
    with pytest.raises(OSError), pool.lease():
        pass
    with pool.lease() as lease:  # the only slot is free again
        assert lease.fresh
    assert pool.in_flight == 0
