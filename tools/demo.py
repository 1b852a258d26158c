#!/usr/bin/env python3
# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end-to-end demo (``make demo``): a simulated fleet audited, remediated and audited again.

    .venv/bin/python tools/demo.py                     # the whole fleet, ansible output streamed
    .venv/bin/python tools/demo.py --quiet --profiles xp-sp1-x86,nt4-tse-sp6-x86

Starts winsim hosts of every seed OS profile (NT 4.0 has no WinRM and is reached over SMB, XP SP2 and Vista SP1
already contain their fixes), builds the hotfix packages with winsim's package builder, writes an inventory
with the demo's choices for the articles' variables, and runs ONE ansible-playbook of three plays
(kbfix.windows.audit, kbfix.windows.remediate, kbfix.windows.audit) with the compliance report callback, so
the report holds each cell's state before and after. Prints a host x article table of before -> after and
writes kbfix-report.{json,xml,html} to report/. The fleet is stopped on every exit, Ctrl-C included.

A fifth article is added the way a user adds one: imported from its text with kbfix.windows.article_import into
the demo's scratch directory (its report printed), and found by the fleet playbooks through kbfix_article_paths.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

TOP = Path(__file__).resolve().parent.parent
WINSIM_PATH = TOP / "tests" / "winsim"
COLLECTIONS_PATH = TOP / ".cache" / "collections"
# `make demo` puts winsim on PYTHONPATH; `.venv/bin/python tools/demo.py` on its own must work the same way.
if str(WINSIM_PATH) not in sys.path:
    sys.path.insert(0, str(WINSIM_PATH))

from winsim import packages, signing  # noqa: E402  (needs the sys.path above)
from winsim.testing import HostSpec, running_fleet  # noqa: E402

# Exit codes of ansible-playbook that still mean "the run happened": 2 = a host failed, 4 = a host was
# unreachable.
PLAYBOOK_RAN = (0, 2, 4)
STATUS_ORDER = ("compliant", "noncompliant", "reboot_pending", "not_applicable", "unknown", "failed", "unreachable")
LABELS = {"compliant": "ok", "noncompliant": "FAIL", "reboot_pending": "REBOOT", "not_applicable": "n/a",
          "unknown": "?", "failed": "ERROR", "unreachable": "unreach."}


@dataclass(frozen=True)
class DemoHost:
    name: str
    profile: str
    note: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)


# One host per seed OS profile, plus an XP SP1 host whose hotfix an administrator installed by hand
# without setting ReconnectableServers: the article is not done until both are.
DEMO_FLEET: tuple[DemoHost, ...] = (
    DemoHost("tse01", "nt4-tse-sp6-x86", "NT 4.0 TSE: over SMB (no WinRM)"),
    DemoHost("xp-pc01", "xp-sp1-x86"),
    DemoHost("xp-pc02", "xp-sp1-x86", "hotfix installed by hand", {"installed": ["KB828753"]}),
    DemoHost("xp-pc03", "xp-sp2-x86", "SP2 contains KB828753"),
    DemoHost("dfs2003-32", "2003r2-sp2-x86"),
    DemoHost("dfs2003-64", "2003r2-sp2-x64"),
    DemoHost("dfs2008-a", "2008-sp1-x86"),
    DemoHost("dfs2008-b", "2008-sp1-x64"),
    DemoHost("dfs2008-c", "2008-sp2-x86"),
    DemoHost("dfs2008-d", "2008-sp2-x64"),
    DemoHost("dfs2008r2", "2008r2-rtm-x64"),
    DemoHost("vista-fs1", "vista-rtm-x86"),
    DemoHost("vista-fs2", "vista-rtm-x64"),
    DemoHost("vista-pc1", "vista-sp1-x86", "SP1 contains KB938475"),
    DemoHost("vista-pc2", "vista-sp1-x64", "SP1 contains KB938475"),
)

# The choices the articles leave to the site, as group_vars of the demo inventory: every name the file
# server is reached by (KB828753), and a credit limit for the Vista file servers (KB938475 recommends none).
DEMO_GROUP_VARS: dict[str, Any] = {
    "kb828753_reconnectable_servers": ["fs01", "fs01.corp.example.com", "192.0.2.10"],
    "kb828753_reconnect_timeout": 120,
    "kb938475_asynchronous_credits": 256,
    "kbfix_restart": "if_required",
}

