#!/usr/bin/env python3
"""kbfix.windows against the raw-command baseline, side by side, on winsim (``make bench``).

    .venv/bin/python bench/run.py            # full run, 3 repetitions (about 20 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # 2 repetitions, fleet of 50 hosts only
    .venv/bin/python bench/run.py --part articles|micro|fleet|smb|uploads --reps N --forks N --sizes 50,200

Part 1 (articles): five hosts, one per Windows family the articles cover. For each seed article, with 0 ms
and with 25 ms one-way latency (``proxy.py``), ``playbooks/audit.yml`` (kbfix.windows.facts + kb_article)
and ``baseline/audit_raw.yml`` (one raw task per check) audit that article on all five at once. Requests come
from winsim's counters; each host's time is the sum of its own task durations (``callback_plugins``).
Runs of the facts task alone and of the baseline's OS detection alone split each side into "detect the
OS" and "the article itself".

Part 2 (fleet): the four articles across 50, 200 and 500 hosts (every reachable profile, cycled): wall
time, controller CPU seconds of the ansible-playbook process tree (``RUSAGE_CHILDREN`` around the
subprocess; the fleet is a separate process started before and still running, so it is not counted), the
same inventory running a two-task no-op play as Ansible's own floor, and the baseline at 50 hosts.

Part 3 (smb): KB253729 on winsim's NT 4.0 face (no WinRM: ``kbfix_transport: smb``), one host without the fix
and one with it: ``playbooks/audit.yml`` and the facts task alone, the SMB requests (each one round trip)
and the RPC calls they carry from winsim's counters, split into the facts task and the kb_article task.

Part 4 (uploads): real-size packages put on hosts through the cmd shell's stdin against the echo path:
requests per MB, a fleet remediated both ways at 25 ms, the NT 4.0 SMB copy (``uploads.py``; run once, not
repeated: ``--upload-hosts N`` sizes its fleet).

Everything else is repeated and reported as medians; ``bench/results.json`` keeps every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
sys.path.insert(0, str(HERE))

import stats  # noqa: E402
import uploads  # noqa: E402
from baseline import generate  # noqa: E402
from proxy import DelayProxy  # noqa: E402
from stats import Target, ratio, table  # noqa: E402

from winsim.testing import Fleet, HostSpec, running_fleet  # noqa: E402

ARTICLES = generate.ARTICLES
OUT = HERE / "out"
RESULTS = HERE / "results.json"
AUDIT = TOP / "playbooks" / "audit.yml"
FACTS_ONLY = HERE / "playbooks" / "facts.yml"
NOOP = HERE / "playbooks" / "noop.yml"
BASELINE = HERE / "baseline" / "audit_raw.yml"

# One host per Windows family the seed articles cover. NT 4.0 (KB253729) has no WinRM at all: neither side
# can reach it, so it is left out and KB253729 is measured where it does not apply.
ARTICLE_HOSTS = ("xp-sp1-x86", "2003r2-sp2-x64", "2008-sp2-x64", "2008r2-rtm-x64", "vista-rtm-x86")
NO_WINRM_PROFILES = ("nt4-tse-sp6-x86",)
# Ansible's winrm connection wraps every raw command in powershell.exe, which winsim runs only where the
# host has it. The benchmark gives every host PowerShell 2.0 (WMF 2.0) so that the baseline can run at all;
# on XP before SP3 that is counterfactual (see docs/performance.md).
POWERSHELL: dict[str, Any] = {"features": {"powershell": "2.0"}}
LATENCIES_MS = (0.0, 25.0)


# --- one ansible-playbook run -------------------------------------------------------------------------


@dataclass
class TaskTime:
    host: str
    task: str
    action: str
    status: str
    seconds: float
    requests: int | None
    verdicts: dict[str, str] | None
    rc: int | None
    out: str | None
    msg: str | None


@dataclass
class Run:
    playbook: str
    rc: int
    wall: float
    cpu: float
    tasks: list[TaskTime] = field(default_factory=list)
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def host_tasks(self, host: str) -> list[TaskTime]:
        return [t for t in self.tasks if t.host == host and t.status != "skipped"]

    def host_seconds(self, host: str, prefix: str | None = None) -> float:
        return sum(t.seconds for t in self.host_tasks(host) if prefix is None or t.task.startswith(prefix))

    def requests(self, host: str) -> int:
        return int(self.counters.get(host, {}).get("requests", 0))

    def http_requests(self, host: str) -> int:
        c = self.counters.get(host, {})
        return int(c.get("requests", 0)) + int(c.get("auth_requests", 0))

    def problems(self) -> list[str]:
        """Why this run cannot be trusted: a failed or unreachable task, or a raw command the host did not
        really run (winsim prints "winsim:" or cmd's "not recognized" when it cannot)."""
        out = [f"{t.host}: {t.task}: {t.status} {t.msg or ''}".strip()
               for t in self.tasks if t.status in ("failed", "unreachable")]
        out += [f"{t.host}: {t.task}: {t.out!r}" for t in self.tasks
                if t.out and ("not recognized" in t.out or "winsim:" in t.out)]
        return out


class Runner:
    def __init__(self, forks: int, log_dir: Path) -> None:
        self.forks = forks
        self.log_dir = log_dir
        self.count = 0

    def run(self, playbook: Path, inventory: Path, extra_vars: dict[str, Any], fleet: Fleet | None = None,
            hosts: Sequence[str] = ()) -> Run:
        self.count += 1
        label = f"{self.count:04d}-{playbook.stem}"
        timing = self.log_dir / f"{label}.timing.jsonl"
        timing.unlink(missing_ok=True)
        if fleet is not None:
            for name in hosts:
                fleet.hosts[name].reset_counters()
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook),
               "-e", json.dumps(extra_vars)]
        env = dict(os.environ, KBFIX_BENCH_TIMING=str(timing), ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
                   ANSIBLE_FORKS=str(self.forks), ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_HOST_KEY_CHECKING="false")
        with open(self.log_dir / f"{label}.log", "wb") as log:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=TOP, check=False).returncode
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result = Run(playbook.name, rc, wall, cpu, _read_timing(timing))
        if fleet is not None:
            result.counters = {name: fleet.hosts[name].counters() for name in hosts}
        return result


