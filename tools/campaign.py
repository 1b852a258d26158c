#!/usr/bin/env python3
# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet fault campaign (``make campaign``, docs/reliability.md): remediate and audit a faulty fleet.

    tools/devenv python tools/campaign.py                       # 200 hosts, the issue's fault mix
    tools/devenv python tools/campaign.py --hosts 30 --keep DIR # the reduced run, work files kept

Starts a winsim fleet over every WinRM profile, gives each host a fault plan (connection resets before and
after the request is applied, quota faults 2150859174, operation timeouts, each on a seeded share of the
requests), makes a few hosts restart in the middle of remediation, closes the port of a few and gives a few a
wrong password in the inventory. Runs ``playbooks/remediate.yml`` once, then ``playbooks/audit.yml`` once,
both at -vvvvv with ordinary forks, and then judges the run from the fleet's own machine state (snapshots),
not from what the collection said:

* every reachable host with good credentials is compliant (or the article does not apply), judged by the
  article specs on facts read straight from the snapshot (no transport, no Ansible);
* no registry value an article writes is of the wrong type or half written;
* no package was installed twice (winsim records every installer run);
* every unreachable host is reported ``unreachable`` and every wrong password as an authentication failure
  naming the host, in the compliance report; hosts that could not be reached were not changed;
* no Python traceback in any output; no password (plain, JSON-escaped, base64, UTF-16) in the output, the
  Ansible log, the report files or the temporary files.

Prints a one-screen table, writes it as JSON (``--summary``), exits 1 when a property fails.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

