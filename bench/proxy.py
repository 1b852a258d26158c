"""A TCP proxy that adds one-way latency in each direction, to put a WAN between Ansible and winsim.

Why not winsim's ``latency_ms`` fault: it sleeps once before the server handles each HTTP request, so it
models a round trip per request but not the TCP handshake a new connection costs. The baseline opens a new
connection for every task and our client keeps a few pooled ones: the handshake is exactly where they differ.

What one connection sees through the proxy, with one-way delay ``d``:

* the handshake: a client's connect() returns at once on loopback, so the first bytes it sends are held
  until ``3 d`` after the accept (SYN, SYN-ACK, then the data's own trip), as on a real link where the
  client may send only after a round trip;
* every later chunk, in either direction, arrives ``d`` after it was read; chunks keep their order and
  several can be in flight at once (a delay line, not a stop-and-wait);
* a half-close (EOF) travels with the same delay.

TCP_NODELAY is set on both sides: with Nagle and delayed ACKs the kernel would add up to 40 ms of its own
to small writes and the figures would measure that instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterable


class DelayProxy:
    """Listen on 127.0.0.1 for each target and forward to it with ``delay_ms`` each way.

    ``with DelayProxy([("127.0.0.1", 5985)], 25) as proxy: proxy.ports[("127.0.0.1", 5985)]`` is where
    clients connect. The event loop runs in a thread of the calling process.
    """

    def __init__(self, targets: Iterable[tuple[str, int]], delay_ms: float) -> None:
        self.targets = list(dict.fromkeys(targets))
        self.delay = delay_ms / 1000.0
        self.ports: dict[tuple[str, int], int] = {}
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        for target in self.targets:
            server = await asyncio.start_server(lambda r, w, t=target: self._serve(r, w, t), "127.0.0.1", 0)
            self._servers.append(server)
            self.ports[target] = server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     target: tuple[str, int]) -> None:
        accepted = time.monotonic()
        self.connections += 1
        _nodelay(client_writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            # The target refuses (a host that is down): the client sees its connection closed.
            client_writer.close()
            return
        _nodelay(upstream_writer)
        handshake_done = accepted + 3 * self.delay
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, not_before=handshake_done),
                self._pipe(upstream_reader, client_writer, not_before=0.0),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # the proxy is stopping: close both sides quietly
        for writer in (client_writer, upstream_writer):
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, not_before: float) -> None:
        """Copy one direction through a delay line: a reader task stamps each chunk with its due time, a
        writer task sends chunks when due, so the delay does not serialise chunks in flight."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            try:
                while True:
                    data = await reader.read(65536)
                    await queue.put((max(time.monotonic() + self.delay, not_before), data))
                    if not data:
                        return
            except (ConnectionError, OSError):
                await queue.put((time.monotonic(), b""))

        async def write() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError, RuntimeError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                writer.write(data)
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    return

        await asyncio.gather(read(), write())


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
