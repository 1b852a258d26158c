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
            }
        hosts.append({
            "name": host.name,
            "status": report.host_status(host),
            "unreachable": host.unreachable.to_dict() if host.unreachable else None,
            "failures": [f.to_dict() for f in host.failures],
            "articles": articles,
        })
    return {
        "schema": SCHEMA_VERSION,
        "generator": GENERATOR,
        "generated": iso_time(utc_now(now)),
        "title": report.title,
        "run": {"playbooks": list(report.playbooks), "check_mode": report.check_mode},
        "statuses": list(REPORT_STATUSES),
        "summary": report.summary().to_dict(),
        "articles": [{"article": a, "title": t} for a, t in report.articles()],
        "hosts": hosts,
    }


def render_json(report: FleetReport, now: datetime.datetime | None = None) -> str:
    return json.dumps(report_to_dict(report, now), indent=2, ensure_ascii=False) + "\n"