TOP = Path(__file__).resolve().parent.parent
WINSIM_PATH = TOP / "tests" / "winsim"
COLLECTIONS_PATH = TOP / ".cache" / "collections"
# `make campaign` puts winsim and the collection on PYTHONPATH; a bare `.venv/bin/python tools/campaign.py`
# must work the same way.
for _path in (WINSIM_PATH, COLLECTIONS_PATH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import evaluate, fact_request  # noqa: E402
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (  # noqa: E402
    FactRequest,
    FileFacts,
    HostFacts,
    OsFacts,
    RegistryType,
    RegistryValue,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import (  # noqa: E402
    ArticleSpec,
    load_spec,
    resolve_variables,
)
from winsim import packages  # noqa: E402
from winsim.testing import Fleet, HostSpec, running_fleet  # noqa: E402

PLAYBOOKS = TOP / "playbooks"
SPEC_GLOB = "roles/kb*/files/kb*.yml"

# Every winsim profile with a WinRM listener, and the WinRM versions winsim models beyond a profile's own
# (the 2003 R2 Hardware Management WinRM 1.0, which refuses filters; WMF 3.0 on Server 2008 SP2).
WINRM_PROFILES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("xp-sp1-x86", {}), ("xp-sp2-x86", {}),
    ("2003r2-sp2-x86", {}), ("2003r2-sp2-x64", {}), ("2003r2-sp2-x86", {"winrm_version": "1.0"}),
    ("2008-sp1-x86", {}), ("2008-sp1-x64", {}), ("2008-sp2-x86", {}), ("2008-sp2-x64", {}),
    ("2008-sp2-x64", {"winrm_version": "3.0"}), ("2008r2-rtm-x64", {}),
    ("vista-rtm-x86", {}), ("vista-rtm-x64", {}), ("vista-sp1-x86", {}), ("vista-sp1-x64", {}),
)
# Hosts reached by another transport than WinRM: the NT 4.0 host over SMB (transport/smb/, winsim's NT 4.0
# face; the fleet's inventory gives it `kbfix_transport: smb`). They are the last `Config.smb_hosts` of the
# fleet. winsim's quota and timeout faults are WinRM faults; the face honours reset_before / reset_after (on
# every SMB request and RPC call) and reboot_after_requests (SMB requests), so those are its fault plan.
OTHER_TRANSPORT_PROFILES: tuple[tuple[str, dict[str, Any]], ...] = (("nt4-tse-sp6-x86", {}),)
SMB_PROFILES = frozenset(profile for profile, _ in OTHER_TRANSPORT_PROFILES)
# Profiles where remediation has work to do (a package to install or a value to set): the hosts that restart
# in the middle of remediation are taken from these, so the restart interrupts a change.
REMEDIATION_PROFILES = frozenset({"xp-sp1-x86", "2003r2-sp2-x86", "2003r2-sp2-x64", "2008-sp1-x86", "2008-sp1-x64",
                                  "2008-sp2-x86", "2008-sp2-x64", "2008r2-rtm-x64", "vista-rtm-x86", "vista-rtm-x64"})

SERVERS = ["fs01", "fs01.corp.example.com", "192.0.2.10"]
SITE_VARS: dict[str, Any] = {
    "kb828753_reconnectable_servers": SERVERS,
    "kb828753_reconnect_timeout": 120,
    "kb938475_asynchronous_credits": 256,
    "kbfix_restart": "if_required",
}
# The article variables above, as the specs name them (kb_article maps the role names to them).
ARTICLE_VARIABLES: dict[str, dict[str, Any]] = {
    "KB828753": {"reconnectable_servers": SERVERS, "reconnect_timeout": 120},
    "KB938475": {"asynchronous_credits": 256},
}
PLAYBOOK_RAN = (0, 2, 4)  # ansible-playbook ran through: 2 = a host failed, 4 = a host was unreachable
REG_TYPES: dict[int, RegistryType] = {0: "none", 1: "string", 2: "expandstring", 3: "binary", 4: "dword",
                                      7: "multistring", 11: "qword"}
TRACEBACK = "Traceback (most recent call last)"
TRANSPORT_NAMES = {"winrm": "WinRM hosts", "smb": "NT 4.0 hosts over SMB"}
NT4_HOTFIX_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix"
# Defects known and being fixed elsewhere, by the signature they leave: (id, host kind, text in the host's
# remediate report). A failure of such a host with that text is listed as known, not counted as a failure,
# unless --strict. Remove an entry when its fix lands: the campaign then proves it.
# (description, host kind, text of the failure): defects known and tracked elsewhere, listed without counting
# unless --strict. Empty: the restart-in-the-middle defect (issue 15 item 2) is fixed (kb_article waits and
# resumes), so every failure counts.
KNOWN_DEFECTS: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Config:
    hosts: int = 200
    seed: int = 14
    forks: int = 25
    reset_rate: float = 0.10  # of requests: half reset before the request is applied, half after
    quota_rate: float = 0.05
    timeout_rate: float = 0.02
    rebooting: int = 3
    unreachable: int = 5
    wrong_password: int = 2
    reboot_after_requests: int = 24  # WS-Man requests into remediation (facts take about 8): inside kb_article
    smb_hosts: int = 4  # NT 4.0 hosts over SMB, part of `hosts`
    smb_rebooting: int = 1  # of those, restarting in the middle of remediation
    # SMB requests into remediation: the facts task takes about 25, kb_article's audit part about 15 more, so
    # the restart comes while the package is staged or run.
    smb_reboot_after_requests: int = 45
    verbosity: int = 5
    playbook_timeout: float = 1500.0
    strict: bool = False  # known defects (KNOWN_DEFECTS) count as failures too

    @classmethod
    def reduced(cls, hosts: int = 30, **changes: Any) -> Config:
        """The same fault mix on fewer hosts: at least one host of every kind."""
        return cls(hosts=hosts, rebooting=1, unreachable=1, wrong_password=1, forks=10, smb_hosts=2,
                   smb_rebooting=1, **changes)


@dataclass
class CampaignHost:
    name: str
    profile: str
    overrides: dict[str, Any]
    kind: str  # "normal" | "rebooting" | "unreachable" | "wrong_password"
    password: str = field(repr=False)
    inventory_password: str = field(repr=False)

    @property
    def label(self) -> str:
        version = self.overrides.get("winrm_version")
        return f"{self.profile} (WinRM {version})" if version else self.profile

    @property
    def transport(self) -> str:
        return "smb" if self.profile in SMB_PROFILES else "winrm"


@dataclass
class Property:
    name: str
    passed: bool
    detail: str
    failures: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)  # failures matching KNOWN_DEFECTS: reported, not counted


@dataclass
class Summary:
    hosts: int
    hosts_by_kind: dict[str, int]
    by_transport: dict[str, dict[str, int]]  # per transport (winrm, smb): hosts by kind, faults, outcomes
    hosts_by_profile: dict[str, int]
    requests: int
    faults_injected: dict[str, int]
    outcomes: dict[str, int]
    installs: dict[str, int]
    wall_seconds: dict[str, float]
    playbook_rc: dict[str, int]
    properties: list[Property]
    workdir: str

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.properties)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


