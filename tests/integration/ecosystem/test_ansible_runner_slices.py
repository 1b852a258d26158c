# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit run the way AWX runs it: each job through ansible-runner (``ansible_runner.run``) with the jsonfile
fact cache in ``artifacts/<ident>/fact_cache``, the inventory split into job slices, then the report job.

AWX's rules, emulated here (AWX source, ``awx/main/models/inventory.py`` ``Inventory.get_sliced_hosts`` and
``get_script_data``; ``awx/main/tasks/facts.py`` ``start_fact_cache`` / ``finish_fact_cache``):

- slice ``k`` of ``n`` holds the enabled hosts ordered by name, ``hosts[k - 1::n]`` (given here as the job's
  limit);
- before a job, AWX writes each host's stored facts into the job's ``fact_cache`` directory; after it, the
  files the job changed go back to its database (here: a directory shared by the jobs of one scenario).

The report built after three sliced audit jobs must equal, host by host, the report after one unsliced job.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import stop_answering

ansible_runner = pytest.importorskip("ansible_runner")

TOP = Path(__file__).resolve().parents[3]
AUDIT = TOP / "playbooks" / "audit.yml"
REPORT = TOP / "playbooks" / "report.yml"
SITE_VARS: dict[str, Any] = {"kb828753_reconnectable_servers": ["fs01"], "kb938475_asynchronous_credits": 256}
FLEET = [("xp1", "xp-sp1-x86"), ("xp2", "xp-sp2-x86"), ("vista1", "vista-rtm-x86"), ("ws1", "2008-sp1-x86"),
         ("ws2", "2003r2-sp2-x86"), ("off", "xp-sp1-x86")]
SLICES = 3

pytestmark = pytest.mark.slow


def awx_slices(hosts: list[str], count: int) -> list[list[str]]:
    """AWX's job slicing: hosts ordered by name, slice k (1-based) is hosts[k - 1::count]."""
    ordered = sorted(hosts)
    return [ordered[number - 1::count] for number in range(1, count + 1)]


class Awx:
    """One scenario's jobs: a private data dir per job, and the fact store AWX keeps between jobs."""

    def __init__(self, root: Path, inventory: Path) -> None:
        self.root = root
        self.inventory = inventory
        self.store = root / "fact-store"
        self.store.mkdir(parents=True)
        self.jobs = 0

    def job(self, playbook: Path, hosts: list[str], sliced: bool = False,
            extravars: dict[str, Any] | None = None) -> Any:
        """A job over ``hosts`` (the job's slice when ``sliced``): AWX writes only their facts."""
        self.jobs += 1
        ident = f"job{self.jobs}"
        private = self.root / ident
        cache = private / "artifacts" / ident / "fact_cache"
        cache.mkdir(parents=True)
        for stored in self.store.iterdir():  # start_fact_cache, for the job's hosts (Job.get_hosts_for_fact_cache)
            if stored.name.removeprefix("s1_") in hosts:
                shutil.copy2(stored, cache / stored.name)
        written = {p.name: p.stat().st_mtime for p in cache.iterdir()}
        run = ansible_runner.run(private_data_dir=str(private), ident=ident, playbook=str(playbook),
                                 inventory=str(self.inventory), limit=",".join(hosts) if sliced else None,
                                 extravars=extravars or {},
                                 fact_cache_type="jsonfile", quiet=True,
                                 envvars={"ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"})
        for path in cache.iterdir():  # finish_fact_cache: what the job changed goes back
            if path.name not in written or path.stat().st_mtime > written[path.name]:
                shutil.copy2(path, self.store / path.name)
        return run


def events(run: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in run.events if e.get("event") == kind]


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """Each host's statuses and last verdicts, without the times that differ between two runs."""
    hosts = {}
    for host in report["hosts"]:
        articles = {}
        for article, entry in host["articles"].items():
            after = dict(entry["after"] or {})
            articles[article] = {"status": entry["status"], "problem": (entry["problem"] or {}).get("kind"),
                                 "after": after}
        hosts[host["name"]] = {"status": host["status"], "never_audited": host["never_audited"],
                               "articles": articles}
    return hosts


