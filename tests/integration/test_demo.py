# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/demo.py end to end, with a smaller fleet: the before/after counts, the report, and that the
simulated fleet is stopped however the demo ends."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_molecule import running_processes_mentioning

TOP = Path(__file__).resolve().parents[2]
DEMO = TOP / "tools" / "demo.py"
# NT 4.0 (over SMB), XP SP1 twice (one with the hotfix installed by hand), XP SP2 (fixed by its service
# pack) and a 2008 SP2 DFS server.
PROFILES = "nt4-tse-sp6-x86,xp-sp1-x86,xp-sp2-x86,2008-sp2-x64"

pytestmark = pytest.mark.slow


def demo(*args: str) -> list[str]:
    return [sys.executable, str(DEMO), *args]


def test_demo_audits_remediates_and_reports_before_and_after(tmp_path: Path) -> None:
    report, work = tmp_path / "report", tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(demo("--quiet", "--profiles", PROFILES, "--report-dir", str(report), "--keep", str(work)),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    data = json.loads((report / "kbfix-report.json").read_text(encoding="utf-8"))
    assert data["run"]["playbooks"] == ["demo.yml"]
    cells = {(h["name"], a): c for h in data["hosts"] for a, c in h["articles"].items()}
    # KB900002 is the article the demo imports from its text (kbfix_article_paths finds it).
    fixed = {("tse01", "KB253729"), ("xp-pc01", "KB828753"), ("xp-pc02", "KB828753"), ("dfs2008-d", "KB977381"),
             ("xp-pc01", "KB900002"), ("xp-pc02", "KB900002")}
    for key in fixed:
        assert cells[key]["before"]["status"] == "noncompliant", key
        assert cells[key]["status"] == "compliant", (key, cells[key]["after"]["reason"])
    # The NT 4.0 host's restart is part of the remediation: Mpr.dll is in use until it happens.
    assert "restart" in json.dumps(cells[("tse01", "KB253729")]["before"]["plan"])
    others = {k: c["status"] for k, c in cells.items() if k not in fixed}
    assert set(others.values()) == {"not_applicable"} and len(others) == 5 * 5 - len(fixed)
    # The hotfix installed by hand left only the registry settings to do.
    before_plan = [step["action"] for step in cells[("xp-pc02", "KB828753")]["before"]["plan"]]
    assert "install_package" not in before_plan and "set_registry" in before_plan
    assert {p.name for p in report.iterdir()} == {"kbfix-report.json", "kbfix-report.xml", "kbfix-report.html"}

    out = proc.stdout
    assert "xp-pc01 (xp-sp1-x86)" in out and "FAIL -> ok" in out
    counts = {line.split()[0]: (int(line.split()[1]), int(line.split()[2])) for line in out.splitlines()
              if line.split() and line.split()[0] in ("compliant", "noncompliant", "not_applicable", "unreachable")}
    assert counts == {"compliant": (0, 6), "noncompliant": (6, 0), "not_applicable": (19, 19)}
    assert re.search(r"^Imported KB900002 from kb900002.txt \(browser_text\) into .*: 1 file rows", out, re.M), out
    assert re.search(r"^tse01 \(nt4-tse-sp6-x86\) +FAIL -> ok ", out, re.MULTILINE), out
    assert running_processes_mentioning(str(work)) == []


@pytest.mark.parametrize(("signum", "moment"), [
    (signal.SIGINT, "fleet-ready.json"),  # Ctrl-C as the fleet comes up and ansible-playbook is being started
    (signal.SIGTERM, "ansible.log"),  # a kill while ansible-playbook runs
])
def test_interrupted_demo_stops_the_fleet(tmp_path: Path, signum: int, moment: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(demo("--quiet", "--profiles", "xp-sp1-x86,2008-sp2-x64", "--report-dir",
                                 str(tmp_path / "report"), "--keep", str(work)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = work / "fleet" / moment if moment == "fleet-ready.json" else work / moment
    deadline = time.monotonic() + 180
    while not ready.exists() or not ready.stat().st_size:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the fleet did not start"
        time.sleep(0.1)
    assert running_processes_mentioning(str(work)), "no fleet process found"
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Interrupted" in output
    assert running_processes_mentioning(str(work)) == [], "the fleet outlived the demo"
    assert not (tmp_path / "report" / "kbfix-report.json").exists()