# --- the fleet ------------------------------------------------------------------------------------------


def plan_fleet(config: Config) -> list[CampaignHost]:
    """Hosts cycling through the profiles; the special ones picked with the campaign's seed."""
    rng = random.Random(config.seed)  # which hosts are special: reproducible, not secret
    hosts = []
    winrm_hosts = config.hosts - config.smb_hosts
    if winrm_hosts < 1 or config.smb_rebooting > config.smb_hosts:
        raise SystemExit(f"{config.smb_hosts} SMB hosts ({config.smb_rebooting} restarting) do not fit in a fleet "
                         f"of {config.hosts}")
    for index in range(config.hosts):
        profiles = WINRM_PROFILES if index < winrm_hosts else OTHER_TRANSPORT_PROFILES
        profile, overrides = profiles[(index - (0 if index < winrm_hosts else winrm_hosts)) % len(profiles)]
        # A password of its own per host, with characters that cmd.exe, WQL, JSON and YAML treat specially:
        # found anywhere in the output, it is a leak, and which host leaked it is known.
        password = f"Cp{index:03d}&%'\"^{secrets.token_hex(4)}!"
        hosts.append(CampaignHost(f"c{index + 1:03d}", profile, dict(overrides), "normal", password, password))
    special = config.rebooting + config.unreachable + config.wrong_password
    if special > len(hosts):
        raise SystemExit(f"{special} special hosts do not fit in a fleet of {len(hosts)}")
    rebooting = [h for h in hosts if h.profile in REMEDIATION_PROFILES]
    chosen = rng.sample(rebooting, config.rebooting)
    chosen += rng.sample([h for h in hosts if h.transport == "smb"], config.smb_rebooting)
    for host in chosen:
        host.kind = "rebooting"
    # Port closed and wrong password stay WinRM hosts: the NT 4.0 transport's messages name the address only
    # (docs/reliability.md), which the reason check (the inventory name in the text) needs.
    others = [h for h in hosts if h.kind == "normal" and h.transport == "winrm"]
    for host in rng.sample(others, config.unreachable + config.wrong_password):
        host.kind = "unreachable" if config.unreachable > sum(h.kind == "unreachable" for h in hosts) \
            else "wrong_password"
    for host in hosts:
        if host.kind == "wrong_password":
            host.inventory_password = f"Wrong{secrets.token_hex(4)}&%'!"
    return hosts


def fault_plan(config: Config, index: int, host: CampaignHost) -> dict[str, Any]:
    seed = config.seed * 100_000 + index * 10
    plan: dict[str, Any] = {
        "reset_before": {"probability": config.reset_rate / 2, "seed": seed},
        "reset_after": {"probability": config.reset_rate / 2, "seed": seed + 1},
    }
    if host.transport == "smb":
        # The share that matches "10% of WS-Man requests" is 10% of RPC calls (one registry, service or
        # srvsvc call is what one WS-Man Invoke is); on every SMB packet it would be about three times as
        # many faults per operation, plus the session setup of every retry (docs/reliability.md).
        for kind in ("reset_before", "reset_after"):
            plan[kind]["action"] = "RPC"
    if host.transport == "winrm":  # WS-Man faults; the NT 4.0 face has no such thing
        plan["quota_fault"] = {"probability": config.quota_rate, "seed": seed + 2}
        plan["timeout_fault"] = {"probability": config.timeout_rate, "seed": seed + 3}
    if host.kind == "rebooting":
        plan["reboot_after_requests"] = config.reboot_after_requests if host.transport == "winrm" \
            else config.smb_reboot_after_requests
    return plan


def host_specs(config: Config, hosts: Sequence[CampaignHost]) -> list[HostSpec]:
    specs = []
    for index, host in enumerate(hosts):
        overrides: dict[str, Any] = {**host.overrides, "credentials": {"Administrator": host.password},
                                     "reboot_seconds": 1}
        if host.kind == "unreachable":
            overrides["listener"] = False  # the port is bound and never listened on: connection refused
        else:
            overrides["faults"] = fault_plan(config, index, host)
        specs.append(HostSpec(host.name, host.profile, overrides))
    return specs


