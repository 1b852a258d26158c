"""A fleet of simulated hosts in one process: listeners, the control endpoint, state, inventory.

The fleet process is what ``python -m winsim fleet`` and ``winsim.testing.running_fleet`` start. Its state
directory holds everything needed to start it again where it stopped:

    fleet.json          the hosts (name, profile, port, machine state path, service options)
    hosts/<name>        machine state (format owned by winsim.machine)
    ntlm/<name>.users   the NTLM account file of each host (written from its credentials)
    tls/cert.pem, key.pem   the self-signed certificate of the HTTPS listeners
    snapshots/          copies of machine state handed to tests by the ``snapshot`` control call

The control endpoint is JSON over HTTP on loopback, without authentication: ``POST /control`` with
``{"op": ..., "host": ..., ...}``. It is how tests read counters, inject faults and look at machine state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import shutil
import signal
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import faults
from .server import HostOptions, HostRuntime, HttpError, Reply, read_request
from .signing import signing_ca

log = logging.getLogger("winsim.fleet")

# file_sharing: a later Windows with File and Printer Sharing open also gets the SMB face (ADMIN$, C$).
_SERVICE_OVERRIDES = ("allow_unencrypted", "allow_basic", "faults", "file_sharing")


@dataclass
class HostEntry:
    """One host as fleet.json records it."""

    name: str
    profile: str
    port: int = 0
    options: dict[str, bool] = field(default_factory=dict)
    smb_port: int = 0  # NT 4.0 hosts: the SMB listeners (direct TCP, NetBIOS session service)
    netbios_port: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "profile": self.profile, "port": self.port,
                               "options": self.options}
        if self.smb_port:
            out.update(smb_port=self.smb_port, netbios_port=self.netbios_port)
        return out


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(machine overrides for Host.create, WinRM service settings handled here)."""
    machine = {k: v for k, v in overrides.items() if k not in _SERVICE_OVERRIDES}
    service = {k: v for k, v in overrides.items() if k in _SERVICE_OVERRIDES}
    return machine, service


def host_options(service: Mapping[str, Any], host: Any) -> HostOptions:
    # A profile may configure the service (e.g. AllowUnencrypted) through attributes on the Host.
    return HostOptions(
        allow_unencrypted=bool(service.get("allow_unencrypted", getattr(host, "allow_unencrypted", False))),
        allow_basic=bool(service.get("allow_basic", getattr(host, "allow_basic", True))),
    )


def primary_account(credentials: Mapping[str, str]) -> tuple[str, str]:
    for user, password in credentials.items():
        if user.lower() == "administrator":
            return user, password
    return next(iter(credentials.items()))


# --- TLS ------------------------------------------------------------------------------------------------


def ensure_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made once per state directory."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_ssl_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


# --- inventory ------------------------------------------------------------------------------------------


def group_name(profile: str) -> str:
    # Ansible warns about '-' and '.' in group names; winsim_profile keeps the real profile name.
    return "winsim_" + "".join(c if c.isalnum() else "_" for c in profile)


