# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every Molecule scenario (extensions/molecule/<role>/) from the repository root, as Molecule 26 expects
for a collection, so `make test` covers create -> converge -> idempotence -> verify -> destroy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
MOLECULE = TOP / "extensions" / "molecule"
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))
ARTICLE_ROLES = sorted(p.name for p in (TOP / "roles").glob("kb*") if (p / "tasks" / "main.yml").exists())


def running_processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (the scenario's private ANSIBLE_HOME)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def test_every_article_role_has_a_scenario() -> None:
    assert SCENARIOS == ARTICLE_ROLES


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # A private ANSIBLE_HOME gives each scenario its own ephemeral directory (Molecule keeps it under
    # $ANSIBLE_HOME/tmp), so scenarios can run in parallel and leftovers can be found.
    env["ANSIBLE_HOME"] = str(tmp_path / "ansible-home")
    proc = subprocess.run([str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
                          cwd=TOP, env=env, capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    for action in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"{scenario} > {action}: Executed: Successful" in output, output[-8000:]
    assert running_processes_mentioning(str(tmp_path)) == [], "the scenario left simulated hosts running"
