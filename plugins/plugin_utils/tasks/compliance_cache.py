# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts in the fact cache: the ``kbfix_compliance`` fact kb_article returns, and fleet_report, which
builds the fleet report from the cached facts of every inventory host without contacting any of them.

fleet_report reads hosts' facts through ``hostvars``, so it works with whatever fact cache Ansible is set up
with (jsonfile, redis, AWX's per-job ``fact_cache`` directory). Optionally it copies the files it wrote to a
URL with HTTP PUT, so that the report survives a job whose disk is thrown away (AWX, execution environments).
"""

from __future__ import annotations

import datetime
import urllib.error
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url

from ..article.model import Verdict
from ..errors import ArgumentError, KbfixError
from ..report.compliance_fact import FACT_NAME, fact_after_verdicts, fact_to_record, report_from_facts
from ..report.model import REPORT_STATUSES, FleetReport, utc_now
from ..report.writers import FORMATS, write_reports

CONTENT_TYPES = {".json": "application/json", ".xml": "application/xml", ".html": "text/html; charset=utf-8"}


def _facts_of(hostvars: Any, host: str) -> Mapping[str, Any]:
    try:
        variables = hostvars[host]
    except KeyError:
        return {}
    facts = variables.get("ansible_facts") if isinstance(variables, Mapping) else None
    return facts if isinstance(facts, Mapping) else {}


def verdict_facts(task_vars: Mapping[str, Any], verdicts: Sequence[Verdict], state: str,
                  check_mode: bool) -> dict[str, Any]:
    """kb_article's ``ansible_facts`` entry: the host's cached fact updated with these verdicts. Empty in
    check mode with state enforced: those verdicts are predictions, not what the host is."""
    if not verdicts or (check_mode and state == "enforced"):
        return {}
    facts = task_vars.get("ansible_facts")
    previous = facts.get(FACT_NAME) if isinstance(facts, Mapping) else None
    return {FACT_NAME: fact_after_verdicts(previous, verdicts, state)}


@dataclass(frozen=True)
class Upload:
    url: str
    username: str | None
    password: str | None
    validate_certs: bool
    timeout: int

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Upload | None:
        url = args.get("upload_url")
        if not url:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ArgumentError("upload_url", "must be an http:// or https:// URL with a host name")
        if parts.username is not None or parts.password is not None:
            # a password inside the URL would end up in logs and error messages
            raise ArgumentError("upload_url", "must not carry credentials; use upload_username and upload_password")
        if parts.query or parts.fragment:
            raise ArgumentError("upload_url", "must be a base URL without query or fragment; file names are appended")
        timeout = int(args.get("upload_timeout", 30))
        if not 1 <= timeout <= 3600:
            raise ArgumentError("upload_timeout", "must be between 1 and 3600 seconds")
        return cls(url.rstrip("/") + "/", args.get("upload_username"), args.get("upload_password"),
                   bool(args.get("upload_validate_certs", True)), timeout)

    def put(self, path: Path) -> str:
        target = urllib.parse.urljoin(self.url, urllib.parse.quote(path.name))
        try:
            answer = open_url(target, data=path.read_bytes(), method="PUT", timeout=self.timeout,
                              headers={"Content-Type": CONTENT_TYPES.get(path.suffix, "application/octet-stream")},
                              url_username=self.username, url_password=self.password,
                              force_basic_auth=self.username is not None, validate_certs=self.validate_certs,
                              follow_redirects="none")
            status = int(answer.status)
            answer.close()
        except urllib.error.HTTPError as exc:
            raise KbfixError(f"upload of {path.name} to {target} refused: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError, UrlConnectionError) as exc:
            # messages name the URL (which carries no credentials, from_args saw to it), never the password
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise KbfixError(f"upload of {path.name} to {target} failed: {reason}") from None
        if status not in (200, 201, 204):
            raise KbfixError(f"upload of {path.name} to {target}: unexpected HTTP {status}")
        return target


def article_counts(report: FleetReport) -> dict[str, dict[str, int]]:
    """Per article, the number of hosts in each status: what set_stats hands to AWX."""
    return {a.article: {s: a.counts[s] for s in REPORT_STATUSES} for a in report.article_summaries()}


def run_report(args: Mapping[str, Any], task_vars: Mapping[str, Any],
               now: datetime.datetime | None = None) -> dict[str, Any]:
    """fleet_report: records for the hosts a run could not audit, the report from the cache, files, upload."""
    upload = Upload.from_args(args)  # bad arguments fail before anything is read or written
    formats = list(args.get("formats") or FORMATS)
    moment = utc_now(now)
    hostvars = task_vars.get("hostvars", {})
    hosts = args.get("hosts")
    if hosts is None:
        groups = task_vars.get("groups")
        hosts = list(groups.get("all", [])) if isinstance(groups, Mapping) else []
    hosts = list(dict.fromkeys(str(h) for h in hosts))
    facts: dict[str, Any] = {h: _facts_of(hostvars, h).get(FACT_NAME) for h in hosts}
    records: dict[str, Any] = {}
    run_result = args.get("run_result")
    if run_result:
        for host in hosts:
            try:
                variables = hostvars[host]
            except KeyError:
                continue
            registered = variables.get(run_result) if isinstance(variables, Mapping) else None
            record = fact_to_record(facts[host], registered, moment)
            if record is not None:
                records[host] = facts[host] = record
    report = report_from_facts(facts.items(), moment, args.get("title") or "KB compliance report")
    result: dict[str, Any] = {"changed": False, "summary": report.summary().to_dict(),
                              "articles": article_counts(report), "records": records, "files": [], "uploaded": []}
    if args.get("output_dir"):
        written = write_reports(report, args["output_dir"], formats, moment)
        result["files"] = [str(p) for p in written]
        result["changed"] = True
        if upload is not None:
            result["uploaded"] = [upload.put(p) for p in written]
    elif upload is not None:
        raise ArgumentError("output_dir", "is required with upload_url: the files written there are uploaded")
    result["msg"] = (f"{result['summary']['compliant_hosts']} of {len(hosts)} hosts compliant or not applicable"
                     + (f"; wrote {len(result['files'])} files" if result["files"] else "")
                     + (f", uploaded to {upload.url}" if upload and result["uploaded"] else ""))
    return result
