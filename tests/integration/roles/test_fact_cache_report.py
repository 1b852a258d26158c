# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts kept in Ansible's jsonfile fact cache between runs, and kbfix.windows.report built from them alone:
ages, hosts never audited, a host that stopped answering shown with its last verdict (never as compliant now),
verdicts of hosts failed by fail_on kept, the audit's set_stats, and the report copied out with HTTP PUT."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook, stop_answering
from role_helpers import PLAYBOOKS, SITE_VARS, group_vars, task_results

pytestmark = pytest.mark.slow

AUDIT = PLAYBOOKS / "audit.yml"
REPORT = PLAYBOOKS / "report.yml"


def cache_env(cache: Path) -> dict[str, str]:
    return {"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"}


def cached(cache: Path, host: str) -> dict[str, Any] | None:
    """The host's kbfix_compliance as the jsonfile cache holds it: ansible-core 2.19 names the file
    ``s1_<host>`` and wraps the facts in ``{"__payload__": "<json>"}``; earlier releases ``<host>``, plain."""
    for path, wrapped in ((cache / f"s1_{host}", True), (cache / host, False)):
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if wrapped:
                data = untagged(json.loads(data["__payload__"]))
            return data.get("kbfix_compliance")
    return None


def untagged(value: Any) -> Any:
    """ansible-core 2.19's cache keeps the tags of templated values: ``{"value": v, "tags": [...],
    "__ansible_type": "_AnsibleTaggedDict"}``. The data without them."""
    if isinstance(value, dict):
        if "__ansible_type" in value and "value" in value:
            return untagged(value["value"])
        return {k: untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untagged(v) for v in value]
    return value


class _PutServer(http.server.BaseHTTPRequestHandler):
    received: dict[str, tuple[str, bytes]] = {}

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received[self.path] = (self.headers.get("Authorization", ""), body)
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def put_server() -> Iterator[tuple[str, dict[str, tuple[str, bytes]]]]:
    _PutServer.received = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PutServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/reports/", _PutServer.received
    finally:
        server.shutdown()
        server.server_close()


def test_report_from_the_cache_ages_never_audited_and_a_host_that_stopped_answering(
        start_fleet: Any, tmp_path: Path, put_server: tuple[str, dict[str, tuple[str, bytes]]]) -> None:
    fleet, inventory = start_fleet([("xp", "xp-sp1-x86"), ("vista", "vista-sp1-x64"), ("ws", "2008-sp1-x86"),
                                    ("later", "xp-sp2-x86")])
    group_vars(inventory, SITE_VARS)
    cache = tmp_path / "cache"
    env = cache_env(cache)

    # 1: audit three of the four hosts; kbfix_fail_on fails xp (noncompliant), whose verdicts must still be cached
    first = run_playbook(AUDIT, inventory, tmp_path / "1", limit="xp,vista,ws", env=env,
                         extra_vars={"kbfix_fail_on": ["noncompliant"], "kbfix_articles": ["KB828753", "KB977381"]})
    assert first.rc == 2, first.output[-4000:]
    assert task_results(first, "Audit every article in one pass", "xp")[0].status == "failed"
    stats = [r for r in first.results if r.task == "Fleet counts per article, for AWX"]
    counts = {"compliant": 0, "noncompliant": 1, "reboot_pending": 0, "not_applicable": 2, "unknown": 0,
              "failed": 0, "unreachable": 0, "not_audited": 0}
    assert len(stats) == 1 and stats[0].result["ansible_stats"]["data"]["kbfix_fleet"] == {
        "KB828753": counts, "KB977381": counts}, stats[0].result
    xp_fact = cached(cache, "xp")
    assert xp_fact is not None and xp_fact["articles"]["KB828753"]["status"] == "noncompliant"
    vista_fact = cached(cache, "vista")
    assert vista_fact is not None and set(vista_fact["articles"]) == {"KB828753", "KB977381"}
    assert all(v["status"] == "not_applicable" for v in vista_fact["articles"].values())
    assert cached(cache, "later") is None
    first_seen = datetime.datetime.fromisoformat(vista_fact["updated"].replace("Z", "+00:00"))

    # 2: vista stops answering; the next audit keeps its verdicts and notes the attempt
    stop_answering(inventory, "vista")
    second = run_playbook(AUDIT, inventory, tmp_path / "2", limit="vista,ws", env=env,
                          extra_vars={"kbfix_articles": ["KB977381"]})
    assert second.rc == 4, second.output[-4000:]
    vista_after = cached(cache, "vista")
    assert vista_after is not None and vista_after["articles"] == vista_fact["articles"]
    assert vista_after["attempt"]["outcome"] == "unreachable"
    ws_after = cached(cache, "ws")
    assert ws_after is not None and set(ws_after["articles"]) == {"KB828753", "KB977381"}  # earlier article kept

    # 3: the report contacts no host: every winsim host stopped first
    stop_answering(inventory, *fleet.hosts)
    url, received = put_server
    report_dir = tmp_path / "report"
    out = run_playbook(REPORT, inventory, tmp_path / "3", env=env, extra_vars={
        "kbfix_report_dir": str(report_dir), "kbfix_report_url": url, "kbfix_report_username": "kbfix",
        "kbfix_report_password": "S3cret-put-pw"})
    assert out.rc == 0, out.output[-4000:]
    assert "S3cret-put-pw" not in out.output
    data = json.loads((report_dir / "kbfix-report.json").read_text(encoding="utf-8"))
    hosts = {h["name"]: h for h in data["hosts"]}
    assert set(hosts) == {"xp", "vista", "ws", "later"}
    assert hosts["later"]["status"] == "not_audited" and hosts["later"]["never_audited"] is True
    assert hosts["xp"]["status"] == "noncompliant"
    assert hosts["vista"]["status"] == "unreachable"  # not compliant now: its last verdict is shown as context
    vista_kb = hosts["vista"]["articles"]["KB828753"]
    assert vista_kb["status"] == "unreachable" and vista_kb["after"]["status"] == "not_applicable"
    assert datetime.datetime.fromisoformat(vista_kb["observed"].replace("Z", "+00:00")) == first_seen
    assert hosts["vista"]["age_seconds"] >= 0 and "last verdict judged" in vista_kb["problem"]["message"]
    assert hosts["ws"]["articles"]["KB977381"]["status"] == "noncompliant"
    assert data["summary"]["hosts_by_status"]["not_audited"] == 1
    # the three files reached the server, with the credentials in the header only
    assert sorted(received) == ["/reports/kbfix-report.html", "/reports/kbfix-report.json",
                                "/reports/kbfix-report.xml"]
    auth, body = received["/reports/kbfix-report.json"]
    assert auth == "Basic " + base64.b64encode(b"kbfix:S3cret-put-pw").decode()
    assert json.loads(body) == data