# The user's article: its text (copied from a browser), and what its package installs, for winsim to build it
# (a package the demo describes; winsim's catalogue knows only the collection's articles).
IMPORTED_ARTICLE = TOP / "tests" / "unit" / "importer" / "fixtures" / "kb900002.txt"
IMPORTED_PACKAGE = packages.Package(
    "WindowsXP-KB900002-x86-ENU.exe", "KB900002", "update", "x86", "NetBT stops answering name queries",
    (packages.Target("5.1.2600", (1,), (packages.FileFix(
        "%SystemRoot%\\system32\\drivers\\netbt.sys", "5.1.2600.1290 (xpsp2.031001-1200)", 162816,
        "2003-10-01T12:00:00+00:00"),), fixed_in_sp=2, product_types=(1,)),),
    restart=False, record_product="Windows XP", record_sp="SP2", build_date="2003-10-01")

DEMO_PLAYBOOK = """\
---
- name: Audit before
  ansible.builtin.import_playbook: kbfix.windows.audit
- name: Remediate
  ansible.builtin.import_playbook: kbfix.windows.remediate
- name: Audit after
  ansible.builtin.import_playbook: kbfix.windows.audit
"""


@dataclass
class Cell:
    before: str | None  # status before the run; None when the pair was seen once (unreachable hosts)
    after: str
    reason: str = ""  # why the final status, from the last verdict or the problem (unreachable, failed)


@dataclass
class Outcome:
    rc: int
    report_dir: Path
    hosts: dict[str, dict[str, Cell]]  # host -> article -> cell
    articles: list[str]
    seconds: float

    def cells(self) -> list[Cell]:
        return [cell for cells in self.hosts.values() for cell in cells.values()]

    def counts_before(self) -> Counter[str]:
        return Counter(cell.before or cell.after for cell in self.cells())

    def counts_after(self) -> Counter[str]:
        return Counter(cell.after for cell in self.cells())


# --- the fleet and its inventory ------------------------------------------------------------------------


def select_hosts(profiles: Sequence[str] | None) -> list[DemoHost]:
    if not profiles:
        return list(DEMO_FLEET)
    chosen = [h for h in DEMO_FLEET if h.profile in profiles]
    unknown = sorted(set(profiles) - {h.profile for h in DEMO_FLEET})
    if unknown:
        raise SystemExit(f"unknown profile(s) {', '.join(unknown)}; the demo has "
                         f"{', '.join(sorted({h.profile for h in DEMO_FLEET}))}")
    return chosen


def build_packages(directory: Path) -> list[Path]:
    """Every package of winsim's catalogue and the imported article's, as the real files a package share would
    hold, at their real size (0.5 to 3 MB): the remediation uploads what a real one would."""
    return [*(packages.write_package(name, directory, packages.real_size(name)) for name in packages.package_names()),
            packages.write_package(IMPORTED_PACKAGE, directory, packages.real_size(IMPORTED_PACKAGE))]


def import_article(workdir: Path, out: TextIO) -> Path:
    """``ansible localhost -m kbfix.windows.article_import``: the article's text in, a role in ``articles/``."""
    articles = workdir / "articles"
    env = {k: v for k, v in ansible_env(workdir / "report", workdir).items()
           if k not in ("ANSIBLE_CALLBACKS_ENABLED", "KBFIX_REPORT_DIR")}
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "kbfix.windows.article_import",
               "-a", f"src={IMPORTED_ARTICLE} dest={articles}", "-o"]
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0 or "=>" not in proc.stdout:
        raise RuntimeError(f"article_import failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.split("=>", 1)[1])
    report = result["report"]
    out.write(f"Imported {result['spec']['article']['id']} from {IMPORTED_ARTICLE.name} ({report['shape']}) into "
              f"{result['path']}: {report['file_rows']} file rows, {len(report['inferred'])} values inferred, "
              f"{len(report['unplaced'])} not placed, to review: "
              f"{', '.join(r['field'] for r in report['review']) or 'nothing'}\n")
    return articles


def write_inventory_vars(inventory: Path, package_dir: Path, articles: Path) -> Path:
    group_vars = inventory.parent / "group_vars" / "all.yml"
    group_vars.parent.mkdir(parents=True, exist_ok=True)
    # The demo's packages are signed by winsim's test CA: the demo trusts it, explicitly, besides Microsoft's roots.
    data = {**DEMO_GROUP_VARS, "kbfix_package_source": str(package_dir), "kbfix_article_paths": [str(articles)],
            "kbfix_package_trust_ca": str(signing.signing_ca().ca_file)}
    group_vars.write_text("---\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return group_vars


# --- ansible-playbook -----------------------------------------------------------------------------------


def ansible_env(report_dir: Path, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_PATH))
    env.setdefault("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
    env.setdefault("ANSIBLE_HOME", str(TOP / ".cache" / "ansible-home"))
    env.update({
        "ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report",
        "KBFIX_REPORT_DIR": str(report_dir),
        "KBFIX_REPORT_FORMATS": "json,junit,html",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
    })
    return env


def run_playbook(workdir: Path, inventory: Path, report_dir: Path, forks: int, quiet: bool) -> int:
    playbook = workdir / "demo.yml"
    playbook.write_text(DEMO_PLAYBOOK, encoding="utf-8")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory.parent),
               "-f", str(forks), str(playbook)]
    log = (workdir / "ansible.log").open("w", encoding="utf-8") if quiet else None
    process: subprocess.Popen[bytes] | None = None
    try:
        with INTERRUPTS.held():
            process = subprocess.Popen(command, cwd=workdir, env=ansible_env(report_dir, workdir),
                                       stdout=log, stderr=subprocess.STDOUT if quiet else None)
        return process.wait()
    except BaseException:
        # Ctrl-C in a terminal reaches ansible-playbook too (same process group); a SIGTERM sent to the
        # demo alone does not.
        if process is not None:
            process.terminate()
            process.wait(60)
        raise
    finally:
        if log is not None:
            log.close()


