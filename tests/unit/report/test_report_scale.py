# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report at fleet scale: 5,000 hosts x 50 articles rendered in the real Chromium.

The size of the file is bounded (asserted); the time Chromium takes to load and paint it is measured and
printed (``-s`` shows it; docs/report-format.md states the figures), never asserted: it depends on the machine.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from report_fleet import grid_cells, html_elements
from test_report_chromium import CHROMIUM, _chromium

from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.writers import write_reports

HOSTS, ARTICLES = 5000, 50
FAMILIES = 5  # each article applies to one of five Windows families, as real articles do
MAX_BYTES = 16 * 1024 * 1024

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="chromium is not installed (make setup installs it)"),
]


def _verdict(article: str, status: str, rng: random.Random) -> dict[str, Any]:
    checks = []
    if status == "noncompliant":
        checks = [{"id": f"file:%SystemRoot%\\system32\\drivers\\drv{rng.randrange(4)}.sys", "kind": "file",
                   "passed": False, "expected": ">= 5.1.2600.1276", "found": "5.1.2600.1106", "message": "older"},
                  {"id": "registry:HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters\\Credits",
                   "kind": "registry", "passed": False, "expected": "dword 256", "found": "absent", "message": ""}]
    return {"article": article, "title": f"Title of {article}", "status": status, "reason": "", "checks": checks,
            "plan": [{"action": "reboot", "description": "restart", "details": {}}] if status != "compliant" else [],
            "missing": [], "restart_required": status == "noncompliant"}


def fleet_at_scale() -> FleetReport:
    rng = random.Random(26)
    articles = [f"KB{900000 + i}" for i in range(ARTICLES)]
    report = FleetReport("Fleet at scale")
    for number in range(HOSTS):
        host = f"ws{number:05d}.corp.example.com"
        if rng.random() < 0.01:
            report.add_unreachable(host, "connection refused")
            continue
        family = number % FAMILIES
        verdicts = []
        for index, article in enumerate(articles):
            if index % FAMILIES != family:
                status = "not_applicable"
            else:
                status = rng.choices(["compliant", "noncompliant", "reboot_pending", "unknown"], [80, 14, 3, 3])[0]
            verdicts.append(_verdict(article, status, rng))
        report.add_result(host, verdicts)
    return report


def test_5000_hosts_by_50_articles_stay_small_and_render(tmp_path: Path) -> None:
    report = fleet_at_scale()
    started = time.monotonic()
    (page,) = write_reports(report, tmp_path / "out", ["html"])
    written = time.monotonic() - started
    size = page.stat().st_size
    assert size < MAX_BYTES, f"{size} bytes"

    started = time.monotonic()
    shot = _chromium(tmp_path, page, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1280,900")
    painted = time.monotonic() - started
    assert (tmp_path / "shot.png").exists(), shot.stderr[-2000:]
    started = time.monotonic()
    dom = _chromium(tmp_path, page, "--dump-dom")
    dumped = time.monotonic() - started
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = grid_cells(html_elements(dom.stdout))
    assert len(cells) == HOSTS * ARTICLES
    expected = {(h.name, c.article): c.status for h in report.hosts() for c in report.cells(h)}
    assert cells == expected
    print(f"\nHTML report, {HOSTS} hosts x {ARTICLES} articles: {size / 1048576:.1f} MiB, written in {written:.1f} s; "
          f"Chromium (headless, this machine): screenshot {painted:.1f} s, full DOM dump {dumped:.1f} s")
