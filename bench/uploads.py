"""Part 4 of ``bench/run.py`` (``--part uploads``): putting real-size packages on hosts.

* **Requests per MB**: one package of real size (``winsim.packages.real_size``) uploaded by the library
  (``transport.winrm.upload``, in-process, no Ansible) to a WinRM 2.0 and a WinRM 1.1 host, through the cmd
  shell's stdin and through ``echo`` commands; HTTP requests = winsim's WS-Man requests + authentication legs.
* **Fleet remediation**: every host of a fleet (real-size packages, 0.5-3 MB, cycled over the profiles the
  packages are for) staged and installed (``tasks.installer.install``) with 25 ms one-way latency
  (``proxy.DelayProxy``), 25 hosts at a time, once with the stdin path and once with the echo path, each on a
  fresh fleet, in the same run: wall time, and controller CPU per MB (this process; the fleet is another).
* **NT 4.0 over SMB**: a real-size package copied through the SMB transport to winsim's NT 4.0 face: SMB
  requests, writes, and bytes per write.

Ratios come from one run; nothing here is asserted (tests/integration/test_staging.py counts requests).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from pathlib import Path
from typing import Any

from proxy import DelayProxy
from stats import Target, ratio, table

from ansible_collections.kbfix.windows.plugins.plugin_utils.package.policy import PackagePolicy
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.base import PackageSource
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.settings import SMBSettings
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import SMBTransport
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import upload
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim import packages
from winsim.signing import signing_ca
from winsim.testing import Endpoint, HostSpec, running_fleet

MB = 1024 * 1024
REQUESTS_PER_MB_LIMIT = 20.0
FLEET_SPEEDUP_LIMIT = 10.0
LATENCY_MS = 25.0
FORKS = 25
# (profile, package, installer): one WinRM 2.0 and one WinRM 1.1 host for the requests per MB
PER_MB_HOSTS = (("2008r2-rtm-x64", "Windows6.1-KB977381-x64.msu", "WinRM 2.0"),
                ("2003r2-sp2-x86", "WindowsServer2003-KB977381-x86-ENU.exe", "WinRM 1.1"),
                ("xp-sp1-x86", "WindowsXP-KB828753-x86-ENU.exe", "WinRM 1.1, no certutil"))
# The fleet: hosts the packages install on, 0.9 to 3 MB.
FLEET_KINDS = (("2008-sp2-x64", "Windows6.0-KB977381-x64.msu", "msu"),
               ("2003r2-sp2-x86", "WindowsServer2003-KB977381-x86-ENU.exe", "update"),
               ("xp-sp1-x86", "WindowsXP-KB828753-x86-ENU.exe", "update"),
               ("2008r2-rtm-x64", "Windows6.1-KB977381-x64.msu", "msu"))
NT4_PACKAGE = "Q253729i.exe"


def _client(ep: Endpoint, port: int | None = None) -> winrm.WinRMClient:
    return winrm.WinRMClient(winrm.WinRMSettings(host=ep.address, port=port or ep.port, username=ep.username,
                                                 password=ep.password))


def _http(ep: Endpoint) -> tuple[int, int]:
    counters = ep.counters()
    wsman = sum(counters["by_action"].values())
    return wsman, wsman + int(counters.get("auth_requests", 0))


def write_packages(directory: Path) -> Path:
    for _, name, _ in (*PER_MB_HOSTS, *FLEET_KINDS):
        if not (directory / name).exists():
            packages.write_package(name, directory, packages.real_size(name))
    packages.write_package(NT4_PACKAGE, directory, packages.real_size(NT4_PACKAGE))
    return directory


def requests_per_mb(state: Path, package_dir: Path) -> list[dict[str, Any]]:
    specs = [HostSpec(f"m{i}", profile) for i, (profile, _, _) in enumerate(PER_MB_HOSTS)]
    rows = []
    with running_fleet(specs, state_dir=state / "per-mb") as fleet:
        for i, (profile, name, stack) in enumerate(PER_MB_HOSTS):
            ep = fleet.hosts[f"m{i}"]
            data = (package_dir / name).read_bytes()
            certutil = False if profile.startswith("xp") else None
            row: dict[str, Any] = {"profile": profile, "stack": stack, "package": name, "mb": len(data) / MB}
            for method in ("stdin", "echo"):
                print(f"  uploads: {name} to {profile} through {method}", flush=True)
                ep.reset_counters()
                started = time.perf_counter()
                with closing(_client(ep)) as client:
                    done = upload.upload(client, data, f"C:\\WINDOWS\\Temp\\{method}-{name}", method=method,
                                         certutil=certutil)
                seconds = time.perf_counter() - started
                wsman, http = _http(ep)
                row[method] = {"wsman": wsman, "http": http, "per_mb": http / row["mb"], "seconds": seconds,
                               "decoder": done.decoder, "sha1_checked": done.sha1 is not None}
            rows.append(row)
    return rows


def _fleet_specs(size: int) -> list[tuple[HostSpec, str]]:
    chosen = [FLEET_KINDS[i % len(FLEET_KINDS)] for i in range(size)]
    return [(HostSpec(f"f{i}", profile), name) for i, (profile, name, _) in enumerate(chosen)]


def remediate_fleet(state: Path, package_dir: Path, size: int, method: str) -> dict[str, Any]:
    """Stage and install every host's package, ``FORKS`` hosts at a time, through 25 ms of latency."""
    hosts = _fleet_specs(size)
    kinds = {name: kind for _, name, kind in FLEET_KINDS}
    # winsim's packages are signed by its test CA; the collection trusts it only when told to.
    trust_winsim = PackagePolicy(ca_files=(str(signing_ca().ca_file),))
    with running_fleet([spec for spec, _ in hosts], state_dir=state / f"fleet-{method}") as fleet:
        targets = [(fleet.hosts[spec.name].address, fleet.hosts[spec.name].port) for spec, _ in hosts]
        with DelayProxy(targets, LATENCY_MS) if LATENCY_MS else nullcontext() as proxy:
            ports = proxy.ports if proxy is not None else {}

            def one(spec: HostSpec, name: str) -> dict[str, Any]:
                ep = fleet.hosts[spec.name]
                with closing(_client(ep, ports.get((ep.address, ep.port)))) as client:
                    transport = WinRMTransport(client)
                    os_facts = transport.os_facts()
                    kind = kinds[name]
                    location = installer.PackageLocation("controller", str(package_dir / name))
                    request = installer.InstallRequest("KB" + name.split("-KB")[1][:6], location, kind,  # type: ignore[arg-type]
                                                       installer.DEFAULT_ARGUMENTS[kind], installer.exit_codes(),
                                                       policy=trust_winsim)
                    staging = installer.Staging(transport, os_facts, upload_method=method)
                    done = installer.install(transport, request, os_facts, staging=staging)
                return {"host": spec.name, "staged_by": done.staged_by, "result": done.meaning,
                        "bytes": (package_dir / name).stat().st_size}

            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=FORKS) as pool:
                results = list(pool.map(lambda h: one(*h), hosts))
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    mb = sum(r["bytes"] for r in results) / MB
    return {"method": method, "hosts": size, "mb": mb, "wall_seconds": wall, "cpu_seconds": cpu,
            "cpu_per_mb": cpu / mb, "staged_by": sorted({r["staged_by"] for r in results}),
            "results": sorted({r["result"] for r in results})}


