#!/usr/bin/env python3
# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge the four seed articles against the bundled host snapshots, without any host.

    tools/devenv python tools/offline_demo.py            # verdict table, counts, failing checks, plans
    tools/devenv python tools/offline_demo.py --json     # the verdicts as JSON

Each host goes through the same steps as a real audit: the article's fact request for the host's OS,
answered from the snapshot (which plays the transport), then evaluate(). Output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import (
    evaluate,
    fact_request,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import VERDICT_STATUSES, Verdict
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.snapshot import (
    HostSnapshot,
    load_host_snapshot,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec, load_spec

TOP = Path(__file__).resolve().parent.parent
SPEC_GLOB = "roles/kb*/files/kb*.yml"
SNAPSHOT_DIR = TOP / "tests" / "unit" / "engine" / "snapshots"

# The role variables an operator would give. KB828753 and KB938475 need a choice that the article
# leaves to the site; these are the demo's.
DEMO_VARIABLES: dict[str, dict[str, Any]] = {
    "KB828753": {"reconnectable_servers": ["fs01", "fs01.corp.example.com", "192.0.2.10"], "reconnect_timeout": 120},
    "KB938475": {"asynchronous_credits": 256},
}

_SHORT = {"compliant": "ok", "noncompliant": "FAIL", "not_applicable": "n/a", "reboot_pending": "REBOOT",
          "unknown": "?"}


def load_specs(top: Path = TOP) -> list[ArticleSpec]:
    return [load_spec(path) for path in sorted(top.glob(SPEC_GLOB))]


def load_snapshots(directory: Path = SNAPSHOT_DIR) -> list[HostSnapshot]:
    return [load_host_snapshot(path) for path in sorted(directory.glob("*.yml"))]


def audit(spec: ArticleSpec, host: HostSnapshot, variables: dict[str, Any]) -> Verdict:
    """One article on one recorded host, as the kb_article action would do it over WinRM."""
    request = fact_request(spec, host.state.os, variables)
    return evaluate(spec, host.answer(request), variables)


def run(specs: Sequence[ArticleSpec], hosts: Sequence[HostSnapshot]) -> dict[str, dict[str, Verdict]]:
    return {host.name: {spec.id: audit(spec, host, DEMO_VARIABLES.get(spec.id, {})) for spec in specs}
            for host in hosts}


def render(results: dict[str, dict[str, Verdict]], articles: Sequence[str], out: TextIO) -> None:
    width = max(len(name) for name in results) + 2
    out.write("host".ljust(width) + "".join(a.ljust(11) for a in articles) + "\n")
    out.write("-" * (width + 11 * len(articles)) + "\n")
    for host, verdicts in results.items():
        out.write(host.ljust(width) + "".join(_SHORT[verdicts[a].status].ljust(11) for a in articles) + "\n")
    counts = Counter[str](v.status for verdicts in results.values() for v in verdicts.values())
    out.write("\n" + ", ".join(f"{counts.get(s, 0)} {s}" for s in VERDICT_STATUSES) + "\n")
    for host, verdicts in results.items():
        for article in articles:
            verdict = verdicts[article]
            if verdict.status in ("compliant", "not_applicable"):
                continue
            _render_detail(host, verdict, out)


def _render_detail(host: str, verdict: Verdict, out: TextIO) -> None:
    out.write(f"\n{host} {verdict.article}: {verdict.status}\n")
    for check in verdict.checks:
        if check.passed is False:
            out.write(f"  FAIL {check.id}\n       expected {check.expected}\n       found    {check.found}"
                      + (f"\n       {check.message}" if check.message else "") + "\n")
    for fact in verdict.missing:
        out.write(f"  NOT READ {fact}\n")
    for number, step in enumerate(verdict.plan, 1):
        out.write(f"  plan {number}. {step.description}\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument("--snapshots", type=Path, default=SNAPSHOT_DIR, help="directory of host snapshots")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    specs = load_specs()
    results = run(specs, load_snapshots(args.snapshots))
    if args.json:
        json.dump({host: {a: v.to_dict() for a, v in verdicts.items()} for host, verdicts in results.items()},
                  out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        render(results, [s.id for s in specs], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
