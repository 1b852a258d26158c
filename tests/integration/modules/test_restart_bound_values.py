# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart-bound registry values (``restart: true``) written after the last boot: the service has not read
them yet. Over SMB the remote registry gives the key's last-write time (BaseRegQueryInfoKey), so such a value
is ``reboot_pending`` until the host restarts; over WinRM nothing reachable without PowerShell gives it, and the
verdict says so instead of claiming plain compliance. Real ansible-playbook runs against winsim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import run_playbook

pytestmark = pytest.mark.slow

ROLES = Path(__file__).resolve().parents[3] / "roles"
PARAMETERS = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
HOTFIX = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix\Q242294"  # the NT 4.0 profile's hotfix
# An article for NT 4.0 whose only decisive check is one restart-bound value (the hotfix record is the
# profile's own, present on every NT 4.0 host of winsim).
SPEC: dict[str, Any] = {
    "schema": 1,
    "article": {"id": "KB242294", "title": "restart-bound value", "url": "https://support.microsoft.com/kb/242294",
                "summary": "A value the workstation service reads when it starts."},
    "applicability": [{"id": "nt4", "name": "Windows NT 4.0", "version": "4.0.1381", "product_types": [1, 2, 3],
                       "architectures": ["x86"]}],
    "hotfix": {"ids": ["Q242294"], "records": [{"os": "nt4", "key": HOTFIX}]},
    "packages": [{"os": "nt4", "architectures": ["x86"], "file": "Q242294i.exe", "installer": "hotfix",
                  "arguments": ["-m", "-q", "-z"], "exit_codes": {0: "success"}, "restart": True}],
    "files": [{"table": "nt4", "name": "Mpr.dll", "dir": "%SystemRoot%\\system32", "os": "nt4",
               "architectures": ["x86"], "check": "info", "platform": "none"}],
    "registry": [{"key": PARAMETERS, "name": "KbfixReconnect", "type": "dword", "value": 7, "restart": True,
                  "description": "Read by the workstation service when it starts."}],
}

AUDIT_SMB = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: written now, after the boot
      kbfix.windows.registry_value: {{path: '{PARAMETERS}', name: KbfixReconnect, type: dword, data: 7}}
      when: inventory_hostname == 'fresh'
    - name: audit
      kbfix.windows.kb_article:
        articles: [restart_bound.yml]
    - name: restart
      kbfix.windows.reboot: {{mode: always, pre_reboot_delay: 0}}
      when: inventory_hostname == 'fresh'
    - name: audit after the restart
      kbfix.windows.kb_article:
        articles: [restart_bound.yml]
"""


def check(result: dict[str, Any]) -> dict[str, Any]:
    [verdict] = result["verdicts"]
    [found] = [c for c in verdict["checks"] if c["id"].endswith("KbfixReconnect")]
    return {**found, "status": verdict["status"], "reason": verdict["reason"]}


def test_over_smb_a_value_written_after_the_last_boot_waits_for_the_restart(start_fleet: Any,
                                                                             tmp_path: Path) -> None:
    before_boot = {"registry": {PARAMETERS: {"KbfixReconnect": ["dword", 7]}}, "reboot_seconds": 1}
    fleet, inventory = start_fleet([("fresh", "nt4-tse-sp6-x86", {"reboot_seconds": 1}),
                                    ("settled", "nt4-tse-sp6-x86", before_boot)])
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "restart_bound.yml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    run = run_playbook(AUDIT_SMB, inventory, workdir)
    fresh = check(run.one("audit", "fresh").result)
    assert fresh["passed"] is True and fresh["status"] == "reboot_pending", fresh
    assert "after the last boot" in fresh["message"] and "written after the last boot" in fresh["reason"]
    assert run.one("audit", "fresh").result["restart_required"] is True
    settled = check(run.one("audit", "settled").result)
    assert settled["status"] == "compliant" and "before the last boot" in settled["message"], settled
    after = check(run.one("audit after the restart", "fresh").result)
    assert after["status"] == "compliant" and "before the last boot" in after["message"], after
    assert fleet.hosts["fresh"].host().boot_id == 2


AUDIT_WINRM = """
- hosts: all
  gather_facts: false
  tasks:
    - name: audit
      kbfix.windows.kb_article:
        articles: [KB828753]
"""


def test_over_winrm_the_verdict_says_it_cannot_tell(start_fleet: Any, tmp_path: Path) -> None:
    values = {PARAMETERS: {"ReconnectableServers": ["multistring", ["fs01"]]}}
    _fleet, inventory = start_fleet([("xp", "xp-sp1-x86", {"installed": ["KB828753"], "registry": values})])
    run = run_playbook(AUDIT_WINRM, inventory, tmp_path / "run",
                       extra_vars={"kb828753_reconnectable_servers": ["fs01"]})
    result = run.one("audit", "xp").result
    [verdict] = result["verdicts"]
    assert verdict["status"] == "compliant", verdict
    assert "cannot be told" in verdict["reason"] and "ReconnectableServers" in verdict["reason"]
    [servers] = [c for c in verdict["checks"] if c["id"].endswith("ReconnectableServers")]
    assert "no readable write time" in servers["message"]