def nt4_smb(state: Path, package_dir: Path) -> dict[str, Any]:
    data = (package_dir / NT4_PACKAGE).read_bytes()
    with running_fleet([HostSpec("nt4", "nt4-tse-sp6-x86")], state_dir=state / "nt4-upload") as fleet:
        ep = fleet.hosts["nt4"]
        assert ep.smb_port
        transport = SMBTransport(SMBSettings(host=ep.address, username=ep.username, password=ep.password,
                                             port=ep.smb_port), lambda level, message: None)
        try:
            transport.session()  # logged on before counting: the row is the copy itself
            ep.reset_counters()
            transport.stage_package(PackageSource(data=data), f"%SystemRoot%\\Temp\\{NT4_PACKAGE}")
        finally:
            transport.close()
        by_action = ep.counters()["by_action"]
    writes = sum(v for k, v in by_action.items() if k.startswith("SMB:Write"))
    requests = sum(v for k, v in by_action.items() if k.startswith("SMB:"))
    return {"package": NT4_PACKAGE, "mb": len(data) / MB, "smb_requests": requests, "writes": writes,
            "bytes_per_write": len(data) / writes if writes else None,
            "bytes_per_request": len(data) / requests if requests else None,
            "requests_per_mb": requests / (len(data) / MB)}


