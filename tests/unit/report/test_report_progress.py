# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a person sees from the compliance_report callback while a playbook runs: per-host progress lines and
the end-of-play summary, and that they stay out of a JSON stdout callback's output and go with
KBFIX_PROGRESS=false. Same real ansible-playbook run and test collection as test_report_callback.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from test_report_callback import _env, _playbook
from test_report_callback import project as make_project

pytestmark = pytest.mark.slow

# A stdout callback named like ansible.posix.json (short name "json"): one JSON document on stdout.
JSON_STDOUT = '''
import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.results = []

    def v2_runner_on_ok(self, result):
        self.results.append({"host": result._host.get_name(), "task": result._task.get_name()})

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps({"results": self.results}))
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("progress")
    collections = make_project(tmp)
    (tmp / "stdout_plugins").mkdir()
    (tmp / "stdout_plugins" / "json.py").write_text(JSON_STDOUT)
    return {"tmp": tmp, "collections": collections}


def _run(project: dict[str, Any], **extra: str) -> str:
    tmp = project["tmp"]
    proc = _playbook(tmp, _env(tmp, project["collections"], ANSIBLE_CALLBACKS_ENABLED="kbfix.windows.compliance_report",
                               KBFIX_REPORT_DIR=str(tmp / "out"), ANSIBLE_SSH_ARGS="-o ConnectTimeout=5",
                               ANSIBLE_FORKS="6", **extra))
    assert proc.returncode in (2, 4), proc.stdout + proc.stderr  # a failed and an unreachable host
    return proc.stdout


def test_progress_lines_and_a_summary_naming_each_noncompliant_host(project: dict[str, Any]) -> None:
    out = _run(project)
    # the step each host starts, then each article's verdict (and the verdict before, when it changed)
    assert "kbfix [xp-01] Audit KB828753 ..." in out
    assert re.search(r"^kbfix \[xp-01\] KB828753 noncompliant: test verdict$", out, re.M), out
    assert re.search(r"^kbfix \[xp-01\] KB828753 noncompliant -> compliant: test verdict$", out, re.M), out
    summary = out.split("KBFIX COMPLIANCE SUMMARY", 1)[1]
    assert "host(s) compliant or not applicable" in summary
    # not compliant: each host named with its failing checks or the problem that kept it from a verdict
    assert re.search(r"^xp-02: failed$", summary, re.M), summary
    assert re.search(r"^  KB977381 failed: task failed \(task 'Audit two articles", summary, re.M), summary
    assert re.search(r"^nt4-01: unreachable$", summary, re.M), summary
    assert re.search(r"^dropped-01: failed\n  KB\d+ failed: task failed \(task 'Fail before any article'\): "
                     r"prerequisite missing$", summary, re.M), summary
    # the enforced article is compliant in the end and not listed; the host's other article still is
    assert re.search(r"^xp-01: reboot_pending\n  KB977381 reboot_pending: .*expected .*found ", summary, re.M)
    assert not re.search(r"^  KB828753 ", summary.split("xp-01:", 1)[1].split("\nxp-02:", 1)[0], re.M)
    # an unreachable host's reason is said once per article, not once more for the host
    assert summary.count("Failed to connect to the host via ssh") == 4, summary
    assert "hunter2" not in out


def test_no_progress_with_a_json_stdout_callback_or_when_turned_off(project: dict[str, Any]) -> None:
    as_json = _run(project, ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_CALLBACK_PLUGINS=str(project["tmp"] / "stdout_plugins"))
    data = json.loads(as_json)  # nothing of ours in between: stdout is one JSON document
    assert {"host": "xp-01", "task": "Audit KB828753"} in data["results"]
    off = _run(project, KBFIX_PROGRESS="false")
    assert "PLAY RECAP" in off and "kbfix [" not in off and "KBFIX COMPLIANCE SUMMARY" not in off
