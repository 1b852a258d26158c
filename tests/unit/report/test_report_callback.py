# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a real ansible-playbook with the compliance_report callback enabled.

The playbook runs against local hosts through a test collection that is kbfix.windows as far as Ansible
can tell: the real callback and plugin_utils (symlinked from this working tree) plus a test-only
``kb_article`` action that returns kb_article-shaped results built with the real model classes. So the
callback sees exactly what it sees in production: resolved action names, loops, ignored failures,
unreachable hosts, the stdout callback running beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from report_fleet import grid_cells, html_elements

REPO = Path(__file__).resolve().parents[3]
SECRET = "hunter2-NEVER-IN-REPORT"

TEST_ACTION = '''
from ansible.plugins.action import ActionBase

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import CheckResult, PlanStep, Verdict

TITLES = {"KB828753": "Programs quit after the file server restarts", "KB938475": "64 SMB requests",
          "KB977381": "DFSR stops responding", "KB253729": "Persistent connection unavailable"}


def verdict(article, status):
    ok = status == "compliant"
    checks = [CheckResult("file:%SystemRoot%\\\\system32\\\\drivers\\\\mrxsmb.sys", "file", ok,
                          ">= 5.1.2600.1276", "5.1.2600.1276" if ok else "5.1.2600.1106")]
    plan = [] if ok else [PlanStep.from_dict({"action": "install_package",
                                              "description": "install the " + article + " package"})]
    return Verdict(article, TITLES[article], status, "test verdict", checks, plan, restart_required=not ok).to_dict()


class ActionModule(ActionBase):
    """Test double of kbfix.windows.kb_article: the verdict comes from the task arguments."""

    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        args = self._task.args
        if args.get("outcome") == "unreachable":
            return {"unreachable": True, "msg": "WinRM connection refused"}
        if args.get("outcome") == "fail":
            return {"failed": True, "msg": "spec <b>broken</b>", "article": args["article"]}
        result = {"changed": "before" in args, "state": "enforced" if "before" in args else "audited",
                  "verdicts": [verdict(args["article"], args["status"])], "restart_required": False}
        if "before" in args:
            result["verdicts_before"] = [verdict(args["article"], args["before"])]
        return result
'''

INVENTORY = f"""
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {sys.executable}
    ansible_become_password: {SECRET}
    db_password: {SECRET}
  hosts:
    xp-01: {{kb828753: noncompliant}}
    xp-02: {{kb828753: compliant}}
    'evil<b>&host': {{kb828753: compliant}}
    nt4-01: {{kb828753: noncompliant}}
    dropped-01: {{kb828753: compliant}}
    offline-01:
      kb828753: compliant
      ansible_connection: ssh
      ansible_host: 127.0.0.1
      ansible_port: 1
      ansible_password: {SECRET}
"""

PLAYBOOK = """
- name: Audit and remediate
  hosts: all
  gather_facts: false
  collections: [kbfix.windows]
  vars:
    verdicts: [{article: KB999999, title: not from kb_article, status: noncompliant}]
  tasks:
    - name: Reach the host
      ansible.builtin.ping:
      when: inventory_hostname == 'offline-01'

    - name: Fail before any article
      ansible.builtin.fail:
        msg: prerequisite missing
      when: inventory_hostname == 'dropped-01'

    - name: Audit KB828753
      kbfix.windows.kb_article:
        article: KB828753
        status: "{{ kb828753 }}"
        outcome: "{{ 'unreachable' if inventory_hostname == 'nt4-01' else 'ok' }}"

    - name: Enforce KB828753
      kbfix.windows.kb_article:
        article: KB828753
        status: compliant
        before: noncompliant
      when: kb828753 == 'noncompliant'

    - name: A task that is not kb_article but returns verdicts
      ansible.builtin.debug:
        var: verdicts

    - name: Audit two articles (short name, loop)
      kb_article:
        article: "{{ item }}"
        status: "{{ 'reboot_pending' if item == 'KB977381' else 'compliant' }}"
        outcome: "{{ 'fail' if (inventory_hostname == 'xp-02' and item == 'KB977381') else 'ok' }}"
      loop: [KB938475, KB977381]
      ignore_errors: true

    - name: Audit KB253729 (fails on one host)
      kb_article:
        article: KB253729
        status: not_applicable
        outcome: "{{ 'fail' if inventory_hostname == 'evil<b>&host' else 'ok' }}"
      ignore_errors: true

# No collections keyword: the short name resolves to the playbook-adjacent action_plugins/kb_article.py
# (ansible.legacy.kb_article), the way a user's own wrapper would; the callback accepts the short name.
- name: Re-audit in check mode
  hosts: xp-02
  gather_facts: false
  tasks:
    - name: Re-audit KB938475
      kb_article:
        article: KB938475
        status: noncompliant
      check_mode: true
"""


