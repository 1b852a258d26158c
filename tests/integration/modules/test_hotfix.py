# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.hotfix through real ansible-playbook runs against simulated Windows hosts (winsim)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

from winsim import packages
from winsim.testing import Endpoint

ROLES = Path(__file__).resolve().parents[3] / "roles"
SHARE = "\\\\fs01\\updates"

pytestmark = pytest.mark.slow

# host -> (profile, package file, where the task takes it from)
HOSTS = {
    "r2008": ("2008r2-rtm-x64", "Windows6.1-KB977381-x64.msu", "controller"),
    "s2008": ("2008-sp2-x64", "Windows6.0-KB977381-x64.msu", "unc"),
    "xp1": ("xp-sp1-x86", "WindowsXP-KB828753-x86-ENU.exe", "controller"),
    "vista": ("vista-rtm-x64", "Windows6.0-KB938475-x64.msu", "controller"),
}
IDS = {"r2008": "KB977381", "s2008": "KB977381", "xp1": "KB828753", "vista": "KB938475"}


def writes(ep: Endpoint) -> dict[str, int]:
    return {k: v for k, v in ep.counters()["by_action"].items()
            if k.startswith(("Invoke:Set", "Invoke:CreateKey", "Invoke:Delete")) or k == "Command"}


def test_hotfix_install_detect_refuse_remove(start_fleet: Any, tmp_path: Path) -> None:
    package_dir = tmp_path / "packages"
    for name in packages.package_names():
        packages.write_package(name, package_dir)
    fleet, inventory = start_fleet([
        (host, profile, {"shares": {SHARE: str(package_dir)}} if kind == "unc" else {})
        for host, (profile, _, kind) in HOSTS.items()])
    sources = {host: (f"{SHARE}\\{name}" if kind == "unc" else str(package_dir / name))
               for host, (_, name, kind) in HOSTS.items()}
    workdir = tmp_path / "run"
    variables = {"ids": IDS, "sources": sources, "kb828753_spec": str(ROLES / "kb828753/files/kb828753.yml"),
                 "wrong_package": str(package_dir / "Windows6.1-KB977381-x64.msu"),
                 "not_for_vista": str(package_dir / "Windows6.0-KB977381-x64.msu")}
    for ep in fleet.hosts.values():
        ep.reset_counters()

    # 1. Bad arguments fail before any request (vista gets nothing else); check mode installs nothing.
    first = run_playbook("""
        - hosts: all
          gather_facts: false
          tasks:
            - name: bad id
              kbfix.windows.hotfix: {id: MS08-067, source: "{{ sources[inventory_hostname] }}"}
              ignore_errors: true
            - name: wrong package
              kbfix.windows.hotfix: {id: KB828753, source: "{{ wrong_package }}"}
              ignore_errors: true
            - name: unknown installer
              kbfix.windows.hotfix: {id: KB828753, source: "C:\\\\updates\\\\setup.exe"}
              ignore_errors: true
            - name: spec for another hotfix
              kbfix.windows.hotfix: {id: KB977381, spec: "{{ kb828753_spec }}"}
              ignore_errors: true
            - name: check
              kbfix.windows.hotfix:
                id: "{{ ids[inventory_hostname] }}"
                source: "{{ sources[inventory_hostname] }}"
              check_mode: true
              when: inventory_hostname != 'vista'
        """, inventory, workdir, extra_vars=variables, env={"ANSIBLE_FORKS": "4"})
    bad = {r.task: r for r in first.results if r.host == "vista" and r.task != "check"}
    assert {t: r.status for t, r in bad.items()} == dict.fromkeys(
        ("bad id", "wrong package", "unknown installer", "spec for another hotfix"), "failed"), first.output[-3000:]
    bad = {t: r.result for t, r in bad.items()}
    assert bad["bad id"]["argument"] == "id" and "not a KB or Q number" in bad["bad id"]["msg"]
    assert bad["wrong package"]["argument"] == "source"
    assert "is a package for KB977381, not KB828753" in bad["wrong package"]["msg"]
    assert bad["unknown installer"]["argument"] == "source"
    assert "give the installer" in bad["unknown installer"]["msg"]
    assert bad["spec for another hotfix"]["argument"] == "spec"
    assert fleet.hosts["vista"].counters()["requests"] == 0
    for host in ("r2008", "s2008", "xp1"):
        check = first.one("check", host)
        assert check.status == "changed" and not check.result["installed"], check.result
        assert "would be installed" in check.result["msg"]
        assert writes(fleet.hosts[host]) == {}

    # 2. Install (controller upload, UNC), again (nothing to do), refusals, removal.
    second = run_playbook("""
        - hosts: all
          gather_facts: false
          tasks:
            - name: install
              kbfix.windows.hotfix:
                id: "{{ ids[inventory_hostname] }}"
                source: "{{ sources[inventory_hostname] }}"
                spec: "{{ kb828753_spec if inventory_hostname == 'xp1' else omit }}"
            - name: again
              kbfix.windows.hotfix:
                id: "{{ ids[inventory_hostname] }}"
                source: "{{ sources[inventory_hostname] }}"
            - name: pending restart
              kbfix.windows.hotfix: {id: KB977381, source: "{{ not_for_vista }}"}
              when: inventory_hostname == 'vista'
              ignore_errors: true
            - name: not applicable
              kbfix.windows.hotfix:
                id: KB977381
                source: "{{ not_for_vista }}"
                allow_pending_reboot: true
              when: inventory_hostname == 'vista'
              ignore_errors: true
            - name: remove planned
              kbfix.windows.hotfix: {id: "{{ ids[inventory_hostname] }}", state: absent}
              check_mode: true
              when: inventory_hostname in ('xp1', 'r2008')
            - name: remove
              kbfix.windows.hotfix: {id: "{{ ids[inventory_hostname] }}", state: absent}
              when: inventory_hostname in ('xp1', 'r2008')
            - name: remove again
              kbfix.windows.hotfix: {id: "{{ ids[inventory_hostname] }}", state: absent}
              when: inventory_hostname in ('xp1', 'r2008')
        """, inventory, workdir, extra_vars=variables, diff=True, env={"ANSIBLE_FORKS": "4"})
    for host, (_, name, kind) in HOSTS.items():
        install, again = second.one("install", host), second.one("again", host)
        assert install.status == "changed", install.result.get("msg")
        assert install.result["install"]["source"] == kind and install.result["install"]["package"] == name
        assert install.result["reboot_required"] and install.result["installed"]
        assert not install.result["detection_before"]["installed"]
        assert again.status == "ok" and again.result["installed"] and "is present" in again.result["msg"]
    xp = second.one("install", "xp1").result
    assert xp["install"]["command"].endswith("WindowsXP-KB828753-x86-ENU.exe /quiet /norestart")
    assert xp["detection"]["sources"] == ["qfe", "registry"]
    assert xp["detection"]["registry_records"] == ["HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753"]
    # The drivers wait for the restart (PendingFileRenameOperations): the spec's file evidence says so.
    assert xp["detection"]["files_current"] is False and xp["detection"]["evidence_status"] == "reboot_pending"
    s2008 = second.one("install", "s2008").result
    assert s2008["install"]["command"].startswith("wusa.exe \\\\fs01\\updates\\")
    assert set(s2008["detection"]["cbs_packages"].values()) == {"install_pending"}
    assert "+KB977381: present" in second.stdout  # --diff
    refused = second.one("pending restart", "vista")
    assert refused.status == "failed" and "a restart is pending (CBS RebootPending)" in refused.result["msg"]
    not_applicable = second.one("not applicable", "vista")
    assert not_applicable.status == "failed" and not_applicable.result["rc"] == -2145124329
    assert "KB977381 does not apply to this host" in not_applicable.result["msg"]
    for host, command in (("xp1", "C:\\WINDOWS\\$NtUninstallKB828753$\\spuninst\\spuninst.exe /quiet /norestart"),
                          ("r2008", "wusa.exe /uninstall /kb:977381 /quiet /norestart")):
        planned, removal, again = (second.one(t, host) for t in ("remove planned", "remove", "remove again"))
        assert planned.status == "changed" and "would be removed" in planned.result["msg"]
        assert removal.status == "changed", removal.result.get("msg")
        assert removal.result["uninstall"]["commands"] == [command]
        assert removal.result["reboot_required"] and not removal.result["installed"]
        assert again.status == "ok" and again.result["msg"].endswith("is not installed")
    # The removal was real: winsim's registry lost the XP record, CBS marks the 2008 R2 package for removal.
    assert fleet.hosts["xp1"].host().registry.open(
        "HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753") is None
    state = fleet.hosts["r2008"].host().registry.get(
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Packages"
        "\\Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0", "CurrentState")
    assert state is None or state.data < 0x60