# --- the report -----------------------------------------------------------------------------------------


def read_report(report_dir: Path) -> tuple[dict[str, dict[str, Cell]], list[str]]:
    report = json.loads((report_dir / "kbfix-report.json").read_text(encoding="utf-8"))
    articles = [a["article"] for a in report["articles"]]
    hosts: dict[str, dict[str, Cell]] = {}
    for host in report["hosts"]:
        hosts[host["name"]] = {article: _cell(cell) for article, cell in host["articles"].items()}
    return hosts, articles


def _cell(data: dict[str, Any]) -> Cell:
    reason = (data.get("problem") or {}).get("message") or (data.get("after") or {}).get("reason") or ""
    return Cell((data.get("before") or {}).get("status"), data["status"], reason)


def render(outcome: Outcome, fleet: Sequence[DemoHost], out: TextIO) -> None:
    by_name = {h.name: h for h in fleet}
    name_width = max(len(f"{h.name} ({h.profile})") for h in fleet) + 2
    col = max(15, *(len(a) + 2 for a in outcome.articles))
    out.write("\nBefore -> after, per host and article "
              "(ok compliant, FAIL noncompliant, REBOOT reboot pending, n/a not applicable)\n\n")
    out.write("host".ljust(name_width) + "".join(a.ljust(col) for a in outcome.articles) + "note\n")
    out.write("-" * (name_width + col * len(outcome.articles) + 24) + "\n")
    # The fleet's order (NT 4.0, XP, 2003 R2, 2008, Vista) reads better than the report's alphabetical one.
    order = [h.name for h in fleet if h.name in outcome.hosts] + sorted(set(outcome.hosts) - set(by_name))
    for name in order:
        host, cells = by_name.get(name), outcome.hosts[name]
        label = f"{name} ({host.profile})" if host else name
        row = "".join(_cell_text(cells.get(a)).ljust(col) for a in outcome.articles)
        out.write(label.ljust(name_width) + row + (host.note if host else "") + "\n")
    _render_attention(outcome, order, out)
    before, after = outcome.counts_before(), outcome.counts_after()
    out.write("\n" + "status".ljust(16) + "before".rjust(8) + "after".rjust(8) + "\n")
    for status in STATUS_ORDER:
        if before[status] or after[status]:
            out.write(status.ljust(16) + str(before[status]).rjust(8) + str(after[status]).rjust(8) + "\n")
    out.write(f"\n{len(outcome.hosts)} hosts x {len(outcome.articles)} articles in {outcome.seconds:.0f} s; "
              f"ansible-playbook exit code {outcome.rc}"
              + (" (a host was unreachable)" if outcome.rc == 4 else "") + "\n")
    out.write(f"Report: {outcome.report_dir / 'kbfix-report.html'} (also .json and .xml)\n")