def _read_timing(path: Path) -> list[TaskTime]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        out.append(TaskTime(d["host"], d["task"], d["action"], d["status"], d["end"] - d["start"], d["requests"],
                            d.get("verdicts"), d.get("rc"), d.get("out"), d.get("msg")))
    return out


# --- inventories and latency ----------------------------------------------------------------------------


def write_inventory(fleet: Fleet, path: Path, hosts: Sequence[str], ports: dict[tuple[str, int], int] | None) -> Path:
    """The fleet's inventory limited to ``hosts``; with ``ports``, each host reached through the proxy."""
    full = yaml.safe_load(fleet.inventory(path).read_text(encoding="utf-8"))
    wanted = set(hosts)
    for group in full["all"]["children"].values():
        group["hosts"] = {name: hv for name, hv in group["hosts"].items() if name in wanted}
        if ports is not None:
            for hv in group["hosts"].values():
                hv["ansible_port"] = ports[(hv["ansible_host"], int(hv["ansible_port"]))]
    full["all"]["children"] = {g: v for g, v in full["all"]["children"].items() if v["hosts"]}
    path.write_text(yaml.safe_dump(full, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def latency(fleet: Fleet, hosts: Sequence[str], delay_ms: float) -> Iterator[dict[tuple[str, int], int] | None]:
    if delay_ms <= 0:
        yield None
        return
    targets = [(fleet.hosts[h].address, fleet.hosts[h].port) for h in hosts]
    with DelayProxy(targets, delay_ms) as proxy:
        yield proxy.ports


def ours_vars(articles: Sequence[str]) -> dict[str, Any]:
    """playbooks/audit.yml's inputs: the articles and the same site choices the baseline was generated with."""
    extra: dict[str, Any] = {"kbfix_articles": list(articles)}
    for article, variables in generate.VARIABLES.items():
        for name, value in variables.items():
            extra[f"{article.lower()}_{name}"] = value
    return extra


def baseline_vars(articles: Sequence[str]) -> dict[str, Any]:
    return {"kbfix_bench_articles": list(articles)}


# --- part 1: per host and article -----------------------------------------------------------------------


def part_articles(runner: Runner, reps: int, state: Path, problems: list[str]) -> dict[str, Any]:
    names = {profile: f"h-{profile}" for profile in ARTICLE_HOSTS}
    specs = [HostSpec(name, profile, json.loads(json.dumps(POWERSHELL))) for profile, name in names.items()]
    hosts = list(names.values())
    samples: list[dict[str, Any]] = []
    with running_fleet(specs, state_dir=state / "articles") as fleet:
        for delay in LATENCIES_MS:
            with latency(fleet, hosts, delay) as ports:
                inventory = write_inventory(fleet, state / f"articles-{int(delay)}ms.yml", hosts, ports)
                for rep in range(reps):
                    print(f"  articles: {delay:g} ms, repetition {rep + 1}/{reps}", flush=True)
                    samples += _article_rep(runner, fleet, inventory, hosts, names, delay, rep, problems)
    rows = stats.medians_by(samples, ("latency_ms", "profile", "host", "article"), SAMPLE_FIELDS)
    for row in rows:
        _derive_article_row(row)
    return {"hosts": names, "samples": samples, "rows": rows}


SAMPLE_FIELDS = ("ours_requests", "ours_http", "ours_facts_requests", "ours_article_requests",
                 "ours_module_requests", "ours_seconds", "ours_facts_seconds", "ours_article_seconds",
                 "base_requests", "base_http", "base_detect_requests", "base_check_requests", "base_tasks",
                 "base_seconds", "base_detect_seconds", "base_check_seconds", "applies")


def _article_rep(runner: Runner, fleet: Fleet, inventory: Path, hosts: list[str], names: dict[str, str],
                 delay: float, rep: int, problems: list[str]) -> list[dict[str, Any]]:
    def checked(run: Run) -> Run:
        problems.extend(f"{run.playbook} ({delay:g} ms): {p}" for p in run.problems())
        return run

    facts = checked(runner.run(FACTS_ONLY, inventory, {}, fleet, hosts))
    detect = checked(runner.run(BASELINE, inventory, baseline_vars([]), fleet, hosts))
    samples = []
    for article in ARTICLES:
        ours = checked(runner.run(AUDIT, inventory, ours_vars([article]), fleet, hosts))
        base = checked(runner.run(BASELINE, inventory, baseline_vars([article]), fleet, hosts))
        for profile, host in names.items():
            samples.append(_article_sample(article, profile, host, delay, rep, ours, facts, base, detect))
    return samples


def _article_sample(article: str, profile: str, host: str, delay: float, rep: int, ours: Run, facts: Run,
                    base: Run, detect: Run) -> dict[str, Any]:
    kb_task = [t for t in ours.host_tasks(host) if t.action.endswith("kb_article")]
    facts_task = [t for t in ours.host_tasks(host) if t.action.endswith("facts")]
    verdict = (kb_task[0].verdicts or {}).get(article) if kb_task else None
    checks = [t for t in base.host_tasks(host) if t.task.startswith(f"{article}:") and t.action.endswith("raw")]
    return {
        "latency_ms": delay, "rep": rep, "profile": profile, "host": host, "article": article,
        "verdict": verdict, "applies": 0 if verdict in (None, "not_applicable") else 1,
        "ours_requests": ours.requests(host), "ours_http": ours.http_requests(host),
        "ours_facts_requests": facts.requests(host),
        "ours_article_requests": ours.requests(host) - facts.requests(host),
        "ours_module_requests": kb_task[0].requests if kb_task else None,
        "ours_seconds": ours.host_seconds(host),
        "ours_facts_seconds": sum(t.seconds for t in facts_task),
        "ours_article_seconds": sum(t.seconds for t in kb_task),
        "base_requests": base.requests(host), "base_http": base.http_requests(host),
        "base_detect_requests": detect.requests(host),
        "base_check_requests": base.requests(host) - detect.requests(host),
        "base_tasks": len(checks),
        "base_seconds": base.host_seconds(host),
        "base_detect_seconds": base.host_seconds(host) - sum(t.seconds for t in checks),
        "base_check_seconds": sum(t.seconds for t in checks),
    }


def _derive_article_row(row: dict[str, Any]) -> None:
    row["request_ratio"] = ratio(row["base_requests"], row["ours_requests"])
    row["http_ratio"] = ratio(row["base_http"], row["ours_http"])
    row["article_request_ratio"] = ratio(row["base_check_requests"], row["ours_article_requests"])
    row["time_ratio"] = ratio(row["base_seconds"], row["ours_seconds"])


# --- the controller's CPU, piece by piece ------------------------------------------------------------------


def part_micro(state: Path) -> dict[str, Any]:
    import micro

    from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi

    requests = [article_runner.ArticleRequest(TOP / "roles" / a.lower() / "files" / f"{a.lower()}.yml",
                                              generate.VARIABLES.get(a, {}), a) for a in ARTICLES]
    with running_fleet([HostSpec("micro", "2008-sp2-x64")], state_dir=state / "micro") as fleet:
        ep = fleet.hosts["micro"]
        client = micro._client(ep)
        try:
            os_facts = wmi.os_facts(client)
        finally:
            client.close()
        print("  micro: CPU of the WinRM library in-process", flush=True)
        return {"profile": "2008-sp2-x64", **micro.measure(ep, requests, os_facts)}


# --- part 3: NT 4.0 over SMB ----------------------------------------------------------------------------

SMB_PROFILE = "nt4-tse-sp6-x86"
SMB_HOSTS = {"nt4": {}, "nt4-fixed": {"installed": ["Q253729"]}}  # KB253729 noncompliant, compliant
# tests/integration/test_request_budget_smb.py: at most 18 SMB requests after the logon (Negotiate, SessionSetup)
# for the kb_article audit of KB253729 with the OS facts known.
SMB_ARTICLE_BUDGET = 18 + 2


def smb_round_trips(counters: dict[str, Any]) -> dict[str, int]:
    """winsim's NT 4.0 face counts every SMB request as ``SMB:<Command>`` (one round trip each) and every RPC
    call those requests carry as ``RPC:<pipe>.<Call>``; session setups are also ``auth_requests``."""
    by_action = counters.get("by_action", {})
    return {"smb": sum(n for a, n in by_action.items() if a.startswith("SMB:")),
            "rpc": sum(n for a, n in by_action.items() if a.startswith("RPC:")),
            "logons": int(counters.get("auth_requests", 0))}


def part_smb(runner: Runner, reps: int, state: Path, problems: list[str]) -> dict[str, Any]:
    specs = [HostSpec(name, SMB_PROFILE, dict(overrides)) for name, overrides in SMB_HOSTS.items()]
    hosts = list(SMB_HOSTS)
    samples: list[dict[str, Any]] = []
    with running_fleet(specs, state_dir=state / "smb") as fleet:
        inventory = write_inventory(fleet, state / "smb.yml", hosts, None)
        for rep in range(reps):
            print(f"  smb: KB253729 on NT 4.0, repetition {rep + 1}/{reps}", flush=True)
            facts = runner.run(FACTS_ONLY, inventory, {}, fleet, hosts)
            audit = runner.run(AUDIT, inventory, ours_vars(["KB253729"]), fleet, hosts)
            for run in (facts, audit):
                problems.extend(f"{run.playbook} (NT 4.0, SMB): {p}" for p in run.problems())
            for host in hosts:
                whole, alone = smb_round_trips(audit.counters[host]), smb_round_trips(facts.counters[host])
                kb_task = [t for t in audit.host_tasks(host) if t.action.endswith("kb_article")]
                samples.append({
                    "rep": rep, "host": host,
                    "verdict": (kb_task[0].verdicts or {}).get("KB253729") if kb_task else None,
                    "audit_smb": whole["smb"], "facts_smb": alone["smb"], "article_smb": whole["smb"] - alone["smb"],
                    "audit_rpc": whole["rpc"], "facts_rpc": alone["rpc"], "article_rpc": whole["rpc"] - alone["rpc"],
                    "audit_logons": whole["logons"], "article_requests": kb_task[0].requests if kb_task else None,
                    "audit_seconds": audit.host_seconds(host)})
    fields = ("audit_smb", "facts_smb", "article_smb", "audit_rpc", "facts_rpc", "article_rpc", "audit_logons",
              "article_requests", "audit_seconds")
    rows = stats.medians_by(samples, ("host",), fields)
    for row in rows:
        row["verdict"] = next((s["verdict"] for s in samples if s["host"] == row["host"]), None)
    return {"profile": SMB_PROFILE, "samples": samples, "rows": rows}


def smb_table(rows: list[dict[str, Any]]) -> str:
    headers = ("host", "KB253729", "SMB req (facts+article)", "RPC calls (facts+article)", "logons",
               "kb_article transport requests", "host s")
    return table(headers, [(r["host"], r["verdict"] or "-", _split(r["audit_smb"], r["facts_smb"], r["article_smb"]),
                            _split(r["audit_rpc"], r["facts_rpc"], r["article_rpc"]), r["audit_logons"],
                            r["article_requests"], r["audit_seconds"]) for r in rows])


# --- part 2: fleet scale --------------------------------------------------------------------------------


def fleet_profiles() -> list[str]:
    from winsim.fleet import default_profiles

    return [p for p in default_profiles() if p not in NO_WINRM_PROFILES]


def part_fleet(runner: Runner, reps: int, sizes: Sequence[int], baseline_size: int, state: Path,
               problems: list[str]) -> dict[str, Any]:
    profiles = fleet_profiles()
    largest = max(sizes)
    specs = [HostSpec(f"win{i + 1:04d}", profiles[i % len(profiles)], json.loads(json.dumps(POWERSHELL)))
             for i in range(largest)]
    profile_of = {s.name: s.profile for s in specs}
    samples: list[dict[str, Any]] = []
    per_profile: list[dict[str, Any]] = []
    with running_fleet(specs, state_dir=state / "fleet") as fleet:
        names = [s.name for s in specs]
        plan = [(n, kind) for n in sizes for kind in ("ours", "noop")]
        plan += [(baseline_size, "baseline")] if baseline_size else []
        inventories = {n: write_inventory(fleet, state / f"fleet-{n}.yml", names[:n], None)
                       for n in {p[0] for p in plan}}
        for rep in range(reps):
            for size, kind in plan:
                print(f"  fleet: {kind} x {size} hosts, repetition {rep + 1}/{reps}", flush=True)
                sample, run = _fleet_sample(runner, fleet, inventories[size], names[:size], kind, rep, problems)
                samples.append(sample)
                if kind == "ours" and size == min(sizes):
                    per_profile += _profile_samples(run, names[:size], profile_of, rep)
    rows = stats.medians_by(samples, ("kind", "hosts"), ("wall", "cpu", "wall_per_host", "cpu_per_host",
                                                        "requests_per_host", "http_per_host"))
    profile_rows = stats.medians_by(per_profile, ("hosts", "profile"), ("max_requests", "max_http", "max_connections"))
    return {"profiles": profiles, "samples": samples, "rows": rows, "per_profile": per_profile,
            "profile_rows": profile_rows}


def _profile_samples(run: Run, hosts: Sequence[str], profile_of: dict[str, str], rep: int) -> list[dict[str, Any]]:
    """The whole-host audit's cost per WinRM profile: the most any host of that profile needed (WS-Man
    requests, HTTP requests with authentication, and connections: an NTLM handshake over HTTP is one auth
    request, the challenge, since transport/winrm/ntlm_http.py)."""
    out = []
    for profile in sorted({profile_of[h] for h in hosts}):
        mine = [h for h in hosts if profile_of[h] == profile]
        out.append({"hosts": len(hosts), "profile": profile, "rep": rep,
                    "max_requests": max(run.requests(h) for h in mine),
                    "max_http": max(run.http_requests(h) for h in mine),
                    "max_connections": max(int(run.counters.get(h, {}).get("auth_requests", 0)) for h in mine)})
    return out


def _fleet_sample(runner: Runner, fleet: Fleet, inventory: Path, hosts: list[str], kind: str, rep: int,
                  problems: list[str]) -> tuple[dict[str, Any], Run]:
    playbook, extra = {"ours": (AUDIT, ours_vars(ARTICLES)), "noop": (NOOP, {}),
                       "baseline": (BASELINE, baseline_vars(ARTICLES))}[kind]
    counted = hosts if kind != "noop" else []
    run = runner.run(playbook, inventory, extra, fleet, counted)
    problems.extend(f"{run.playbook} x {len(hosts)}: {p}" for p in run.problems())
    requests = sum(run.requests(h) for h in counted)
    http = sum(run.http_requests(h) for h in counted)
    n = len(hosts)
    return {"kind": kind, "hosts": n, "rep": rep, "rc": run.rc, "wall": run.wall, "cpu": run.cpu,
            "wall_per_host": run.wall / n, "cpu_per_host": run.cpu / n,
            "requests_per_host": requests / n if counted else None,
            "http_per_host": http / n if counted else None}, run


# --- targets and tables -----------------------------------------------------------------------------------


# 2026-11-22's figure (docs/performance.md, before issue 13): the raw baseline runs in the same benchmark, so
# its ratio to ours cancels the machine's load; "wall time no worse than before" is this ratio not falling.
WALL_RATIO_BEFORE = 5.09


def targets(articles: dict[str, Any] | None, fleet: dict[str, Any] | None,
            smb: dict[str, Any] | None = None) -> list[Target]:
    out: list[Target] = []
    if articles:
        slow = [r for r in articles["rows"] if r["applies"] and r["latency_ms"] > 0]
        out.append(Target("min wall-time ratio baseline/ours (host time, applicable, 25 ms), vs 5.09 before",
                          min((r["time_ratio"] for r in slow if r["time_ratio"]), default=None),
                          WALL_RATIO_BEFORE, "at_least"))
    if fleet and fleet.get("profile_rows"):
        rows = fleet["profile_rows"]
        n = rows[0]["hosts"]
        out.append(Target(f"max WS-Man requests per host, whole audit, worst WinRM profile, fleet of {n}",
                          max(r["max_requests"] for r in rows), 8, "at_most"))
        out.append(Target(f"max HTTP requests per host (with authentication), worst WinRM profile, fleet of {n}",
                          max(r["max_http"] for r in rows), 14, "at_most"))
    if fleet:
        by_kind = {(r["kind"], r["hosts"]): r for r in fleet["rows"]}
        base = [k for k in by_kind if k[0] == "baseline"]
        if base and ("ours", base[0][1]) in by_kind:
            b, o = by_kind[base[0]], by_kind[("ours", base[0][1])]
            out.append(Target(f"HTTP request ratio baseline/ours, four articles, fleet of {base[0][1]} (0 ms)",
                              ratio(b["http_per_host"], o["http_per_host"]), 6, "at_least"))
    out.append(smb_target(smb))
    out += targets_before_issue_13(articles, fleet)
    return out


def smb_target(smb: dict[str, Any] | None) -> Target:
    """The NT 4.0 SMB transport's own row: the SMB requests (round trips) of the kb_article task of a
    KB253729 audit after the facts task, logon and logoff included, the most of the two hosts."""
    name = "round trips per KB253729 audit, NT 4.0 over SMB (kb_article task, with its logon)"
    if not smb or not smb["rows"]:
        return Target(name, None, SMB_ARTICLE_BUDGET, "at_most", note="not measured in this run (--part smb)")
    return Target(name, max(r["article_smb"] for r in smb["rows"]), SMB_ARTICLE_BUDGET, "at_most")


def targets_before_issue_13(articles: dict[str, Any] | None, fleet: dict[str, Any] | None) -> list[Target]:
    """The targets of the first benchmark (issue 4), still reported."""
    out: list[Target] = []
    if articles:
        applicable = [r for r in articles["rows"] if r["applies"]]
        slow = [r for r in applicable if r["latency_ms"] > 0]
        out.append(Target("max WS-Man requests of the kb_article task per applicable host-article",
                          max((r["ours_article_requests"] for r in applicable), default=None), 5, "at_most"))
        out.append(Target("min request ratio baseline/ours (whole audit, applicable, 25 ms)",
                          min((r["request_ratio"] for r in slow if r["request_ratio"]), default=None), 8, "at_least"))
        out.append(Target("min request ratio baseline/ours (article checks only, applicable, 25 ms)",
                          min((r["article_request_ratio"] for r in slow if r["article_request_ratio"]), default=None),
                          8, "at_least"))
        out.append(Target("min HTTP request ratio baseline/ours (with authentication, applicable, 25 ms)",
                          min((r["http_ratio"] for r in slow if r["http_ratio"]), default=None), 8, "at_least"))
        out.append(Target("min wall-time ratio baseline/ours (host time, applicable, 25 ms)",
                          min((r["time_ratio"] for r in slow if r["time_ratio"]), default=None), 3, "at_least"))
    if fleet:
        rows = {(r["kind"], r["hosts"]): r for r in fleet["rows"]}
        sizes = sorted({h for k, h in rows if k == "ours"})
        for n in sizes:
            if ("noop", n) in rows:
                out.append(Target(f"controller CPU per host, ours/no-op floor, {n} hosts",
                                  ratio(rows[("ours", n)]["cpu_per_host"], rows[("noop", n)]["cpu_per_host"]),
                                  2, "at_most"))
        base = [k for k in rows if k[0] == "baseline"]
        if base and ("ours", base[0][1]) in rows:
            b, o = rows[base[0]], rows[("ours", base[0][1])]
            out.append(Target(f"request ratio baseline/ours, four articles, fleet of {base[0][1]} (0 ms)",
                              ratio(b["requests_per_host"], o["requests_per_host"]), 8, "at_least"))
            out.append(Target(f"wall-time ratio baseline/ours, four articles, fleet of {base[0][1]} (0 ms)",
                              ratio(b["wall"], o["wall"]), 3, "at_least"))
        if len(sizes) > 1:
            small, large = rows[("ours", sizes[0])], rows[("ours", sizes[-1])]
            for metric in ("wall_per_host", "cpu_per_host"):
                out.append(Target(f"{metric.replace('_', ' ')} at {sizes[-1]} / at {sizes[0]} hosts",
                                  ratio(large[metric], small[metric]), 1.2, "at_most"))
    return out


def article_table(rows: list[dict[str, Any]]) -> str:
    headers = ("lat ms", "host", "article", "verdict/applies", "ours req (facts+art)", "base req (detect+chk)",
               "req x", "ours HTTP", "base HTTP", "ours s", "base s", "time x")
    body = []
    for r in rows:
        body.append((
            r["latency_ms"], r["profile"], r["article"], "yes" if r["applies"] else "n/a",
            _split(r["ours_requests"], r["ours_facts_requests"], r["ours_article_requests"]),
            _split(r["base_requests"], r["base_detect_requests"], r["base_check_requests"]),
            _times(r["request_ratio"]), r["ours_http"], r["base_http"], r["ours_seconds"], r["base_seconds"],
            _times(r["time_ratio"]),
        ))
    return table(headers, body)


def fleet_table(rows: list[dict[str, Any]]) -> str:
    headers = ("play", "hosts", "wall s", "CPU s", "wall ms/host", "CPU ms/host", "WS-Man req/host", "HTTP req/host")
    body = [(r["kind"], r["hosts"], r["wall"], r["cpu"], _ms(r["wall_per_host"]), _ms(r["cpu_per_host"]),
             r["requests_per_host"], r["http_per_host"]) for r in rows]
    return table(headers, body, digits=1)


def target_table(found: list[Target]) -> str:
    def limit(t: Target) -> str:
        return "-" if t.note and t.value is None else f"{'<=' if t.kind == 'at_most' else '>='} {stats.fmt(t.limit)}"

    return table(("target", "value", "limit", "met"),
                 [(t.name, t.note if t.value is None and t.note else t.value, limit(t), t.met) for t in found])


def profile_table(rows: list[dict[str, Any]]) -> str:
    headers = ("profile", "WS-Man req (max/host)", "HTTP req (max/host)", "connections (max/host)")
    return table(headers, [(r["profile"], r["max_requests"], r["max_http"], r["max_connections"]) for r in rows],
                 digits=1)


def _split(total: float | None, first: float | None, second: float | None) -> str:
    return f"{stats.fmt(total)} ({stats.fmt(first)}+{stats.fmt(second)})"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


# --- main -----------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import ansible

    return {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "ansible_core": ansible.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions, fleet of 50 hosts only")
    parser.add_argument("--part", choices=("articles", "micro", "fleet", "smb", "uploads", "all"), default="all")
    parser.add_argument("--upload-hosts", type=int, default=50, help="fleet size of the uploads part (default 50)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, --quick 2)")
    parser.add_argument("--sizes", help="fleet sizes, comma-separated (default 50,200,500; --quick 50)")
    parser.add_argument("--baseline-size", type=int, default=50, help="fleet size for the baseline (0: skip)")
    parser.add_argument("--forks", type=int, default=25, help="Ansible forks for every run (default 25)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="print the tables of an existing results file again")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.out)
    reps = args.reps or (2 if args.quick else 3)
    sizes = [int(s) for s in (args.sizes or ("50" if args.quick else "50,200,500")).split(",")]

    if generate.main(["--check"]) != 0:
        return 1
    # A directory of its own: a second run (or --part micro) must not pull a running one's fleet away.
    out = OUT / f"run-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    (out / "logs").mkdir(parents=True)
    runner = Runner(args.forks, out / "logs")
    info = machine()
    print(f"kbfix.windows benchmark: {info['cores']} cores, Python {info['python']}, ansible-core "
          f"{info['ansible_core']}, forks {args.forks}, {reps} repetitions", flush=True)
    problems: list[str] = []
    started = time.monotonic()
    articles = part_articles(runner, reps, out, problems) if args.part in ("articles", "all") else None
    cpu_parts = part_micro(out) if args.part in ("micro", "all") else None
    fleet = None
    if args.part in ("fleet", "all"):
        fleet = part_fleet(runner, reps, sizes, args.baseline_size, out, problems)
    smb = part_smb(runner, reps, out, problems) if args.part in ("smb", "all") else None
    loads = uploads.part_uploads(out, args.upload_hosts) if args.part in ("uploads", "all") else None
    found = targets(articles, fleet, smb) + uploads.upload_targets(loads)
    result = {
        "machine": info,
        "config": {"reps": reps, "forks": args.forks, "sizes": sizes, "baseline_size": args.baseline_size,
                   "latencies_ms": list(LATENCIES_MS), "articles": list(ARTICLES), "variables": generate.VARIABLES,
                   "playbook_runs": runner.count, "seconds": round(time.monotonic() - started, 1)},
        "articles": articles, "micro": cpu_parts, "fleet": fleet, "smb": smb, "uploads": loads,
        "targets": [t.to_dict() for t in found],
        "problems": problems,
    }
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(render(result, found))
    return 1 if problems else 0


def report(path: Path) -> int:
    """Recompute the targets of a results file (the rows are kept) and print its tables again."""
    result = json.loads(path.read_text(encoding="utf-8"))
    found = targets(result["articles"], result["fleet"], result.get("smb")) + uploads.upload_targets(
        result.get("uploads"))
    result["targets"] = [t.to_dict() for t in found]
    path.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(render(result, found))
    return 0


def render(result: dict[str, Any], found: list[Target]) -> str:
    parts = [f"Machine: {result['machine']['cores']} cores; {result['config']['reps']} repetitions, medians; "
             f"forks {result['config']['forks']}; {result['config']['playbook_runs']} ansible-playbook runs in "
             f"{result['config']['seconds']} s"]
    if result["articles"]:
        parts += ["", "Per host and article (requests: WS-Man requests counted by winsim; HTTP adds the "
                  "authentication round trips; seconds: the host's own task time)", "",
                  article_table(result["articles"]["rows"])]
    if result["fleet"]:
        parts += ["", "Fleet: the four articles (audit.yml), the no-op floor and the baseline", "",
                  fleet_table(result["fleet"]["rows"])]
        if result["fleet"].get("profile_rows"):
            size = result["fleet"]["profile_rows"][0]["hosts"]
            parts += ["", f"Whole-host audit per WinRM profile (ours, fleet of {size}, 0 ms; connections = "
                      "authentication requests, one per NTLM connection)", "",
                      profile_table(result["fleet"]["profile_rows"])]
    if result.get("smb"):
        parts += ["", "NT 4.0 over SMB: KB253729 (audit.yml = facts + kb_article; SMB requests are round trips, "
                  "RPC calls ride in them; from winsim's NT 4.0 face)", "", smb_table(result["smb"]["rows"])]
    if result.get("micro"):
        m = result["micro"]
        parts += ["", "Controller CPU of the WinRM library alone (in-process, one 2008 SP2 host)", "",
                  table(("new connection + 1 request", "1 request (authenticated)", "audit of the 4 articles",
                         "its WS-Man requests", "its auth requests", "4 specs parsed", "4 specs cached"),
                        [(f"{m['new_connection_ms']:.1f} ms", f"{m['request_ms']:.1f} ms", f"{m['audit_4_ms']:.1f} ms",
                          m["audit_4_requests"], m["audit_4_auth_requests"],
                          f"{m.get('specs_4_cold_ms', 0):.1f} ms", f"{m.get('specs_4_cached_ms', 0):.1f} ms")])]
    if result.get("uploads"):
        parts += ["", uploads.render(result["uploads"])]
    parts += ["", "Targets", "", target_table(found)]
    if result["problems"]:
        parts += ["", f"PROBLEMS ({len(result['problems'])}): these runs did not do what they should",
                  *result["problems"][:20]]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
