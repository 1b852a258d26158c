# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input that used to be found only after the host was touched, through real ansible-playbook runs against
winsim (WinRM and the NT 4.0 SMB face). Every refusal names the field the user wrote, happens before any
request (winsim's counters stay at 0, or no process ran) and leaves nothing behind on the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import run_playbook

from winsim import packages

pytestmark = pytest.mark.slow

ROLES = Path(__file__).resolve().parents[3] / "roles"
KB828753 = str(ROLES / "kb828753" / "files" / "kb828753.yml")
SECRET = "SecretListPw-4471"


def no_requests(ep: Any) -> None:
    counters = ep.counters()
    assert (counters["requests"], counters["auth_requests"]) == (0, 0), counters


def failures(run: Any, host: str) -> dict[str, dict[str, Any]]:
    results = {r.task: r for r in run.results if r.host == host and r.status != "skipped"}
    assert all(r.status == "failed" for r in results.values()), {t: r.status for t, r in results.items()}
    return {task: r.result for task, r in results.items()}


# --- reg.exe lines and '.' / '..' key names: refused before the first request, no key left behind ----------


REGISTRY = r"""
- hosts: all
  gather_facts: false
  tasks:
    - name: a quote in a REG_NONE name
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\kbfix\cmdq', name: 'a"b', type: none}
      when: kbfix_transport is not defined  # over SMB winreg writes REG_NONE itself
      ignore_errors: true
    - name: a variable in a REG_NONE name
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\kbfix\cmdq', name: '%PATH%', type: none}
      when: kbfix_transport is not defined  # over SMB winreg writes REG_NONE itself
      ignore_errors: true
    - name: a variable in the key of a REG_NONE value
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\kbfix\%PATH%', name: n, type: none}
      when: kbfix_transport is not defined  # over SMB winreg writes REG_NONE itself
      ignore_errors: true
    - name: a quote in an empty multistring's name
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\kbfix\cmdq', name: 'a"b', type: multistring, data: []}
      when: kbfix_transport is not defined  # over SMB winreg writes REG_NONE itself
      ignore_errors: true
    - name: dot-dot segments
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\..\..\SYSTEM\kbfixtrav', name: x, data: y}
      ignore_errors: true
    - name: a dot segment
      kbfix.windows.registry_value: {path: 'HKLM\SOFTWARE\kbfix\.\x', name: x, data: y}
      ignore_errors: true
"""
REGISTRY_FIELDS = {"a quote in a REG_NONE name": "name", "a variable in a REG_NONE name": "name",
                   "a variable in the key of a REG_NONE value": "path",
                   "a quote in an empty multistring's name": "name", "dot-dot segments": "path",
                   "a dot segment": "path"}


def test_registry_input_for_reg_exe_and_dot_segments_is_refused_before_any_request(
        start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp2", "xp-sp2-x86"), ("nt4", "nt4-tse-sp6-x86")])
    run = run_playbook(REGISTRY, inventory, tmp_path / "run")
    for host in ("xp2", "nt4"):
        failed = failures(run, host)
        expected = REGISTRY_FIELDS if host == "xp2" else {t: f for t, f in REGISTRY_FIELDS.items() if "dot" in t}
        for task, field in expected.items():
            assert failed[task]["argument"] == field, (host, task, failed[task]["msg"])
        assert "arguments[" not in json.dumps(failed)
        ep = fleet.hosts[host]
        no_requests(ep)
        registry = ep.host().registry
        assert registry.open(r"HKLM\SOFTWARE\kbfix") is None and registry.open(r"HKLM\SYSTEM\kbfixtrav") is None
        assert registry.open(r"HKLM\SOFTWARE\..") is None


# --- connection settings: checked before the first connection, for both transports ----------------------------


CONNECTION = r"""
- hosts: all
  gather_facts: false
  tasks:
    - name: CR LF in the WinRM path
      kbfix.windows.facts:
      vars: {ansible_winrm_path: "/wsman\r\nX-Probe: 1"}
      when: kbfix_transport is not defined
      ignore_errors: true
    - name: CR LF in the host
      kbfix.windows.facts:
      vars: {ansible_host: "127.0.0.1\r\nX-Probe: 1"}
      ignore_errors: true
    - name: a control character in the user
      kbfix.windows.facts:
      vars: {ansible_user: "Admin\tistrator"}
      ignore_errors: true
    - name: a port out of range
      kbfix.windows.facts:
      vars: {ansible_port: 70000}
      when: kbfix_transport is not defined
      ignore_errors: true
"""


def test_connection_settings_are_checked_before_the_first_connection(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp2", "xp-sp2-x86"), ("nt4", "nt4-tse-sp6-x86")])
    run = run_playbook(CONNECTION, inventory, tmp_path / "run")
    xp = failures(run, "xp2")
    assert xp["CR LF in the WinRM path"]["argument"] == "ansible_winrm_path"
    assert xp["CR LF in the host"]["argument"] == "ansible_host"
    assert xp["a control character in the user"]["argument"] == "ansible_user"
    assert xp["a port out of range"]["argument"] == "ansible_port"
    nt4 = {t: r.result for t, r in ((r.task, r) for r in run.results if r.host == "nt4") if r.status == "failed"}
    assert nt4["CR LF in the host"]["argument"] == "ansible_host"
    assert nt4["a control character in the user"]["argument"] == "ansible_user"
    assert not [r for r in run.results if r.result.get("unreachable")]
    assert "Traceback" not in run.output and "URL can't contain" not in run.output
    for host in ("xp2", "nt4"):
        no_requests(fleet.hosts[host])


# --- kb_article: every article's plan checked before the first write --------------------------------------


ENFORCE = r"""
- hosts: all
  gather_facts: false
  tasks:
    - name: enforce with a value the host cannot take
      kbfix.windows.kb_article:
        articles: ['{{ spec }}']
        state: enforced
        package_source: '{{ packages }}'
        variables:
          reconnectable_servers: "{{ ['fs01', 'x' * 300000] }}"
      ignore_errors: true
    - name: CR LF inside a server name
      kbfix.windows.kb_article:
        articles: ['{{ spec }}']
        variables:
          reconnectable_servers: ["fs01\r\nfs02"]
      ignore_errors: true
"""


def test_half_a_remediation_is_refused_before_the_install(start_fleet: Any, tmp_path: Path) -> None:
    share = tmp_path / "packages"
    share.mkdir()
    packages.write_package("WindowsXP-KB828753-x86-ENU.exe", share)
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86")])
    ep = fleet.hosts["xp1"]
    run = run_playbook(ENFORCE, inventory, tmp_path / "run", extra_vars={"spec": KB828753, "packages": str(share)})
    failed = failures(run, "xp1")
    big = failed["enforce with a value the host cannot take"]
    assert big["argument"] == "variables.reconnectable_servers", big["msg"][:500]
    assert "MaxEnvelopeSizekb" in big["msg"] and big["changes"] == [] and big["changed"] is False
    assert [v["status"] for v in big["verdicts_before"]] == ["noncompliant"]
    crlf = failed["CR LF inside a server name"]
    assert crlf["argument"] == "variables.reconnectable_servers[0]" and crlf["requests"] == 0
    # Only the audit's reads went out: no shell, no upload, no installer, no write.
    counters = ep.counters()
    assert counters["by_action"].get("Command", 0) == 0 and counters["shells_open"] == 0, counters
    host = ep.host()
    assert host.file_version(r"%SystemRoot%\system32\drivers\mrxsmb.sys").startswith("5.1.2600.1106")
    assert host.registry.get(r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters",
                             "ReconnectableServers") is None


# --- a required article variable where the article does not apply; a password in ansible-core's message ------


MISSING = r"""
- hosts: all
  gather_facts: false
  tasks:
    - name: KB938475 without its credits
      kbfix.windows.kb_article:
        articles: [KB938475]
      ignore_errors: true
"""


def test_a_required_variable_is_required_where_the_article_applies(start_fleet: Any, tmp_path: Path) -> None:
    # The documented rule (playbooks/audit.yml, the role's argument spec): needed where the article applies.
    _fleet, inventory = start_fleet([("xp2", "xp-sp2-x86"), ("vista", "vista-rtm-x86")])
    run = run_playbook(MISSING, inventory, tmp_path / "run")
    xp = run.one("KB938475 without its credits", "xp2")
    assert xp.status == "ok" and [v["status"] for v in xp.result["verdicts"]] == ["not_applicable"], xp.result
    vista = run.one("KB938475 without its credits", "vista")
    assert vista.status == "failed" and vista.result["argument"] == "kb938475_asynchronous_credits"


FACTS = """
- hosts: all
  gather_facts: false
  tasks:
    - name: facts
      kbfix.windows.facts:
"""


def test_a_password_quoted_by_ansible_core_never_reaches_the_report(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp2", "xp-sp2-x86")])
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    for group in data["all"].get("children", {}).values():
        for variables in (group.get("hosts") or {}).values():
            variables["ansible_password"] = [SECRET]
    listed = tmp_path / "inventory.yml"
    listed.write_text(yaml.safe_dump(data), encoding="utf-8")
    report = tmp_path / "report"
    run = run_playbook(FACTS, listed, tmp_path / "run",
                       env={"ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report",
                            "KBFIX_REPORT_DIR": str(report)})
    assert run.one("facts", "xp2").status == "failed"
    written = [p for p in report.rglob("*") if p.is_file()]
    assert written and all(SECRET not in p.read_text(encoding="utf-8", errors="replace") for p in written)
    assert "xp2" in (report / "kbfix-report.json").read_text(encoding="utf-8")
    no_requests(fleet.hosts["xp2"])