def write_inventory(path: Path, endpoints: Sequence[Mapping[str, Any]], transport: str = "ntlm",
                    control_port: int | None = None) -> Path:
    """An Ansible YAML inventory with ordinary ``ansible_connection: winrm`` variables, a group per profile."""
    groups: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        if ep.get("transport") == "smb":
            # NT 4.0: no WinRM; the collection's SMB transport reads these (kbfix_smb_*), not ansible_winrm_*.
            # Direct SMB on the face's first port; its NetBIOS port is reached with kbfix_smb_port set to it and
            # kbfix_smb_session: netbios (the endpoint lists both ports).
            smb_vars: dict[str, Any] = {
                "ansible_host": ep["address"], "ansible_user": ep["username"], "ansible_password": ep["password"],
                "kbfix_transport": "smb", "kbfix_smb_port": ep["smb_port"], "kbfix_smb_session": "direct",
                "winsim_profile": ep["profile"],
            }
            groups.setdefault(group_name(ep["profile"]), {"hosts": {}})["hosts"][ep["name"]] = smb_vars
            continue
        host_vars: dict[str, Any] = {
            "ansible_host": ep["address"],
            "ansible_port": ep["port"],
            "ansible_user": ep["username"],
            "ansible_password": ep["password"],
            "ansible_winrm_transport": transport,
            "ansible_winrm_scheme": ep["scheme"],
            "winsim_profile": ep["profile"],
        }
        if ep["scheme"] == "https":
            host_vars["ansible_winrm_server_cert_validation"] = "ignore"
        if ep.get("smb_port"):
            # File sharing open: where the SMB face answers, for kbfix_upload_smb (the host opts in itself).
            host_vars.update(kbfix_smb_port=ep["smb_port"], kbfix_smb_session="direct")
        group = groups.setdefault(group_name(ep["profile"]), {"hosts": {}})
        group["hosts"][ep["name"]] = host_vars
    # winsim's packages are signed by its test CA (signing.py); the collection trusts it only when told to.
    all_vars: dict[str, Any] = {"ansible_connection": "winrm", "kbfix_package_trust_ca": str(signing_ca().ca_file)}
    if control_port is not None:
        all_vars["winsim_control_port"] = control_port
    document = {"all": {"vars": all_vars, "children": dict(sorted(groups.items()))}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False), encoding="utf-8")
    tmp.replace(path)
    return path


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


# --- the runtime ----------------------------------------------------------------------------------------


