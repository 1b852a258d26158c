"""Fixtures for winsim's own tests.

``standin_fleet`` serves the protocol half in-process (an event loop in a thread) over a tiny stand-in of the
machine half's ``Host``. It exists only until the machine half (``winsim/machine.py``, ``cmd.py``, the profiles)
can carry the protocol tests; then the protocol tests move to ``winsim.testing.running_fleet`` and the stand-in
goes away.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from winsim.fleet import FleetRuntime, HostEntry
from winsim.testing import Fleet

PASSWORD = "St4nd-in!Pass"


class WmiError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass
class Instance:
    class_name: str
    properties: dict[str, object]
    cim_types: dict[str, str] = field(default_factory=dict)


class StandinProcess:
    """A handful of commands, enough to drive the shell protocol: echo, exit /b, sleep, more, bigout."""

    def __init__(self, command: str, arguments: list[str]) -> None:
        self.line = " ".join([command, *arguments]).strip()
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdin = bytearray()
        self.code: int | None = None
        self.finish_at: float | None = None
        self.terminated = False
        self._start()

    def _start(self) -> None:
        word, _, rest = self.line.partition(" ")
        word = word.lower()
        if word == "echo":
            self._finish(rest.encode() + b"\r\n", 0)
        elif word == "exit":
            self._finish(b"", int(rest.split()[-1]))
        elif word == "sleep":
            self.finish_at = time.monotonic() + float(rest)
        elif word == "bigout":
            self._finish(b"x" * int(rest), 0)
        elif word == "more":
            pass  # finishes when stdin ends
        else:
            self.stderr += (f"'{word}' is not recognized as an internal or external command,\r\n"
                            "operable program or batch file.\r\n").encode()
            self.code = 1

    def _finish(self, out: bytes, code: int) -> None:
        self.stdout += out
        self.code = code

    def write_stdin(self, data: bytes, end: bool) -> None:
        self.stdin += data
        if end and self.line.lower() == "more":
            self._finish(bytes(self.stdin), 0)

    def read(self) -> tuple[bytes, bytes, int | None]:
        if self.finish_at is not None and time.monotonic() >= self.finish_at and self.code is None:
            self._finish(b"slept\r\n", 0)
        out, err = bytes(self.stdout), bytes(self.stderr)
        self.stdout.clear()
        self.stderr.clear()
        return out, err, self.code

    def terminate(self) -> None:
        self.terminated = True
        if self.code is None:
            self.code = 1067


SERVICES = [
    {"Name": "Dfsr", "DisplayName": "DFS Replication", "State": "Running", "StartMode": "Auto",
     "Description": None, "AcceptStop": True, "ProcessId": 1234},
    {"Name": "LanmanServer", "DisplayName": "Server", "State": "Running", "StartMode": "Auto",
     "Description": "Supports file, print, and named-pipe sharing", "AcceptStop": True, "ProcessId": 988},
    {"Name": "Spooler", "DisplayName": "Print Spooler", "State": "Stopped", "StartMode": "Manual",
     "Description": "Loads files to memory for later printing", "AcceptStop": False, "ProcessId": 0},
]
SERVICE_TYPES = {"Name": "string", "DisplayName": "string", "State": "string", "StartMode": "string",
                 "Description": "string", "AcceptStop": "boolean", "ProcessId": "uint32"}


class StandinHost:
    """Stand-in for winsim.machine.Host with the interface the protocol half uses."""

    def __init__(self, name: str, *, winrm_version: str = "2.0", listener: bool = True,
                 state_path: Path | None = None) -> None:
        self.name = name
        self.profile_name = f"standin-{winrm_version}"
        self.winrm_version = winrm_version
        self.listener = listener
        self.credentials = {"Administrator": PASSWORD}
        self.state_path = state_path or Path(f"/nonexistent/{name}.json")
        self.boot_id = 1
        self.boot_time = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        self.registry: dict[tuple[str, str], tuple[str, object]] = {}
        self.down_until: float | None = None
        self.reboot_at: float | None = None
        self.processes: list[StandinProcess] = []
        self.lock = threading.RLock()

    def is_up(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if self.reboot_at is not None and now >= self.reboot_at:
                if self.down_until is not None and now >= self.down_until:
                    self.reboot_at = self.down_until = None
                    self.boot_id += 1
                    return True
                return False
            return True

    def reboot(self, delay_seconds: float = 0) -> None:
        with self.lock:
            self.reboot_at = time.monotonic() + delay_seconds
            self.down_until = self.reboot_at + 0.5

    def save(self) -> None:
        if self.state_path.parent.exists():
            data = {"name": self.name, "registry": [[k[0], k[1], v[0], v[1]] for k, v in self.registry.items()]}
            self.state_path.write_text(json.dumps(data), encoding="utf-8")

    def wmi_enumerate(self, namespace: str, class_name: str, filtered: bool = False) -> list[Instance]:
        if namespace.lower() != "root/cimv2":
            raise WmiError("invalid_class", f"no namespace {namespace}")
        if class_name.lower() == "win32_operatingsystem":
            return [Instance("Win32_OperatingSystem", {
                "Caption": "Microsoft Windows Server 2008 Enterprise ", "Version": "6.0.6002",
                "ServicePackMajorVersion": 2, "ServicePackMinorVersion": 0, "LastBootUpTime": self.boot_time,
                "MUILanguages": ["en-US", "de-DE"], "OtherTypeDescription": None,
            }, {"Caption": "string", "Version": "string", "ServicePackMajorVersion": "uint16",
                "ServicePackMinorVersion": "uint16", "LastBootUpTime": "datetime", "MUILanguages": "string[]",
                "OtherTypeDescription": "string"})]
        if class_name.lower() == "win32_service":
            return [Instance("Win32_Service", dict(s), dict(SERVICE_TYPES)) for s in SERVICES]
        raise WmiError("invalid_class", f"no class {class_name}")

    def wmi_get(self, namespace: str, class_name: str, selectors: dict[str, str]) -> Instance:
        wanted = {k.lower(): v.lower() for k, v in selectors.items()}
        for inst in self.wmi_enumerate(namespace, class_name):
            if wanted and all(str(inst.properties.get(k.capitalize() if k == "name" else k, "")).lower() == v
                              for k, v in wanted.items()):
                return inst
        raise WmiError("not_found", "no such instance")

    def wmi_invoke(self, namespace: str, class_name: str, method: str, selectors: dict[str, str],
                   params: dict[str, object]) -> dict[str, object]:
        if class_name.lower() != "stdregprov":
            raise WmiError("invalid_class", class_name)
        key = (str(params.get("sSubKeyName", "")).lower(), str(params.get("sValueName", "")).lower())
        with self.lock:
            if method == "SetDWORDValue":
                self.registry[key] = ("dword", int(str(params["uValue"])))
                return {"ReturnValue": 0}
            if method == "GetDWORDValue":
                found = self.registry.get(key)
                if found is None:
                    return {"ReturnValue": 1}
                return {"uValue": found[1], "ReturnValue": 0}
            if method == "SetMultiStringValue":
                values = params.get("sValue")
                self.registry[key] = ("multi", values if isinstance(values, list) else [values])
                return {"ReturnValue": 0}
            if method == "GetMultiStringValue":
                found = self.registry.get(key)
                return {"ReturnValue": 1} if found is None else {"sValue": found[1], "ReturnValue": 0}
        raise WmiError("invalid_method", f"StdRegProv has no method {method}")

    def start_process(self, command: str, arguments: list[str], cwd: str | None) -> StandinProcess:
        process = StandinProcess(command, arguments)
        self.processes.append(process)
        return process


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
def standin_fleet(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """``standin_fleet([StandinHost("h1"), ...], https=False, options={...})`` -> winsim.testing.Fleet."""
    started: list[ThreadedFleet] = []

    def start(hosts: list[Any], *, https: bool = False, latency_ms: float = 0.0,
              options: dict[str, Any] | None = None) -> Fleet:
        threaded = ThreadedFleet(tmp_path / f"fleet{len(started)}", [(h, dict(options or {})) for h in hosts],
                                 https=https, latency_ms=latency_ms)
        started.append(threaded)
        return threaded.fleet

    yield start
    for threaded in started:
        threaded.close()


@pytest.fixture
def standin_host_class() -> type[StandinHost]:
    return StandinHost
