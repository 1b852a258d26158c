# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The six modules on an NT 4.0 host over SMB (winsim's NT 4.0 face), through real ansible-playbook runs: the
same tasks as on WinRM hosts, no transport named in any of them. KB253729 is audited, planned in check mode
with a diff, enforced (Q253729i.exe staged through ADMIN$, run by a one-shot service), restarted over
``\\pipe\\winreg`` and audited again; enforcing once more changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import PlaybookRun, run_playbook

from winsim import packages

ROLES = Path(__file__).resolve().parents[3] / "roles"
SPEC = str(ROLES / "kb253729" / "files" / "kb253729.yml")
MPR = "C:\\WINNT\\system32\\mpr.dll"
HOTFIX_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix\Q253729"
SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
PASSWORD = "W1nsim!Pass"  # winsim's Administrator password (profiles/_base.yml)

pytestmark = pytest.mark.slow

MODULES = r"""
- hosts: nt4
  gather_facts: false
  tasks:
    - name: facts
      kbfix.windows.facts:
    - name: mpr.dll
      kbfix.windows.file_version:
        paths: '%SystemRoot%\system32\Mpr.dll'
        size: 60176
        report_only: true
    - name: hotfix record
      kbfix.windows.hotfix:
        id: Q242294  # the profile's hotfix, recorded as NT 4.0's hotfix.exe does (...\Hotfix\Q242294)
      check_mode: true
    - name: set a value
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\kbfix-test
        name: Applied
        type: dword
        data: 1
    - name: set it again
      kbfix.windows.registry_value:
        path: HKLM\SOFTWARE\kbfix-test
        name: Applied
        type: dword
        data: 1
"""

ENFORCE = """
- hosts: nt4
  gather_facts: false
  tasks:
    - name: facts
      kbfix.windows.facts:
    - name: enforce
      kbfix.windows.kb_article:
        articles: ["{{ spec }}"]
        state: enforced
        package_source: "{{ packages }}"
      register: enforced
    - name: restart
      kbfix.windows.reboot:
      when: enforced.restart_required
    - name: audit
      kbfix.windows.kb_article:
        articles: ["{{ spec }}"]
"""


def _verdict(run: PlaybookRun, task: str) -> dict[str, Any]:
    result = run.one(task, "nt4").result
    return dict(result["verdicts"][0])


def _leftovers(machine: Any) -> list[str]:
    """Files and services the transport puts on the host for a command (kbfix-<random>.*, the package)."""
    temp = machine.fs.listdir("C:\\WINNT\\Temp") if machine.fs.exists("C:\\WINNT\\Temp") else []
    services = [k.name for k in machine.registry.open(SERVICES).subkeys.values() if k.name.lower().startswith("kbfix-")]
    return [e for e in temp if "kbfix-" in e.lower() or "q253729" in e.lower()] + services


