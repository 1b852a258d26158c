"""Fixtures for winsim's own tests.

``make_fleet`` serves real simulated machines (winsim.machine) through the protocol half on an event loop in
a background thread: the protocol tests see exactly what a client sees, and can look at the machine directly.
The public API (``winsim.testing.running_fleet``, a separate process) has its own tests in test_fleet_*.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from winsim.fleet import FleetRuntime, HostEntry, split_overrides, state_path
from winsim.machine import Host
from winsim.testing import Endpoint, Fleet, HostSpec


class ThreadedFleet:
    """The fleet runtime on an event loop in a background thread, for in-process protocol tests."""

    def __init__(self, state_dir: Path, hosts: list[tuple[Any, dict[str, Any]]], *, https: bool = False,
                 latency_ms: float = 0.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runtime = FleetRuntime(state_dir, https=https, latency_ms=latency_ms)
        for host, options in hosts:
            entry = HostEntry(host.name, host.profile_name, 0,
                              {k: v for k, v in options.items() if k != "faults"})
            self.runtime.add(host, entry, options.get("faults"))
        self._call(self.runtime.start())
        assert self.runtime.control_port is not None
        self.fleet = Fleet(self.runtime.control_port, self.runtime.endpoints(), state_dir)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self._call(self.runtime.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def make_fleet(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """``make_fleet([HostSpec(name, profile, overrides)], https=False, latency_ms=0)`` -> winsim.testing.Fleet

    Real machines (winsim.machine.Host from the profiles) behind the protocol half, served in-process.
    ``fleet.machines[name]`` is the live Host, for looking at what a request did to the machine.
    """
    started: list[ThreadedFleet] = []

    def start(hosts: list[HostSpec] | None = None, *, https: bool = False, latency_ms: float = 0.0) -> Fleet:
        state_dir = tmp_path / f"fleet{len(started)}"
        machines: list[tuple[Any, dict[str, Any]]] = []
        for spec in hosts or [HostSpec("h1", "2008-sp2-x64")]:
            machine_overrides, service = split_overrides(spec.overrides)
            host = Host.create(spec.name, spec.profile, state_path(state_dir, spec.name), **machine_overrides)
            machines.append((host, service))
        threaded = ThreadedFleet(state_dir, machines, https=https, latency_ms=latency_ms)
        started.append(threaded)
        fleet = threaded.fleet
        fleet.machines = {host.name: host for host, _ in machines}  # type: ignore[attr-defined]
        return fleet

    yield start
    for threaded in started:
        threaded.close()


# --- a raw WS-Man client: hand-built envelopes, for checking replies byte by byte -------------------------

ENVELOPE = (
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"'
    ' xmlns:wsen="http://schemas.xmlsoap.org/ws/2004/09/enumeration"'
    ' xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
    '<env:Header><wsa:To>{to}</wsa:To><wsa:ReplyTo><wsa:Address env:mustUnderstand="true">'
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>"
    '<wsman:MaxEnvelopeSize env:mustUnderstand="true">{max_envelope}</wsman:MaxEnvelopeSize>'
    "<wsa:MessageID>{message_id}</wsa:MessageID><wsman:OperationTimeout>{timeout}</wsman:OperationTimeout>"
    '<wsman:ResourceURI env:mustUnderstand="true">{resource}</wsman:ResourceURI>'
    '<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>{extra}</env:Header>'
    "<env:Body>{body}</env:Body></env:Envelope>"
)


@dataclass
class RawReply:
    status: int
    content: bytes
    message_id: str
    headers: dict[str, str]


class RawClient:
    """Sends hand-written SOAP over HTTPS + Basic (no message encryption), returns the raw reply."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        self.session.auth = (endpoint.username, endpoint.password)
        # Verify against the fleet's own self-signed certificate (it names 127.0.0.1).
        self.verify: str | bool = str(endpoint.cert_path) if endpoint.cert_path else True

    def send(self, action: str, resource: str, body: str = "", *, selectors: dict[str, str] | None = None,
             options: dict[str, str] | None = None, timeout: str = "PT10S", max_envelope: int = 153600,
             message_id: str | None = None) -> RawReply:
        extra = ""
        if selectors:
            items = "".join(f'<wsman:Selector Name="{k}">{v}</wsman:Selector>' for k, v in selectors.items())
            extra += f"<wsman:SelectorSet>{items}</wsman:SelectorSet>"
        if options:
            items = "".join(f'<wsman:Option Name="{k}">{v}</wsman:Option>' for k, v in options.items())
            extra += f"<wsman:OptionSet>{items}</wsman:OptionSet>"
        message_id = message_id or f"uuid:{uuid.uuid4()}"
        data = ENVELOPE.format(to=self.endpoint.url, max_envelope=max_envelope, message_id=message_id,
                               timeout=timeout, resource=resource, action=action, extra=extra, body=body)
        response = self.session.post(self.endpoint.url, data=data.encode(),
                                     headers={"Content-Type": "application/soap+xml;charset=UTF-8"}, timeout=60,
                                     verify=self.verify)
        return RawReply(response.status_code, response.content, message_id, dict(response.headers))

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def raw_client() -> Iterator[Callable[[Endpoint], RawClient]]:
    clients: list[RawClient] = []

    def make(endpoint: Endpoint) -> RawClient:
        clients.append(RawClient(endpoint))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


# --- a TCP tap: what actually crossed the wire ------------------------------------------------------------


class WireTap:
    """A loopback TCP relay to an endpoint that records every byte the client sent."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, dest: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    self.sent += chunk
                dest.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop = True
        self.server.close()


@pytest.fixture
def wire_tap() -> Iterator[Callable[[int], WireTap]]:
    taps: list[WireTap] = []

    def make(port: int) -> WireTap:
        taps.append(WireTap(port))
        return taps[-1]

    yield make
    for tap in taps:
        tap.close()