def write_inventory(fleet: Fleet, hosts: Sequence[CampaignHost], directory: Path, package_dir: Path) -> Path:
    inventory = fleet.inventory(directory / "hosts.yml")
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    by_name = {h.name: h for h in hosts}
    for group in document["all"]["children"].values():
        for name, host_vars in group["hosts"].items():
            host_vars["ansible_password"] = by_name[name].inventory_password
    inventory.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    group_vars = directory / "group_vars" / "all.yml"
    group_vars.parent.mkdir(parents=True, exist_ok=True)
    data = {**SITE_VARS, "kbfix_package_source": str(package_dir), "kbfix_reboot_timeout": 300}
    group_vars.write_text("---\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return inventory


# --- ansible-playbook -----------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    rc: int
    seconds: float
    output: Path
    report_dir: Path


def ansible_env(workdir: Path, report_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_PATH))
    env.setdefault("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
    env.setdefault("ANSIBLE_HOME", str(TOP / ".cache" / "ansible-home"))
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    env.update({
        "ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report",
        "KBFIX_REPORT_DIR": str(report_dir),
        "KBFIX_REPORT_FORMATS": "json,junit,html",
        # Everything the run writes stays in the work directory, where the password scan reads it.
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_LOG_PATH": str(workdir / "ansible.log"),
        "TMPDIR": str(tmp),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    return env


def run_playbook(name: str, playbook: Path, inventory: Path, workdir: Path, config: Config) -> Run:
    report_dir = workdir / f"report-{name}"
    output = workdir / f"{name}.out"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory.parent),
               "-f", str(config.forks), str(playbook)]
    if config.verbosity:
        command.append("-" + "v" * config.verbosity)
    started = time.monotonic()
    with output.open("wb") as out:
        proc = subprocess.run(command, cwd=workdir, env=ansible_env(workdir, report_dir), stdout=out,
                              stderr=subprocess.STDOUT, timeout=config.playbook_timeout, check=False)
    return Run(name, proc.returncode, time.monotonic() - started, output, report_dir)


# --- judging from the machine state ---------------------------------------------------------------------


def load_specs() -> list[ArticleSpec]:
    return [load_spec(path) for path in sorted(TOP.glob(SPEC_GLOB))]


def machine_os(machine: Any) -> OsFacts:
    info = machine.os
    return OsFacts(version=info.version, service_pack=int(info.sp_major), architecture=info.architecture,
                   product_type=int(info.product_type), caption=info.caption,
                   r2=(info.other_type_description or "") == "R2", system_root=info.system_root)


def machine_facts(machine: Any, os_facts: OsFacts, request: FactRequest) -> HostFacts:
    """What the machine holds for a request: read from winsim's state directly, as a judge independent of
    the transport and of everything the run reported."""
    facts = HostFacts(os=os_facts)
    for path in request.files:
        entry = machine.fs.entry(machine.expand(path))
        facts.files[path.casefold()] = FileFacts(path=path, exists=False) if entry is None else FileFacts(
            path=path, exists=True, version=machine.file_version(path), size=entry.size,
            modified=entry.modified.astimezone(dt.UTC) if entry.modified.tzinfo else entry.modified.replace(
                tzinfo=dt.UTC))
    for key, name in request.registry_values:
        value = machine.registry.get(key, name)
        facts.registry[(registry_key_id(key), name.casefold())] = None if value is None else RegistryValue(
            REG_TYPES[value.type], value.data)
    for key in request.registry_keys:
        facts.registry_keys[registry_key_id(key)] = machine.registry.open(key) is not None
    if os_facts.version.startswith("4."):
        # NT 4.0 has no WMI: its hotfix installer records ...\Windows NT\CurrentVersion\Hotfix\<id>.
        key = machine.registry.open(NT4_HOTFIX_KEY)
        recorded = {str(sub.name).upper() for sub in key.subkeys.values()} if key is not None else set()
        facts.hotfixes = frozenset(recorded)
        facts.hotfix_sources = {hotfix: ("registry",) for hotfix in recorded}
    else:
        qfe = {str(i.properties["HotFixID"]).upper()
               for i in machine.wmi_enumerate("root/cimv2", "Win32_QuickFixEngineering")}
        facts.hotfixes = frozenset(qfe)
        facts.hotfix_sources = {hotfix: ("qfe",) for hotfix in qfe}
    indicators = machine.reboot_pending_indicators()
    facts.reboot_pending = bool(indicators)
    facts.reboot_pending_sources = tuple(indicators)
    return facts


def judge(machine: Any, specs: Sequence[ArticleSpec]) -> dict[str, tuple[str, str]]:
    """article -> (status, reason) for one machine, by the specs alone."""
    os_facts = machine_os(machine)
    verdicts = {}
    for spec in specs:
        variables = resolve_variables(spec, ARTICLE_VARIABLES.get(spec.id, {}), require=False)
        verdict = evaluate(spec, machine_facts(machine, os_facts, fact_request(spec, os_facts, variables)), variables)
        verdicts[spec.id] = (verdict.status, verdict.reason)
    return verdicts


def registry_problems(name: str, before: Any, after: Any, specs: Sequence[ArticleSpec]) -> list[str]:
    """Values the articles write that are of the wrong type or half written, and keys created empty."""
    problems = []
    for spec in specs:
        for setting in spec.registry:
            value = after.registry.get(setting.key, setting.name)
            where = f"{name}: {setting.key}\\{setting.name}"
            if value is None:
                existed = before.registry.open(setting.key) is not None
                key = after.registry.open(setting.key)
                if key is not None and not existed and not key.values and not key.subkeys:
                    problems.append(f"{where}: the run created the key and left it empty")
                continue
            if REG_TYPES.get(value.type) != setting.type:
                problems.append(f"{where}: type {REG_TYPES.get(value.type, value.type)}, the article needs "
                                f"{setting.type}")
            elif not _well_formed(setting.type, value.data):
                problems.append(f"{where}: data {value.data!r} is not a whole {setting.type}")
            elif setting.type == "multistring" and setting.name.casefold() == "reconnectableservers":
                present = {str(s).casefold() for s in value.data}
                missing = [s for s in SERVERS if s.casefold() not in present]
                before_value = before.registry.get(setting.key, setting.name)
                if missing and (before_value is None or before_value.data != value.data):
                    problems.append(f"{where}: changed but lacks {', '.join(missing)} (a partial merge)")
    return problems


def _well_formed(reg_type: str, data: Any) -> bool:
    if reg_type == "dword":
        return isinstance(data, int) and 0 <= data <= 0xFFFFFFFF
    if reg_type == "qword":
        return isinstance(data, int) and 0 <= data <= 0xFFFFFFFFFFFFFFFF
    if reg_type == "multistring":
        return isinstance(data, list) and all(isinstance(s, str) and s and "\x00" not in s for s in data)
    if reg_type in ("string", "expandstring"):
        return isinstance(data, str) and "\x00" not in data
    return True


def install_counts(machine: Any) -> tuple[Counter[str], int]:
    """Installs per hotfix id, and installer runs that found nothing to do (a repeat)."""
    installed: Counter[str] = Counter()
    repeats = 0
    for run in machine.installer_runs:
        if run["installed"]:
            installed[run["hotfix_id"]] += 1
        else:
            repeats += 1
    return installed, repeats


def changes_of(before: Any, after: Any) -> list[str]:
    """What differs between two snapshots of one machine: registry, files, boots, installer runs."""
    changed = []
    if before.registry.to_json() != after.registry.to_json():
        changed.append("registry")
    if before.fs.to_json() != after.fs.to_json():
        changed.append("files")
    if before.boot_id != after.boot_id:
        changed.append("boot")
    if before.installer_runs != after.installer_runs:
        changed.append("installers")
    return changed


# --- what the run said ----------------------------------------------------------------------------------


def report_hosts(run: Run) -> dict[str, dict[str, Any]]:
    path = run.report_dir / "kbfix-report.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {h["name"]: h for h in data["hosts"]}


def host_reason(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    problems = [entry.get("unreachable"), *(entry.get("failures") or [])]
    problems += [cell.get("problem") for cell in entry.get("articles", {}).values()]
    return " | ".join(dict.fromkeys(f"{p['kind']}: {p['message']}" for p in problems if p))


def output_files(workdir: Path) -> Iterator[Path]:
    """Everything the run wrote: outputs, Ansible's log, the reports, temporary files. Not the inventory and
    the fleet's own state, which hold the passwords by design."""
    for path in sorted(workdir.rglob("*")):
        relative = path.relative_to(workdir).parts
        if path.is_file() and relative[0] not in ("fleet", "inventory", "packages"):
            yield path


def secret_forms(password: str) -> list[bytes]:
    raw = password.encode("utf-8")
    return [raw, json.dumps(password)[1:-1].encode("utf-8"), base64.b64encode(raw),
            password.encode("utf-16-le"), base64.b64encode(password.encode("utf-16-le"))]


# --- the campaign ---------------------------------------------------------------------------------------


def run_campaign(config: Config, workdir: Path, out: TextIO = sys.stdout) -> Summary:
    walls: dict[str, float] = {}
    started = time.monotonic()
    hosts = plan_fleet(config)
    specs = load_specs()
    package_dir = workdir / "packages"
    for name in packages.package_names():
        packages.write_package(name, package_dir)
    out.write(f"Starting {len(hosts)} simulated hosts in {workdir} ...\n")
    out.flush()
    with running_fleet(host_specs(config, hosts), state_dir=workdir / "fleet") as fleet:
        walls["fleet_start"] = time.monotonic() - started
        inventory = write_inventory(fleet, hosts, workdir / "inventory", package_dir)
        reachable = [h for h in hosts if h.kind != "unreachable"]
        before = {h.name: fleet.hosts[h.name].host() for h in reachable}
        runs = {}
        for name, playbook in (("remediate", PLAYBOOKS / "remediate.yml"), ("audit", PLAYBOOKS / "audit.yml")):
            out.write(f"Running {playbook.name} with -f {config.forks} ...\n")
            out.flush()
            runs[name] = run_playbook(name, playbook, inventory, workdir, config)
            walls[name] = runs[name].seconds
        after = {h.name: fleet.hosts[h.name].host() for h in reachable}
        counters = {h.name: fleet.hosts[h.name].counters() for h in reachable}
    checking = time.monotonic()
    summary = assess(config, hosts, specs, before, after, counters, runs, workdir)
    walls["checks"] = time.monotonic() - checking
    walls["total"] = time.monotonic() - started
    summary.wall_seconds = {k: round(v, 1) for k, v in walls.items()}
    return summary


def assess(config: Config, hosts: Sequence[CampaignHost], specs: Sequence[ArticleSpec], before: dict[str, Any],
           after: dict[str, Any], counters: dict[str, dict[str, Any]], runs: dict[str, Run],
           workdir: Path) -> Summary:
    properties = []
    good = [h for h in hosts if h.kind in ("normal", "rebooting")]

    # 1. compliance from the machine state
    outcomes: Counter[str] = Counter()
    by_transport: dict[str, Counter[str]] = {t: Counter() for t in sorted({h.transport for h in hosts})}
    not_compliant = []
    for host in good:
        verdicts = judge(after[host.name], specs)
        open_ = {a: v for a, v in verdicts.items() if v[0] not in ("compliant", "not_applicable")}
        if open_:
            outcome = "not compliant"
            not_compliant += [f"{host.name} ({host.label}, {host.kind}) {a}: {s}: {r}"
                              for a, (s, r) in sorted(open_.items())]
        elif all(v[0] == "not_applicable" for v in verdicts.values()):
            outcome = "nothing applies"
        else:
            outcome = "compliant"
        outcomes[outcome] += 1
        by_transport[host.transport][outcome] += 1
    properties.append(Property("compliant after the run (machine state)", not not_compliant,
                               f"{len(good) - outcomes['not compliant']} of {len(good)} reachable hosts with good "
                               "credentials", not_compliant))

    # 2. registry values
    registry = [p for h in hosts if h.kind != "unreachable"
                for p in registry_problems(h.name, before[h.name], after[h.name], specs)]
    properties.append(Property("registry values whole and of the right type", not registry,
                               f"{len(registry)} half-written or wrong-type values", registry))

    # 3. installs
    installs: Counter[str] = Counter()
    twice = []
    for host in hosts:
        if host.kind == "unreachable":
            continue
        installed, repeats = install_counts(after[host.name])
        installs["installed"] += sum(installed.values())
        installs["repeat runs (nothing to do)"] += repeats
        twice += [f"{host.name}: {hotfix} installed {n} times" for hotfix, n in installed.items() if n > 1]
    properties.append(Property("no package installed twice", not twice,
                               f"{installs['installed']} installs, {len(twice)} doubled", twice))

    # 4. per-host reasons, from the compliance reports of both runs
    reasons = []
    for run in runs.values():
        reported = report_hosts(run)
        for host in hosts:
            entry = reported.get(host.name)
            text = host_reason(entry)
            if host.kind == "unreachable":
                if entry is None or entry["status"] != "unreachable" or not text:
                    reasons.append(f"{run.name}: {host.name} (port closed) reported "
                                   f"{entry and entry['status']!r}: {text or 'no reason'}")
                else:
                    outcomes["reported unreachable"] += run.name == "audit"
            elif host.kind == "wrong_password":
                if entry is None or entry["status"] != "failed" or "credentials" not in text \
                        or host.name not in text:
                    reasons.append(f"{run.name}: {host.name} (wrong password) reported "
                                   f"{entry and entry['status']!r}: {text or 'no reason'}")
                else:
                    outcomes["reported authentication failure"] += run.name == "audit"
            elif entry is None or entry["status"] in ("failed", "unreachable", "unknown"):
                reasons.append(f"{run.name}: {host.name} ({host.label}, {host.kind}) reported "
                               f"{entry and entry['status']!r}: {text or 'no reason'}")
    for host in hosts:
        if host.kind == "wrong_password" and changes_of(before[host.name], after[host.name]):
            reasons.append(f"{host.name}: changed with a wrong password: "
                           f"{', '.join(changes_of(before[host.name], after[host.name]))}")
    properties.append(Property("per-host reasons for failed and unreachable hosts", not reasons,
                               f"{config.unreachable} unreachable, {config.wrong_password} wrong password; "
                               f"{len(reasons)} wrong or missing", reasons))

    # 5. tracebacks and 6. passwords, in everything the run wrote
    files = list(output_files(workdir))
    tracebacks = [str(p.relative_to(workdir)) for p in files if TRACEBACK.encode() in p.read_bytes()]
    properties.append(Property("no Python traceback in any output", not tracebacks,
                               f"{len(files)} files read", tracebacks))
    leaks = []
    secrets_by_host = {h.name: {h.password, h.inventory_password} for h in hosts}
    for path in files:
        data = path.read_bytes()
        for name, passwords in secrets_by_host.items():
            if any(form in data for password in passwords for form in secret_forms(password)):
                leaks.append(f"{path.relative_to(workdir)}: the password of {name}")
    size = sum(p.stat().st_size for p in files)
    properties.append(Property(f"no password in output, logs, reports, temp files (-{'v' * config.verbosity})",
                               not leaks, f"{len(files)} files, {size / 1e6:.1f} MB", leaks))

    for run in runs.values():
        if run.rc not in PLAYBOOK_RAN:
            properties.append(Property(f"{run.name} ran through", False, f"ansible-playbook exit code {run.rc}",
                                       [_tail(run.output)]))

    if not config.strict:
        _set_aside_known(properties, hosts, runs)

    injected: Counter[str] = Counter()
    transport_of = {h.name: h.transport for h in hosts}
    for name, data in counters.items():
        injected.update(data.get("injected", {}))
        by_transport[transport_of[name]].update({f"injected {k}": n for k, n in data.get("injected", {}).items()})
        by_transport[transport_of[name]]["requests"] += int(data["requests"])
    for host in hosts:
        by_transport[host.transport][f"hosts {host.kind.replace('_', ' ')}"] += 1
    for host in hosts:
        installed, _ = install_counts(after[host.name]) if host.name in after else (Counter(), 0)
        by_transport[host.transport]["installs"] += sum(installed.values())
    return Summary(
        hosts=len(hosts), hosts_by_kind=dict(Counter(h.kind for h in hosts)),
        by_transport={t: dict(sorted(c.items())) for t, c in by_transport.items()},
        hosts_by_profile=dict(sorted(Counter(h.label for h in hosts).items())),
        requests=sum(int(c["requests"]) for c in counters.values()), faults_injected=dict(sorted(injected.items())),
        outcomes=dict(outcomes), installs=dict(installs), wall_seconds={},
        playbook_rc={name: run.rc for name, run in runs.items()}, properties=properties, workdir=str(workdir))


def _set_aside_known(properties: list[Property], hosts: Sequence[CampaignHost], runs: dict[str, Run]) -> None:
    """Move the failures of hosts that show a known defect's signature to ``Property.known``."""
    remediated = report_hosts(runs["remediate"]) if "remediate" in runs else {}
    known: dict[str, str] = {}  # host -> defect
    for host in hosts:
        reason = host_reason(remediated.get(host.name))
        for defect, kind, text in KNOWN_DEFECTS:
            if host.kind == kind and text in reason:
                known[host.name] = defect
    for prop in properties:
        for failure in list(prop.failures):
            name = next((n for n in known if f" {n} " in f" {failure} " or failure.startswith(f"{n}:")), None)
            if name is not None:
                prop.failures.remove(failure)
                prop.known.append(f"{known[name]}: {failure}")
        prop.passed = not prop.failures


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# --- output ---------------------------------------------------------------------------------------------


def render(summary: Summary, out: TextIO, width: int = 150) -> None:
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(summary.hosts_by_kind.items()))
    out.write(f"\nFleet fault campaign: {summary.hosts} hosts over {len(summary.hosts_by_profile)} profiles "
              f"({kinds})\n")
    faults = ", ".join(f"{k} {n}" for k, n in summary.faults_injected.items())
    share = sum(summary.faults_injected.values()) / summary.requests if summary.requests else 0.0
    out.write(f"Requests {summary.requests}; faults injected {sum(summary.faults_injected.values())} "
              f"({share:.1%}): {faults}\n")
    out.write("Outcomes: " + ", ".join(f"{k} {n}" for k, n in summary.outcomes.items())
              + "; installs: " + ", ".join(f"{k} {n}" for k, n in summary.installs.items()) + "\n")
    for transport, data in summary.by_transport.items():
        out.write(f"  {TRANSPORT_NAMES.get(transport, transport)}: " + ", ".join(f"{k} {n}" for k, n in data.items())
                  + "\n")
    walls = summary.wall_seconds
    out.write("Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items())
              + "; exit codes: " + ", ".join(f"{k} {v}" for k, v in summary.playbook_rc.items()) + "\n\n")
    out.write(f"{'property':<58}{'result':<8}detail\n" + "-" * 110 + "\n")
    for prop in summary.properties:
        known = f"; {len(prop.known)} known (not counted)" if prop.known else ""
        out.write(f"{prop.name:<58}{'ok' if prop.passed else 'FAIL':<8}{prop.detail}{known}\n")
    shown = 0
    for prop in summary.properties:
        for failure in prop.failures:
            if shown == 0:
                out.write("\nFailures (the JSON summary has them all):\n")
            if shown < 12:
                line = f"  {failure}"
                out.write((line if len(line) <= width else line[:width - 3] + "...") + "\n")
            shown += 1
    if shown > 12:
        out.write(f"  ... and {shown - 12} more\n")
    known_lines = [k for prop in summary.properties for k in prop.known]
    if known_lines:
        out.write("\nKnown defects, fixed elsewhere (--strict counts them):\n")
        for line in known_lines[:6]:
            line = f"  {line}"
            out.write((line if len(line) <= width else line[:width - 3] + "...") + "\n")
    out.write(f"\n{'PASSED' if summary.passed else 'FAILED'}; work files in {summary.workdir}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=Config.hosts)
    parser.add_argument("--forks", type=int, default=None)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--summary", type=Path, default=TOP / "report" / "campaign.json",
                        help="where the summary JSON goes")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--strict", action="store_true", help="count the known defects (KNOWN_DEFECTS) too")
    args = parser.parse_args(argv)
    config = Config(hosts=args.hosts, seed=args.seed) if args.hosts >= 100 else \
        Config.reduced(hosts=args.hosts, seed=args.seed)
    config = Config(**{**asdict(config), "forks": args.forks or config.forks, "strict": args.strict})
    with ExitStack() as stack:
        if args.keep:
            workdir = args.keep.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kbfix-campaign-")))
        summary = run_campaign(config, workdir)
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
        render(summary, sys.stdout)
        sys.stdout.write(f"Summary: {args.summary}\n")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