def test_modules_on_nt4_over_smb(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86")])
    run = run_playbook(MODULES, inventory, tmp_path / "modules", diff=True)
    assert run.rc == 0, run.output[-4000:]
    facts = run.one("facts", "nt4").result["ansible_facts"]
    assert facts["kbfix_os"]["version"] == "4.0.1381" and facts["kbfix_winrm_version"] is None
    mpr = run.one("mpr.dll", "nt4").result["files"][0]
    assert mpr["expanded_path"].casefold() == MPR.casefold() and mpr["size"] == 59664 and not mpr["compliant"]
    assert mpr["version"] == "4.0.1381.33361"  # read from the PE version resource over the share
    hotfix = run.one("hotfix record", "nt4").result
    assert hotfix["installed"] is True and not hotfix["changed"], hotfix
    first, again = run.one("set a value", "nt4"), run.one("set it again", "nt4")
    assert first.status == "changed" and first.result["diff"]["after"] and again.status == "ok"
    assert fleet.hosts["nt4"].host().registry.get(r"HKLM\SOFTWARE\kbfix-test", "Applied").data == 1


def test_kb253729_check_mode_enforce_restart_idempotence(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("nt4", "nt4-tse-sp6-x86")])
    ep = fleet.hosts["nt4"]
    package_dir = tmp_path / "packages"
    packages.write_package("Q253729i.exe", package_dir)
    extra = {"spec": SPEC, "packages": str(package_dir)}
    boot_id = ep.host().boot_id

    # Check mode with diff: the plan, nothing staged, run or restarted.
    check = run_playbook(ENFORCE, inventory, tmp_path / "check", check=True, diff=True, extra_vars=extra)
    assert check.rc == 0, check.output[-4000:]
    planned = check.one("enforce", "nt4").result
    assert planned["changed"] and [c["action"] for c in planned["changes"]] == ["install_package"]
    assert all(c["planned"] for c in planned["changes"])
    assert "diff" in planned
    machine = ep.host()
    assert machine.fs.entry(MPR).size == 59664 and machine.boot_id == boot_id
    assert machine.registry.open(HOTFIX_KEY) is None
    assert _leftovers(machine) == []

    # Enforce: staged through ADMIN$, run through svcctl, restarted through winreg, audited compliant.
    enforce = run_playbook(ENFORCE, inventory, tmp_path / "enforce", diff=True, extra_vars=extra, verbosity=5)
    assert enforce.rc == 0, enforce.output[-4000:]
    change = enforce.one("enforce", "nt4").result
    assert change["changed"] and change["restart_required"]
    assert change["changes"][0]["command"].endswith("Q253729i.exe -m -q -z") and change["changes"][0]["exit_code"] == 0
    assert enforce.one("restart", "nt4").result["rebooted"]
    assert _verdict(enforce, "audit")["status"] == "compliant"
    machine = ep.host()
    assert machine.fs.entry(MPR).size == 60176
    assert machine.boot_id == boot_id + 1
    assert machine.registry.open(HOTFIX_KEY) is not None
    assert _leftovers(machine) == []  # the package, the batch, its output and the service are gone
    assert PASSWORD not in enforce.output  # -vvvvv: payloads logged, credentials not
    assert "BaseRegQueryValue" in enforce.output  # the verbosity really reached the transport's operations

    # Idempotence: a second run changes nothing and does not restart.
    again = run_playbook(ENFORCE, inventory, tmp_path / "again", extra_vars=extra)
    assert again.rc == 0, again.output[-4000:]
    assert not again.one("enforce", "nt4").result["changed"]
    assert again.one("restart", "nt4").status == "skipped"
    assert ep.host().boot_id == boot_id + 1


def test_netbios_session_on_the_faces_netbios_port(start_fleet: Any, tmp_path: Path) -> None:
    # impacket sends a NetBIOS session request only to port 139; kbfix_smb_session: netbios sends it on any
    # port (a forwarded 139, the face's NetBIOS listener), and the face hangs up on SMB sent without one.
    from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import HostUnreachableError
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import open_for

    fleet, _ = start_fleet([("nt4", "nt4-tse-sp6-x86")])
    ep = fleet.hosts["nt4"]
    base = {"ansible_host": ep.address, "ansible_user": ep.username, "ansible_password": ep.password,
            "kbfix_smb_port": ep.smb_netbios_port, "kbfix_smb_netbios_name": "NT4", "kbfix_smb_retries": 0}
    transport = open_for({**base, "kbfix_smb_session": "netbios"}, lambda level, message: None)
    try:
        assert transport.os_facts().version == "4.0.1381"
        assert transport.requests_by_name()["NetBIOS session request"] == 1
    finally:
        transport.close()
    direct = open_for({**base, "kbfix_smb_session": "direct"}, lambda level, message: None)
    with pytest.raises(HostUnreachableError):
        direct.key_exists("HKLM\\SOFTWARE")
    direct.close()