def test_three_awx_slices_and_the_report_equal_one_unsliced_job(start_fleet: Any, tmp_path: Path) -> None:
    _fleet, inventory = start_fleet(FLEET)
    inventory.parent.joinpath("group_vars").mkdir()
    inventory.parent.joinpath("group_vars", "all.yml").write_text(yaml.safe_dump(SITE_VARS), encoding="utf-8")
    stop_answering(inventory, "off")
    names = [name for name, _profile in FLEET]
    slices = awx_slices(names, SLICES)
    assert slices == [["off", "ws2"], ["vista1", "xp1"], ["ws1", "xp2"]]

    # three sliced audit jobs, then the report job
    sliced = Awx(tmp_path / "sliced", inventory)
    per_slice_counts = []
    for number, hosts in enumerate(slices, start=1):
        run = sliced.job(AUDIT, hosts, sliced=True)
        assert run.rc == (4 if "off" in hosts else 0), run.stdout.read()[-3000:]
        ident = f"job{number}"
        cache = tmp_path / "sliced" / ident / "artifacts" / ident / "fact_cache"
        # ansible-core 2.19 names a host's cache file s1_<host> (earlier releases: <host>)
        assert sorted(p.name.removeprefix("s1_") for p in cache.iterdir()) == sorted(hosts)
        audited = {e["event_data"]["host"] for e in events(run, "runner_on_ok")
                   if e["event_data"].get("task") == "Audit every article in one pass"}
        assert audited == set(hosts) - {"off"}
        assert {e["event_data"]["host"] for e in events(run, "runner_on_unreachable")} == set(hosts) & {"off"}
        assert set(run.stats["ok"]) == set(hosts) - {"off"}
        (stats,) = events(run, "playbook_on_stats")
        per_slice_counts.append(stats["event_data"]["artifact_data"]["kbfix_fleet"])
    report_run = sliced.job(REPORT, names, extravars={"kbfix_report_dir": str(tmp_path / "sliced-report")})
    assert report_run.rc == 0, report_run.stdout.read()[-3000:]
    assert not events(report_run, "runner_on_unreachable")
    assert {e["event_data"]["host"] for e in events(report_run, "runner_on_ok")} == {"localhost"}
    merged = json.loads((tmp_path / "sliced-report" / "kbfix-report.json").read_text(encoding="utf-8"))

    # one unsliced audit job, then the report job, with a fact store of its own
    whole = Awx(tmp_path / "whole", inventory)
    run = whole.job(AUDIT, names)
    assert run.rc == 4
    (stats,) = events(run, "playbook_on_stats")
    unsliced_counts = stats["event_data"]["artifact_data"]["kbfix_fleet"]
    assert whole.job(REPORT, names, extravars={"kbfix_report_dir": str(tmp_path / "whole-report")}).rc == 0
    single = json.loads((tmp_path / "whole-report" / "kbfix-report.json").read_text(encoding="utf-8"))

    # host by host, the same report
    merged_hosts, single_hosts = comparable(merged), comparable(single)
    assert sorted(merged_hosts) == sorted(names)
    for name in names:
        assert merged_hosts[name] == single_hosts[name], name
    assert merged["summary"] == single["summary"]
    assert merged_hosts["off"]["status"] == "unreachable"
    assert merged_hosts["xp1"]["articles"]["KB828753"]["status"] == "noncompliant"
    # the slices' set_stats add up to the unsliced job's
    for article, counts in unsliced_counts.items():
        assert {s: sum(c[article][s] for c in per_slice_counts) for s in counts} == counts, article

    # a later job of slice 2 finds xp1 off: the report keeps its last verdict and its age, not compliant now
    stop_answering(inventory, "xp1")
    later = sliced.job(AUDIT, slices[1], sliced=True)
    assert later.rc == 4
    assert sliced.job(REPORT, names, extravars={"kbfix_report_dir": str(tmp_path / "later-report")}).rc == 0
    later_report = json.loads((tmp_path / "later-report" / "kbfix-report.json").read_text(encoding="utf-8"))
    xp1 = next(h for h in later_report["hosts"] if h["name"] == "xp1")
    assert xp1["status"] == "unreachable"
    entry = xp1["articles"]["KB828753"]
    assert entry["status"] == "unreachable" and entry["after"]["status"] == "noncompliant"
    before = next(h for h in merged["hosts"] if h["name"] == "xp1")
    assert entry["observed"] == before["articles"]["KB828753"]["observed"]  # the verdict's own time
    assert xp1["age_seconds"] >= 0