def part_uploads(state: Path, fleet_size: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    package_dir = write_packages(state / "packages")
    per_mb = requests_per_mb(state, package_dir)
    fleet = []
    for method in ("stdin", "echo"):
        log(f"  uploads: remediating {fleet_size} hosts at {LATENCY_MS:g} ms through {method}")
        fleet.append(remediate_fleet(state, package_dir, fleet_size, method))
    return {"per_mb": per_mb, "fleet": fleet, "nt4": nt4_smb(state, package_dir), "fleet_size": fleet_size}


def upload_targets(uploads: dict[str, Any] | None) -> list[Target]:
    if not uploads:
        return []
    found = []
    for row in uploads["per_mb"]:
        if row["stack"] in ("WinRM 2.0", "WinRM 1.1"):
            found.append(Target(f"HTTP requests per MB uploaded, {row['stack']} ({row['profile']}, "
                                f"{row['mb']:.1f} MB)", row["stdin"]["per_mb"], REQUESTS_PER_MB_LIMIT, "at_most"))
    by_method = {r["method"]: r for r in uploads["fleet"]}
    speedup = ratio(by_method["echo"]["wall_seconds"], by_method["stdin"]["wall_seconds"])
    found.append(Target(f"remediation of {uploads['fleet_size']} hosts at {LATENCY_MS:g} ms, wall time echo / stdin",
                        speedup, FLEET_SPEEDUP_LIMIT, "at_least",
                        note="" if uploads["fleet_size"] >= 50 else f"reduced fleet of {uploads['fleet_size']} hosts"))
    return found


def render(uploads: dict[str, Any]) -> str:
    per_mb = table(("profile", "stack", "package MB", "stdin HTTP req", "stdin req/MB", "echo HTTP req",
                    "echo req/MB", "decoder", "SHA-1 checked", "stdin s", "echo s"),
                   [(r["profile"], r["stack"], f"{r['mb']:.2f}", r["stdin"]["http"], f"{r['stdin']['per_mb']:.1f}",
                     r["echo"]["http"], f"{r['echo']['per_mb']:.1f}", r["stdin"]["decoder"],
                     "yes" if r["stdin"]["sha1_checked"] else "size only", f"{r['stdin']['seconds']:.2f}",
                     f"{r['echo']['seconds']:.2f}") for r in uploads["per_mb"]])
    fleet = table(("path", "hosts", "MB staged", "wall s", "controller CPU s", "CPU s per MB", "staged by",
                   "installer answers"),
                  [(r["method"], r["hosts"], f"{r['mb']:.1f}", f"{r['wall_seconds']:.1f}", f"{r['cpu_seconds']:.1f}",
                    f"{r['cpu_per_mb']:.3f}", ",".join(r["staged_by"]), ",".join(r["results"]))
                   for r in uploads["fleet"]])
    n = uploads["nt4"]
    nt4 = table(("package", "MB", "SMB requests", "writes", "bytes per write", "bytes per request", "requests per MB"),
                [(n["package"], f"{n['mb']:.2f}", n["smb_requests"], n["writes"], f"{n['bytes_per_write']:.0f}",
                  f"{n['bytes_per_request']:.0f}", f"{n['requests_per_mb']:.1f}")])
    return "\n".join(["Uploads: one real-size package per host, the library in-process (HTTP requests = WS-Man + "
                      "authentication legs, from winsim's counters)", "", per_mb, "",
                      f"Fleet remediation, {LATENCY_MS:g} ms one-way, {FORKS} hosts at a time (stage + install)", "",
                      fleet, "", "NT 4.0 over SMB: one package copied to ADMIN$ (winsim's NT 4.0 face)", "", nt4])
