# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix_compliance`` fact: each host's last verdicts, kept in Ansible's fact cache between jobs.

``kb_article`` returns it (``fact_after_verdicts``), so a fact cache (jsonfile, redis, AWX's own) keeps the
verdicts of every host audited in any job, any job slice. ``kbfix.windows.fleet_report`` reads it back for
every inventory host (``report_from_facts``) and writes the fleet report without contacting a host.

Shape (schema 1; docs/report-format.md)::

    kbfix_compliance:
      schema: 1
      collection_version: 1.0.0       # the kbfix.windows that judged the newest verdict
      updated: 2026-12-06T21:00:00Z   # the newest verdict
      articles:                       # the last verdict of every article ever judged on the host
        KB828753: {status, title, reason, checks (failing and undecided only), plan, missing,
                   restart_required, when, state}
      attempt:                        # only when the last attempt gave no verdict
        {when, outcome: unreachable | failed, message}

A later attempt that gives no verdict (the host did not answer) keeps the verdicts, adds ``attempt``: the
report then shows the host as unreachable with its last verdict and that verdict's age, never as compliant now.

No Ansible imports; cached data is untrusted like any task result (``verdict_from_dict`` coerces it).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ..article.model import Verdict
from .model import FleetReport, age_text, iso_time, utc_now, verdict_from_dict

FACT_NAME = "kbfix_compliance"
FACT_SCHEMA = 1
COLLECTION_ROOT = Path(__file__).resolve().parents[3]
AttemptOutcome = Literal["unreachable", "failed"]


@lru_cache(maxsize=1)
def collection_version(root: Path = COLLECTION_ROOT) -> str:
    """The installed collection's version (MANIFEST.json), or the working tree's (galaxy.yml)."""
    try:
        manifest = json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))
        return str(manifest["collection_info"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        found = re.search(r"^version:\s*['\"]?([^\s'\"]+)", (root / "galaxy.yml").read_text(encoding="utf-8"), re.M)
    except OSError:
        found = None
    return found.group(1) if found else "unknown"


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def _articles(fact: Any) -> dict[str, Any]:
    articles = fact.get("articles") if isinstance(fact, Mapping) else None
    return dict(articles) if isinstance(articles, Mapping) else {}


def _stored_verdict(verdict: Verdict, state: str, when: str) -> dict[str, Any]:
    data = verdict.to_dict()
    # Passing checks are the bulk of a verdict and say nothing a report shows: the cache keeps the rest.
    data["checks"] = [c for c in data.get("checks", []) if c.get("passed") is not True]
    data["when"] = when
    data["state"] = state
    return data


def fact_after_verdicts(previous: Any, verdicts: Sequence[Verdict], state: str,
                        now: datetime.datetime | None = None, version: str | None = None) -> dict[str, Any]:
    """The fact after a ``kb_article`` task judged ``verdicts``: those articles replaced, the others kept
    (an audit of one article does not forget the rest), any failed attempt cleared (the host answered)."""
    when = iso_time(utc_now(now))
    articles = _articles(previous)
    for verdict in verdicts:
        articles[verdict.article] = _stored_verdict(verdict, state, when)
    return {"schema": FACT_SCHEMA, "collection_version": version or collection_version(), "updated": when,
            "articles": articles}


def fact_after_attempt(previous: Any, outcome: AttemptOutcome, message: str,
                       now: datetime.datetime | None = None) -> dict[str, Any]:
    """The fact after an attempt that gave no verdict: the verdicts stay, the attempt is noted."""
    fact = dict(previous) if isinstance(previous, Mapping) else {"schema": FACT_SCHEMA, "articles": {}}
    fact["attempt"] = {"when": iso_time(utc_now(now)), "outcome": outcome, "message": message}
    return fact


def fact_to_record(previous: Any, registered: Any, now: datetime.datetime | None = None) -> dict[str, Any] | None:
    """What the fact cache must be told about a host after a run, given the ``kb_article`` result registered
    for it (None when the host never reached that task). None: Ansible already cached the right fact.

    Ansible caches the facts of successful results only, so a result failed by ``fail_on`` (which still
    carries its verdicts) and a host that did not answer are written here."""
    if not isinstance(registered, Mapping):
        return fact_after_attempt(previous, "unreachable",
                                  "no kb_article result in this run: the host did not answer or an earlier task failed",
                                  now)
    facts = registered.get("ansible_facts")
    fact = facts.get(FACT_NAME) if isinstance(facts, Mapping) else None
    if registered.get("unreachable"):
        return fact_after_attempt(previous, "unreachable", str(registered.get("msg") or "unreachable"), now)
    if isinstance(fact, Mapping):
        return dict(fact) if registered.get("failed") else None
    if registered.get("skipped"):
        return None
    return fact_after_attempt(previous, "failed", str(registered.get("msg") or "kb_article failed"), now)


def _age(moment: datetime.datetime | None, now: datetime.datetime) -> str:
    return age_text(moment, now) if moment is not None else "at an unknown time"


def add_cached_host(report: FleetReport, host: str, fact: Any, now: datetime.datetime) -> None:
    """One inventory host's cached fact into ``report``: its verdicts with their times; no fact at all is a
    host never audited; a later attempt without verdict makes every article unreachable (or failed), the
    last verdict shown as context with its age."""
    articles = _articles(fact)
    verdicts: list[Mapping[str, Any]] = [v for v in articles.values() if isinstance(v, Mapping)]
    recorded = report.add_result(host, verdicts)
    if not recorded and not isinstance(fact, Mapping):
        report.add_not_audited(host)
        return
    times: dict[str, datetime.datetime | None] = {}
    for data in verdicts:
        verdict = verdict_from_dict(data)
        if verdict is not None:
            times[verdict.article] = parse_time(data.get("when"))
            report.set_observed(host, verdict.article, times[verdict.article])
    attempt = fact.get("attempt") if isinstance(fact, Mapping) else None
    if not isinstance(attempt, Mapping):
        if not recorded:
            report.add_not_audited(host)
        return
    attempted = parse_time(attempt.get("when"))
    newest = max((t for t in times.values() if t is not None), default=None)
    if newest is not None and attempted is not None and attempted < newest:
        return  # verdicts judged after the failed attempt (another job) stand
    kind = "failed" if attempt.get("outcome") == "failed" else "unreachable"
    text = str(attempt.get("message") or kind)
    message = f"{text} (attempt {_age(attempted, now)})"
    targets: list[str | None] = list(recorded) or [None]
    for article in targets:
        last = f"; last verdict judged {_age(times.get(article), now)}" if article else ""
        if kind == "failed":
            report.add_failure(host, message + last, article, task="fact cache")
        else:
            report.add_unreachable(host, message + last, article, task="fact cache")


def report_from_facts(facts: Iterable[tuple[str, Any]], now: datetime.datetime | None = None,
                      title: str = "KB compliance report") -> FleetReport:
    """The fleet report from (host, cached ``kbfix_compliance`` or None) pairs, one per inventory host."""
    moment = utc_now(now)
    report = FleetReport(title)
    for host, fact in facts:
        add_cached_host(report, host, fact, moment)
    return report
