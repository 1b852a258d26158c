"""The test API: start a fleet of simulated hosts in a separate process and talk to it.

    with running_fleet([HostSpec("xp1", "xp-sp2-x86")], state_dir=tmp_path) as fleet:
        ep = fleet.hosts["xp1"]
        ... pywinrm / the collection against ep.scheme://ep.address:ep.port/wsman ...
        assert ep.counters()["by_action"]["Enumerate"] == 1

The fleet runs as ``python -m winsim fleet`` so it behaves like a remote host (its own process, its own GIL);
this module talks to it through the loopback control endpoint (JSON over HTTP).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fleet import write_inventory, write_json

START_TIMEOUT = float(os.environ.get("WINSIM_START_TIMEOUT", "180"))
STOP_TIMEOUT = 30.0


@dataclass
class HostSpec:
    name: str
    profile: str
    overrides: dict[str, Any] = field(default_factory=dict)


class ControlError(RuntimeError):
    pass


class ControlClient:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/control"

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        data = json.dumps({"op": op, **kw}).encode()
        # The URL is always http://127.0.0.1:<port>/control, built above.
        request = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                result: dict[str, Any] = json.loads(response.read())
                return result
        except urllib.error.HTTPError as exc:
            raise ControlError(f"{op}: {exc.code} {exc.read().decode(errors='replace')}") from exc


@dataclass
class Endpoint:
    """One simulated host as a client sees it, plus its control calls."""

    name: str
    address: str
    port: int
    scheme: str
    path: str
    username: str
    password: str
    cert_path: Path | None
    profile: str
    listener: bool
    winrm_version: str
    _control: ControlClient = field(repr=False)
    transport: str = "winrm"  # "smb" for NT 4.0 hosts (the NT 4.0 face)
    smb_port: int | None = None  # SMB1, direct TCP framing
    smb_netbios_port: int | None = None  # SMB1 behind a NetBIOS session request (port 139 style)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}{self.path}"

    def counters(self) -> dict[str, Any]:
        """``{"requests": n, "by_action": {...}, "auth_requests": n, "shells_open": n}``"""
        return self.run_control("counters")

    def reset_counters(self) -> None:
        self.run_control("reset_counters")

    def set_faults(self, **faults: Any) -> None:
        """Replace this host's fault plan; ``set_faults()`` clears it. See winsim/README.md for the faults."""
        self.run_control("set_faults", faults=faults)

    def host(self) -> Any:
        """A snapshot of the machine state, loaded from a copy: read it, do not expect writes to reach the fleet."""
        from .machine import Host

        return Host.load(Path(self.run_control("snapshot")["path"]))

    def run_control(self, op: str, **kw: Any) -> dict[str, Any]:
        return self._control.call(op, host=self.name, **kw)


class Fleet:
    def __init__(self, control_port: int, endpoints: list[dict[str, Any]], state_dir: Path) -> None:
        self.control_port = control_port
        self.state_dir = state_dir
        self.control = ControlClient(control_port)
        self.hosts: dict[str, Endpoint] = {ep["name"]: _endpoint(ep, self.control) for ep in endpoints}

    def inventory(self, path: Path, transport: str = "ntlm") -> Path:
        """Write an Ansible YAML inventory of the fleet (group per profile, ``winsim_profile`` per host)."""
        endpoints = [ep for ep in self.control.call("hosts")["hosts"] if ep["name"] in self.hosts]
        return write_inventory(path, endpoints, transport, self.control_port)

    def run_control(self, op: str, **kw: Any) -> dict[str, Any]:
        return self.control.call(op, **kw)


def _endpoint(data: dict[str, Any], control: ControlClient) -> Endpoint:
    return Endpoint(
        name=data["name"], address=data["address"], port=int(data["port"]), scheme=data["scheme"],
        path=data["path"], username=data["username"], password=data["password"],
        cert_path=Path(data["cert_path"]) if data.get("cert_path") else None, profile=data["profile"],
        listener=bool(data["listener"]), winrm_version=data["winrm_version"], _control=control,
        transport=data.get("transport", "winrm"), smb_port=data.get("smb_port"),
        smb_netbios_port=data.get("smb_netbios_port"),
    )


@contextmanager
def running_fleet(hosts: list[HostSpec] | None = None, *, state_dir: Path, https: bool = False,
                  latency_ms: float = 0) -> Iterator[Fleet]:
    """Start a fleet process, wait until every listener answers, yield it, stop it (also on failure).

    ``hosts=None`` starts the hosts recorded in ``state_dir`` by an earlier fleet (a restart), or one host of
    each profile (named after it) in a new state directory.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    if hosts is None and not (state_dir / "fleet.json").exists():
        from .fleet import default_profiles

        hosts = [HostSpec(profile, profile) for profile in default_profiles()]
    ready_file = state_dir / "fleet-ready.json"
    ready_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "winsim", "fleet", "--state-dir", str(state_dir),
               "--ready-file", str(ready_file), "--latency-ms", str(latency_ms), "--log-level", "INFO"]
    if hosts is not None:
        spec_file = state_dir / "fleet-spec.json"
        write_json(spec_file, [{"name": h.name, "profile": h.profile, "overrides": h.overrides} for h in hosts])
        command += ["--spec", str(spec_file)]
    if https:
        command.append("--https")
    log_path = state_dir / "fleet.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=_child_env())
    try:
        ready = _wait_ready(process, ready_file, log_path)
        fleet = Fleet(int(ready["control_port"]), ready["hosts"], state_dir)
        _wait_listeners(fleet)
        yield fleet
    finally:
        _stop(process)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_parent not in paths:
        paths.insert(0, package_parent)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _wait_ready(process: subprocess.Popen[bytes], ready_file: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready_file.exists():
            data: dict[str, Any] = json.loads(ready_file.read_text(encoding="utf-8"))
            return data
        if process.poll() is not None:
            raise RuntimeError(f"winsim fleet exited with {process.returncode}:\n{_tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"winsim fleet not ready after {START_TIMEOUT:.0f}s:\n{_tail(log_path)}")


def _wait_listeners(fleet: Fleet) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for ep in fleet.hosts.values():
        port = ep.smb_port if ep.transport == "smb" else ep.port if ep.listener else None
        if port is None:
            continue
        while True:
            try:
                with socket.create_connection((ep.address, port), timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
