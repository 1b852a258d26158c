# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's own article with the collection as a Galaxy user has it: built and installed with ``ansible-galaxy``
into an empty collections path, then the article's text (copied from a browser, in the shape of the training
article KB828753) imported with ``kbfix.windows.article_import`` into the user's own directory, named only by
``kbfix_article_paths``, is listed, audited and remediated on a winsim host through ``kbfix.windows.audit`` and
``kbfix.windows.remediate``, and appears in the report. Nothing of the collection is edited; winsim is given
the article's package by the test (a package it describes, outside winsim's catalogue)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import run_playbook
from test_galaxy_install import BIN, ROOT, build_and_install

from winsim import packages

pytestmark = pytest.mark.slow

ARTICLE = "KB900002"
DRIVER = "%SystemRoot%\\system32\\drivers\\netbt.sys"
PACKAGE_FILE = "WindowsXP-KB900002-x86-ENU.exe"
# The article as a user has it; its spec is what the importer makes of it (nothing written by hand).
ARTICLE_TEXT = ROOT / "tests" / "unit" / "importer" / "fixtures" / "kb900002.txt"
TITLE = "NetBT stops answering name queries after many sessions"
# What the package installs, as winsim's installers read it from the file.
PACKAGE = packages.Package(
    PACKAGE_FILE, ARTICLE, "update", "x86", TITLE,
    (packages.Target("5.1.2600", (1,), (
        packages.FileFix(DRIVER, "5.1.2600.1290 (xpsp2.031001-1200)", 162816, "2003-10-01T12:00:00+00:00"),),
        fixed_in_sp=2, product_types=(1,)),),
    restart=False, record_product="Windows XP", record_sp="SP2", build_date="2003-10-01")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_and_install(tmp_path_factory.mktemp("galaxy-user"))


def task_result(results: list[Any], task: str) -> Any:
    """The one result of a task, with or without the ``role : `` prefix Ansible adds in roles."""
    (result,) = [r for r in results if r.task == task or r.task.endswith(" : " + task)]
    return result


def verdicts_of(results: list[Any], task: str) -> dict[str, str]:
    return {v["article"]: v["status"] for v in task_result(results, task).result["verdicts"]}


def test_a_users_article_is_listed_audited_remediated_and_reported(installed: dict[str, Any], start_fleet: Any,
                                                                    tmp_path: Path) -> None:
    articles = tmp_path / "my-articles"
    imported = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", "kbfix.windows.article_import", "-a",
         f"src={ARTICLE_TEXT} dest={articles}", "-o"],
        env=installed["env"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    spec_file = articles / "kb900002" / "files" / "kb900002.yml"
    assert yaml.safe_load(spec_file.read_text(encoding="utf-8"))["packages"][0]["file"] == PACKAGE_FILE
    package_dir = tmp_path / "packages"
    packages.write_package(PACKAGE, package_dir)
    _fleet, inventory = start_fleet([("xp", "xp-sp1-x86")])
    (inventory.parent / "group_vars").mkdir(exist_ok=True)
    (inventory.parent / "group_vars" / "all.yml").write_text(yaml.safe_dump(
        {"kb828753_reconnectable_servers": ["fs01"], "kb938475_asynchronous_credits": 256,
         "kbfix_article_paths": [str(articles)]}), encoding="utf-8")
    env = {**installed["env"], "ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report",
           "KBFIX_REPORT_DIR": str(tmp_path / "report")}

    listed = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", "kbfix.windows.article_list", "-a", f"paths={articles}", "-o"],
        env=installed["env"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    found = json.loads(listed.stdout.split("=>", 1)[1])["articles"]
    assert [(a["id"], a["origin"]) for a in found] == [
        ("KB253729", "collection"), ("KB828753", "collection"), ("KB900002", "user"), ("KB938475", "collection"),
        ("KB977381", "collection")]
    assert found[2]["path"] == str(spec_file)
    assert found[0]["path"].startswith(str(installed["root"]))

    audit = run_playbook(Path("kbfix.windows.audit"), inventory, tmp_path / "audit", env=env)
    assert audit.rc == 0, audit.output[-5000:]
    before = verdicts_of(audit.results, "Audit every article in one pass")
    assert list(before) == ["KB253729", "KB828753", ARTICLE, "KB938475", "KB977381"]
    assert before[ARTICLE] == "noncompliant" and before["KB828753"] == "noncompliant"
    report = json.loads((tmp_path / "report" / "kbfix-report.json").read_text(encoding="utf-8"))
    assert ARTICLE in json.dumps(report)

    remediate = run_playbook(Path("kbfix.windows.remediate"), inventory, tmp_path / "remediate", env=env,
                             extra_vars={"kbfix_articles": [ARTICLE], "kbfix_package_source": str(package_dir)})
    assert remediate.rc == 0, remediate.output[-5000:]
    enforced = task_result(remediate.results, "Check or enforce the articles")
    assert [c["action"] for c in enforced.result["changes"]] == ["install_package"]
    assert verdicts_of(remediate.results, "Check or enforce the articles") == {ARTICLE: "compliant"}

    again = run_playbook(Path("kbfix.windows.audit"), inventory, tmp_path / "again", env=env)
    assert again.rc == 0, again.output[-5000:]
    after = verdicts_of(again.results, "Audit every article in one pass")
    assert after[ARTICLE] == "compliant" and after["KB828753"] == "noncompliant"
    report = json.loads((tmp_path / "report" / "kbfix-report.json").read_text(encoding="utf-8"))
    assert ARTICLE in json.dumps(report) and "compliant" in json.dumps(report)