def _test_collection(root: Path) -> Path:
    collection = root / "ansible_collections" / "kbfix" / "windows"
    (collection / "plugins" / "action").mkdir(parents=True)
    (collection / "meta").mkdir()
    (collection / "meta" / "runtime.yml").write_text("requires_ansible: '>=2.19.0'\n")
    (collection / "plugins" / "callback").symlink_to(REPO / "plugins" / "callback", target_is_directory=True)
    (collection / "plugins" / "plugin_utils").symlink_to(REPO / "plugins" / "plugin_utils",
                                                         target_is_directory=True)
    (collection / "plugins" / "action" / "kb_article.py").write_text(textwrap.dedent(TEST_ACTION))
    return root


def _env(tmp: Path, collections: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "KBFIX_"))}
    env.update({
        "PYTHONPATH": "", "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_HOME": str(tmp / "home"), "ANSIBLE_LOCAL_TEMP": str(tmp / "local"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "false", "ANSIBLE_DEPRECATION_WARNINGS": "false",
    })
    env.update(extra)
    return env


def _playbook(tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "inventory.yml", "site.yml"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def project(tmp: Path) -> Path:
    """The inventory, the playbook and its adjacent action plugin in ``tmp``; returns the collections path."""
    collections = _test_collection(tmp / "collections")
    (tmp / "inventory.yml").write_text(INVENTORY)
    (tmp / "site.yml").write_text(PLAYBOOK)
    (tmp / "action_plugins").mkdir()
    (tmp / "action_plugins" / "kb_article.py").symlink_to(
        collections / "ansible_collections" / "kbfix" / "windows" / "plugins" / "action" / "kb_article.py")
    return collections


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("playbook")
    collections = project(tmp)
    proc = _playbook(tmp, _env(
        tmp, collections, ANSIBLE_CALLBACKS_ENABLED="kbfix.windows.compliance_report",
        KBFIX_REPORT_DIR=str(tmp / "out"), KBFIX_REPORT_FORMATS="json,junit,html",
        ANSIBLE_SSH_ARGS="-o ConnectTimeout=5", ANSIBLE_FORKS="6"))
    out = tmp / "out"
    return {"proc": proc, "out": out, "files": sorted(p.name for p in out.iterdir()) if out.exists() else []}


def _report(run: dict[str, Any]) -> dict[str, Any]:
    assert run["files"], run["proc"].stdout + run["proc"].stderr
    return json.loads((run["out"] / "kbfix-report.json").read_text())


def _statuses(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(h["name"], a): cell["status"] for h in report["hosts"] for a, cell in h["articles"].items()}


pytestmark = pytest.mark.slow


def test_writes_three_files_and_keeps_normal_stdout(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert run["files"] == ["kbfix-report.html", "kbfix-report.json", "kbfix-report.xml"], proc.stderr
    # aggregate callback: the default stdout callback still prints the run (molecule relies on it)
    assert "PLAY RECAP" in proc.stdout
    assert "TASK [Audit KB828753]" in proc.stdout
    assert proc.returncode != 0  # offline-01 unreachable and dropped-01 failed: ansible says so too


def test_collects_only_kb_article_results(run: dict[str, Any]) -> None:
    report = _report(run)
    assert [a["article"] for a in report["articles"]] == ["KB253729", "KB828753", "KB938475", "KB977381"]
    assert "KB999999" not in json.dumps(report)  # the debug task's "verdicts" is not a kb_article result
    # the second play's task ran in check mode, so some results are predictions
    assert report["run"] == {"playbooks": ["site.yml"], "check_mode": True}


def test_statuses_per_host_and_article(run: dict[str, Any]) -> None:
    report = _report(run)
    statuses = _statuses(report)
    assert statuses[("xp-01", "KB828753")] == "compliant"
    assert statuses[("xp-01", "KB977381")] == "reboot_pending"
    assert statuses[("xp-02", "KB938475")] == "noncompliant"  # re-audit by the legacy short name
    assert statuses[("evil<b>&host", "KB253729")] == "failed"
    assert statuses[("xp-02", "KB977381")] == "failed"  # one failed loop item
    assert statuses[("xp-01", "KB253729")] == "not_applicable"
    hosts = {h["name"]: h for h in report["hosts"]}
    assert set(hosts) == {"xp-01", "xp-02", "evil<b>&host", "nt4-01", "dropped-01", "offline-01"}
    assert hosts["evil<b>&host"]["articles"]["KB253729"]["problem"]["message"] == "spec <b>broken</b>"
    assert hosts["evil<b>&host"]["articles"]["KB253729"]["problem"]["task"] == "Audit KB253729 (fails on one host)"


def test_before_is_the_first_state_seen(run: dict[str, Any]) -> None:
    hosts = {h["name"]: h for h in _report(run)["hosts"]}
    enforced = hosts["xp-01"]["articles"]["KB828753"]
    assert enforced["before"]["status"] == "noncompliant"
    assert enforced["after"]["status"] == "compliant"
    assert hosts["xp-02"]["articles"]["KB828753"]["before"] is None  # seen once
    # audited compliant by the collection's action, then noncompliant by the legacy short name: last wins
    reaudit = hosts["xp-02"]["articles"]["KB938475"]
    assert (reaudit["before"]["status"], reaudit["after"]["status"]) == ("compliant", "noncompliant")


def test_unreachable_and_dropped_hosts_are_reported(run: dict[str, Any]) -> None:
    hosts = {h["name"]: h for h in _report(run)["hosts"]}
    offline = hosts["offline-01"]
    assert offline["status"] == "unreachable"
    assert offline["unreachable"]["task"] == "Reach the host"
    assert {c["status"] for c in offline["articles"].values()} == {"unreachable"}
    nt4 = hosts["nt4-01"]  # the kb_article action itself said unreachable
    assert nt4["status"] == "unreachable"
    assert nt4["unreachable"]["message"] == "WinRM connection refused"
    assert nt4["articles"]["KB828753"]["status"] == "unreachable"
    dropped = hosts["dropped-01"]
    assert dropped["status"] == "failed"
    assert dropped["failures"] == [{"kind": "failed", "message": "prerequisite missing",
                                    "task": "Fail before any article"}]


def test_junit_and_html_agree_with_json(run: dict[str, Any]) -> None:
    report = _report(run)
    root = ET.parse(run["out"] / "kbfix-report.xml").getroot()
    counted = report["summary"]["results_by_status"]
    assert int(root.get("tests", "-1")) == sum(counted.values())
    assert int(root.get("failures", "-1")) == counted["noncompliant"] + counted["reboot_pending"]
    assert int(root.get("errors", "-1")) == counted["unknown"] + counted["failed"] + counted["unreachable"]
    assert int(root.get("skipped", "-1")) == counted["not_applicable"]
    page = (run["out"] / "kbfix-report.html").read_text()
    assert "evil&lt;b&gt;&amp;host" in page
    assert "evil<b>&host" not in page
    assert grid_cells(html_elements(page))[("offline-01", "KB828753")] == "unreachable"


def test_no_secret_or_host_var_in_any_file(run: dict[str, Any]) -> None:
    for name in run["files"]:
        text = (run["out"] / name).read_text()
        assert SECRET not in text, name
        assert "ansible_password" not in text and "db_password" not in text, name


def test_options_from_ansible_cfg(tmp_path: Path) -> None:
    collections = _test_collection(tmp_path / "collections")
    (tmp_path / "inventory.yml").write_text("all:\n  hosts:\n    xp-01: {ansible_connection: local}\n")
    (tmp_path / "site.yml").write_text(textwrap.dedent("""
        - name: Audit
          hosts: all
          gather_facts: false
          tasks:
            - name: Audit KB828753
              kbfix.windows.kb_article: {article: KB828753, status: noncompliant}
        """))
    (tmp_path / "ansible.cfg").write_text(textwrap.dedent("""
        [defaults]
        callbacks_enabled = kbfix.windows.compliance_report
        [callback_compliance_report]
        output_dir = ini-out
        formats = json
        """))
    proc = _playbook(tmp_path, _env(tmp_path, collections, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "ini-out"  # relative to the ansible.cfg directory
    assert sorted(p.name for p in out.iterdir()) == ["kbfix-report.json"]
    report = json.loads((out / "kbfix-report.json").read_text())
    assert report["run"]["check_mode"] is False
    assert report["hosts"][0]["articles"]["KB828753"]["status"] == "noncompliant"
    assert report["summary"]["fleet_compliant"] is False