class FleetRuntime:
    """All listeners of a fleet on one event loop, plus the control endpoint."""

    def __init__(self, state_dir: Path, *, https: bool = False, latency_ms: float = 0.0, workers: int = 8) -> None:
        self.state_dir = state_dir
        self.https = https
        self.latency_ms = latency_ms
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="winsim-machine")
        self.hosts: dict[str, HostRuntime] = {}
        self.entries: dict[str, HostEntry] = {}
        self.faces: dict[str, Any] = {}  # name -> nt4face.Nt4Face for NT 4.0 hosts
        self.cert_path: Path | None = None
        self.control_port: int | None = None
        self._control_server: asyncio.Server | None = None
        self._stop_task: asyncio.Future[None] | None = None
        self.stopped = asyncio.Event()

    def add(self, host: Any, entry: HostEntry, initial_faults: Mapping[str, Any] | None = None) -> HostRuntime:
        runtime = HostRuntime(
            host,
            port=entry.port,
            scheme="https" if self.https else "http",
            user_file=self.state_dir / "ntlm" / f"{host.name}.users",
            options=host_options(entry.options, host),
            executor=self.executor,
            latency_ms=self.latency_ms,
        )
        if initial_faults:
            runtime.faults = faults.FaultPlan.parse(initial_faults)
        self.hosts[host.name] = runtime
        self.entries[host.name] = entry
        if serves_smb(host) or entry.options.get("file_sharing"):
            from . import nt4face  # impacket is only needed by fleets with NT 4.0 hosts

            nt4face.clear_face_dir(self.state_dir, host.name)
            self.faces[host.name] = nt4face.Nt4Face(runtime, nt4face.face_dir(self.state_dir, host.name),
                                                    entry.smb_port, entry.netbios_port)
        return runtime

    async def start(self, control_port: int = 0) -> None:
        context = None
        if self.https:
            self.cert_path, key_path = ensure_certificate(self.state_dir / "tls")
            context = server_ssl_context(self.cert_path, key_path)
        for runtime in self.hosts.values():
            await runtime.start(context)
            self.entries[runtime.name].port = runtime.port
        for name, face in self.faces.items():
            await asyncio.to_thread(face.start)
            self.entries[name].smb_port, self.entries[name].netbios_port = face.port, face.netbios_port
        self._control_server = await asyncio.start_server(self._control_connection, "127.0.0.1", control_port)
        self.control_port = self._control_server.sockets[0].getsockname()[1]
        self.save_config()

    async def stop(self) -> None:
        if self._control_server is not None:
            self._control_server.close()
        await asyncio.gather(*(runtime.stop() for runtime in self.hosts.values()))
        await asyncio.gather(*(asyncio.to_thread(face.stop) for face in self.faces.values()))
        for runtime in self.hosts.values():
            try:
                await runtime.call(runtime.host.save)
            except Exception:
                log.exception("%s: saving state failed", runtime.name)
        self.save_config()
        self.executor.shutdown(wait=True)
        self.stopped.set()

    def save_config(self) -> None:
        write_json(self.state_dir / "fleet.json", {
            "https": self.https,
            "hosts": [entry.to_json() for entry in self.entries.values()],
        })

    def endpoint(self, runtime: HostRuntime) -> dict[str, Any]:
        user, password = primary_account(runtime.host.credentials)
        return {
            "name": runtime.name,
            "profile": self.entries[runtime.name].profile,
            "address": "127.0.0.1",
            "port": runtime.port,
            "scheme": runtime.scheme,
            "path": "/wsman",
            "username": user,
            "password": password,
            "cert_path": str(self.cert_path) if self.cert_path else None,
            "listener": bool(runtime.host.listener),
            "winrm_version": str(runtime.host.winrm_version),
            "transport": "smb" if serves_smb(runtime.host) else "winrm",
            "smb_port": self.faces[runtime.name].port if runtime.name in self.faces else None,
            "smb_netbios_port": self.faces[runtime.name].netbios_port if runtime.name in self.faces else None,
        }

    def endpoints(self) -> list[dict[str, Any]]:
        return [self.endpoint(runtime) for runtime in self.hosts.values()]

    # --- control -----------------------------------------------------------------------------------

    async def _control_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                status, result = await self._control_request(request.method, request.target, request.body)
                reply = Reply(status, [("Content-Type", "application/json")], json.dumps(result).encode())
                writer.write(reply.encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, HttpError):
            pass
        finally:
            writer.close()

    async def _control_request(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST" or target != "/control":
            return 404, {"error": "POST /control"}
        try:
            payload = json.loads(body or b"{}")
            op = payload.pop("op")
            return 200, await self.control(op, **payload)
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            log.exception("control call failed")
            return 500, {"error": f"{type(exc).__name__}: {exc}"}

    async def control(self, op: str, **kw: Any) -> dict[str, Any]:
        if op == "ping":
            return {"ok": True, "hosts": len(self.hosts), "pid": os.getpid()}
        if op == "hosts":
            return {"hosts": self.endpoints(), "control_port": self.control_port}
        if op == "shutdown":
            # Stopping starts after this reply is written; keep a reference so the task is not collected.
            self._stop_task = asyncio.ensure_future(self.stop())
            return {"ok": True}
        runtime = self._runtime(kw.pop("host"))
        return await self._host_control(runtime, op, **kw)

    def _runtime(self, name: str) -> HostRuntime:
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no host named {name!r}") from None

    async def _host_control(self, runtime: HostRuntime, op: str, **kw: Any) -> dict[str, Any]:
        if op == "counters":
            return runtime.counters_json()
        if op == "reset_counters":
            runtime.counters = type(runtime.counters)()
            return runtime.counters_json()
        if op == "set_faults":
            runtime.faults = faults.FaultPlan.parse(kw.get("faults", {}))
            return runtime.faults.to_json()
        if op == "get_faults":
            return runtime.faults.to_json()
        if op == "snapshot":
            return {"path": str(await self._snapshot(runtime))}
        if op == "reboot":
            await runtime.call(runtime.host.reboot, float(kw.get("delay_seconds", 0)))
            return {"ok": True}
        if op == "is_up":
            return {"up": await runtime.is_up()}
        if op == "endpoint":
            return self.endpoint(runtime)
        raise ValueError(f"unknown control operation {op!r}")

    async def _snapshot(self, runtime: HostRuntime) -> Path:
        """Save the machine and copy its state, so a test can Host.load() it without touching the live file.

        The state file names the shared blob directory by absolute path; the host-private files
        (``<stem>.files``, written by commands) are copied next to the copy, where Host.load looks for them.
        """
        await runtime.call(runtime.host.save)
        source = Path(runtime.host.state_path) if hasattr(runtime.host, "state_path") else \
            state_path(self.state_dir, runtime.name)
        stamp = dt.datetime.now().strftime("%H%M%S%f")
        target = self.state_dir / "snapshots" / f"{source.stem}-{stamp}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copy2, source, target)
        private = source.with_name(source.stem + ".files")
        if private.is_dir():
            await asyncio.to_thread(shutil.copytree, private, target.with_name(target.stem + ".files"))
        return target


def serves_smb(host: Any) -> bool:
    """NT 4.0 hosts are reached over SMB (the NT 4.0 face), every later Windows over WinRM."""
    return int(str(host.os.version).split(".", 1)[0]) < 5


def state_path(state_dir: Path, name: str) -> Path:
    return state_dir / "hosts" / f"{name}.json"


# --- building a fleet from a state directory and host specs ---------------------------------------------


@dataclass
class Spec:
    name: str
    profile: str
    overrides: dict[str, Any] = field(default_factory=dict)


def load_config(state_dir: Path) -> tuple[bool | None, dict[str, HostEntry]]:
    path = state_dir / "fleet.json"
    if not path.exists():
        return None, {}
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = {h["name"]: HostEntry(h["name"], h["profile"], int(h.get("port", 0)), dict(h.get("options", {})),
                                    int(h.get("smb_port", 0)), int(h.get("netbios_port", 0)))
               for h in data.get("hosts", [])}
    return bool(data.get("https", False)), entries


def build_fleet(runtime: FleetRuntime, specs: Sequence[Spec], base_port: int | None) -> None:
    """Load the hosts recorded in the state directory, create the new ones the specs ask for."""
    from .machine import Host  # the machine half; imported here so the protocol half imports without it

    _, entries = load_config(runtime.state_dir)
    wanted = {spec.name: spec for spec in specs}
    for index, name in enumerate(list(entries) + [s.name for s in specs if s.name not in entries]):
        spec = wanted.get(name)
        path = state_path(runtime.state_dir, name)
        if name in entries:
            entry = entries[name]
            host = Host.load(path)
        else:
            assert spec is not None
            machine, service = split_overrides(spec.overrides)
            port = base_port + index if base_port else 0
            entry = HostEntry(spec.name, spec.profile, port, {k: bool(v) for k, v in service.items() if k != "faults"})
            path.parent.mkdir(parents=True, exist_ok=True)
            host = Host.create(spec.name, spec.profile, path, **machine)
        initial = split_overrides(spec.overrides)[1].get("faults") if spec else None
        runtime.add(host, entry, initial)


def default_profiles() -> list[str]:
    from .machine import profile_names  # the machine half owns the profiles

    return sorted(profile_names())


def generated_specs(count: int, profiles: Sequence[str]) -> list[Spec]:
    if not profiles:
        raise ValueError("no profiles to build hosts from")
    return [Spec(f"win{i + 1:04d}", profiles[i % len(profiles)]) for i in range(count)]


async def serve(runtime: FleetRuntime, *, control_port: int, ready_file: Path | None, inventory: Path | None,
                transport: str) -> None:
    """Run until SIGTERM/SIGINT or a ``shutdown`` control call, then stop cleanly, saving every host."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    await runtime.start(control_port)
    endpoints = runtime.endpoints()
    if inventory is not None:
        write_inventory(inventory, endpoints, transport, runtime.control_port)
    if ready_file is not None:
        write_json(ready_file, {"pid": os.getpid(), "control_port": runtime.control_port, "hosts": endpoints})
    log.info("fleet of %d hosts ready, control port %s", len(endpoints), runtime.control_port)
    waiter = asyncio.ensure_future(stop_requested.wait())
    stopped = asyncio.ensure_future(runtime.stopped.wait())
    await asyncio.wait([waiter, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not runtime.stopped.is_set():
        await runtime.stop()
    waiter.cancel()
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