def _render_attention(outcome: Outcome, order: Sequence[str], out: TextIO, width: int = 160) -> None:
    """Why each cell that is neither compliant nor not applicable ended as it did."""
    lines = []
    for name in order:
        open_cells = {a: c for a, c in sorted(outcome.hosts[name].items())
                      if c.after not in ("compliant", "not_applicable")}
        if open_cells and {c.after for c in open_cells.values()} == {"unreachable"}:
            # Unreachable is a property of the host: one line, not one per article.
            lines.append(f"  {name}: unreachable: {next(iter(open_cells.values())).reason}")
            continue
        lines += [f"  {name} {article}: {cell.after}: {cell.reason}" for article, cell in open_cells.items()]
    if lines:
        out.write("\nStill needing attention after the run:\n")
        out.write("".join((line if len(line) <= width else line[:width - 3] + "...") + "\n" for line in lines))


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.before is None or cell.before == cell.after:
        return LABELS.get(cell.after, cell.after)
    return f"{LABELS.get(cell.before, cell.before)} -> {LABELS.get(cell.after, cell.after)}"


# --- main -----------------------------------------------------------------------------------------------


class Interrupts:
    """Ctrl-C and SIGTERM end the demo through the ``finally`` blocks that stop the fleet and ansible-playbook.

    While a child process is being started the signal is held back: raised inside ``subprocess.Popen``, it
    would leave a started child that nobody knows about, still running after the demo has gone. A second
    signal while the demo is already stopping is ignored, so it cannot cut the cleanup short.
    """

    def __init__(self) -> None:
        self.pending = False  # a signal arrived
        self.raised = False  # KeyboardInterrupt was raised for it
        self.holding = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True
        if not self.holding:
            self._raise()

    def _raise(self) -> None:
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self._raise()


INTERRUPTS = Interrupts()


def run_demo(fleet: Sequence[DemoHost], report_dir: Path, *, quiet: bool = False, out: TextIO = sys.stdout,
             keep: Path | None = None) -> Outcome:
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kbfix-demo-")))
        package_dir = workdir / "packages"
        out.write(f"Building {len(build_packages(package_dir))} hotfix packages in {package_dir}\n")
        articles = import_article(workdir, out)
        out.write(f"Starting {len(fleet)} simulated Windows hosts ...\n")
        out.flush()
        specs = [HostSpec(h.name, h.profile, dict(h.overrides)) for h in fleet]
        with INTERRUPTS.held():  # running_fleet starts the fleet process: see Interrupts
            running = stack.enter_context(running_fleet(specs, state_dir=workdir / "fleet"))
        inventory = running.inventory(workdir / "inventory" / "hosts.yml")
        write_inventory_vars(inventory, package_dir, articles)
        out.write("Running ansible-playbook: kbfix.windows.audit -> kbfix.windows.remediate -> kbfix.windows.audit\n")
        out.flush()
        rc = run_playbook(workdir, inventory, report_dir.resolve(), forks=len(fleet), quiet=quiet)
        if rc not in PLAYBOOK_RAN or not (report_dir / "kbfix-report.json").exists():
            log = workdir / "ansible.log"
            detail = log.read_text(encoding="utf-8")[-4000:] if log.exists() else "(see the output above)"
            raise RuntimeError(f"ansible-playbook failed with exit code {rc}:\n{detail}")
    hosts, articles = read_report(report_dir)
    return Outcome(rc, report_dir, hosts, articles, time.monotonic() - started)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profiles", default="", help="comma-separated winsim profiles (default: the whole fleet)")
    parser.add_argument("--report-dir", type=Path, default=TOP / "report", help="where the report files go")
    parser.add_argument("--quiet", action="store_true", help="keep ansible-playbook's output in a log file")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (fleet state, inventory)")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    fleet = select_hosts([p for p in args.profiles.split(",") if p])
    args.report_dir.mkdir(parents=True, exist_ok=True)
    for stale in args.report_dir.glob("kbfix-report.*"):
        stale.unlink()  # a failed run must not leave the previous run's report looking current
    try:
        with INTERRUPTS.installed():
            outcome = run_demo(fleet, args.report_dir, quiet=args.quiet, out=out, keep=args.keep)
    except KeyboardInterrupt:
        out.write("\nInterrupted: the simulated fleet has been stopped.\n")
        return 130
    except RuntimeError as exc:  # the fleet did not start, or ansible-playbook did not run through
        out.write(f"\nThe demo failed: {exc}\n")
        return 1
    render(outcome, fleet, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
