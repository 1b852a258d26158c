# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON report (schema 1, docs/report-format.md): the model as data, for programs."""

from __future__ import annotations

import datetime
import json
from typing import Any

from .model import GENERATOR, REPORT_STATUSES, SCHEMA_VERSION, FleetReport, iso_time, utc_now


def report_to_dict(report: FleetReport, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The JSON document (schema 1, see docs/report-format.md)."""
    moment = utc_now(now)
    hosts: list[dict[str, Any]] = []
    for host in report.hosts():
        articles: dict[str, Any] = {}
        for cell in report.cells(host):
            if cell.status == "not_run":
                continue
            record = cell.record
            articles[cell.article] = {
                "status": cell.status,
                "problem": cell.problem.to_dict() if cell.problem else None,
                "before": record.before.to_dict() if record and record.before else None,
                "after": record.after.to_dict() if record and record.after else None,
                "observed": iso_time(record.observed) if record and record.observed else None,
            }
        hosts.append({
            "name": host.name,
            "status": report.host_status(host),
            "unreachable": host.unreachable.to_dict() if host.unreachable else None,
            "failures": [f.to_dict() for f in host.failures],
            "unsigned_packages": list(host.unsigned_packages),
            "never_audited": host.never_audited,
            "observed": iso_time(host.observed) if host.observed else None,
            "age_seconds": int((moment - host.observed).total_seconds()) if host.observed else None,
            "articles": articles,
        })
    return {
        "schema": SCHEMA_VERSION,
        "generator": GENERATOR,
        "generated": iso_time(moment),
        "title": report.title,
        "run": {"playbooks": list(report.playbooks), "check_mode": report.check_mode},
        "statuses": list(REPORT_STATUSES),
        "summary": report.summary().to_dict(),
        "articles": [{"article": a.article, "title": a.title, "results_by_status": a.counts,
                      "failing_checks": [{"check": check, "hosts": n} for check, n in a.failing_checks]}
                     for a in report.article_summaries()],
        "hosts": hosts,
    }


def render_json(report: FleetReport, now: datetime.datetime | None = None) -> str:
    return json.dumps(report_to_dict(report, now), indent=2, ensure_ascii=False) + "\n"
