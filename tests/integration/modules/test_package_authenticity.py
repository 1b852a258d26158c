# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Only genuine packages are installed: real Authenticode signatures (winsim's test CA, osslsigncode), pinned
hashes and the packages' own version information, judged on the controller. Every refusal names the file,
what was expected and what was found, and reaches no host (winsim's request counters)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

from winsim import packages
from winsim.signing import signing_ca

pytestmark = pytest.mark.slow

XP = "WindowsXP-KB828753-x86-ENU.exe"
R2 = "Windows6.1-KB977381-x64.msu"
S2003_X86 = "WindowsServer2003-KB977381-x86-ENU.exe"
S2003_X64 = "WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe"


def bad_packages(root: Path) -> dict[str, Path]:
    """One directory per refusal case, each holding a file with the name the task asks for."""
    cases: dict[str, Path] = {}

    def case(name: str, filename: str) -> Path:
        directory = root / name
        directory.mkdir(parents=True)
        cases[name] = directory / filename
        return directory / filename

    good = packages.write_package(XP, root / "good")
    cases["good"] = good
    tampered = case("tampered", XP)
    data = bytearray(good.read_bytes())
    data[len(data) // 3] ^= 0x01  # one bit of the payload, after signing
    tampered.write_bytes(bytes(data))
    case("truncated", XP).write_bytes(good.read_bytes()[:-700])  # the signature is the file's tail
    shutil.copy(packages.write_package(XP, root / "plain", signed=False), case("unsigned", XP))
    expired = packages.write_package(XP, root / "expired-src", signed=False)
    signing_ca().sign(expired, expired=True)
    shutil.copy(expired, case("expired", XP))
    # A genuine, signed package for another KB renamed to the name the task asks for.
    shutil.copy(packages.write_package(S2003_X86, root / "other-kb"), case("wrong_kb", XP))
    # A genuine x64 package renamed as the x86 one.
    shutil.copy(packages.write_package(S2003_X64, root / "x64"), case("wrong_arch", S2003_X86))
    msu = packages.write_package(R2, root / "msu")
    cases["msu"] = msu
    return cases


def test_refusals_reach_no_host(start_fleet: Any, tmp_path: Path) -> None:
    cases = bad_packages(tmp_path / "packages")
    fleet, inventory = start_fleet([("xp1", "xp-sp2-x86"), ("r2008", "2008r2-rtm-x64")])
    for ep in fleet.hosts.values():
        ep.reset_counters()
    variables = {"cases": {k: str(v) for k, v in cases.items()}, "wrong_hash": "0" * 64}
    tasks = "".join(f"""
            - name: {case}
              kbfix.windows.hotfix: {{id: KB828753, source: "{{{{ cases.{case} }}}}"}}
              ignore_errors: true""" for case in ("tampered", "truncated", "unsigned", "expired", "wrong_kb"))
    run = run_playbook("""
        - hosts: xp1
          gather_facts: false
          tasks:""" + tasks + """
            - name: wrong_arch
              kbfix.windows.hotfix: {id: KB977381, source: "{{ cases.wrong_arch }}"}
              ignore_errors: true
            - name: wrong_arch_for_host
              kbfix.windows.hotfix:
                id: KB977381
                source: "{{ cases.msu }}"
                host_facts: {version: 5.1.2600, service_pack: 2, architecture: x86, product_type: 1}
              ignore_errors: true
            - name: pinned_hash
              kbfix.windows.hotfix: {id: KB828753, source: "{{ cases.good }}", sha256: "{{ wrong_hash }}"}
              ignore_errors: true
            - name: inventory_hash
              kbfix.windows.hotfix: {id: KB828753, source: "{{ cases.good }}"}
              vars:
                kbfix_package_sha256: {WindowsXP-KB828753-x86-ENU.exe: "{{ wrong_hash }}"}
              ignore_errors: true
            - name: not_trusted
              kbfix.windows.hotfix: {id: KB828753, source: "{{ cases.good }}"}
              vars:
                kbfix_package_trust_ca: []
              ignore_errors: true
        """, inventory, tmp_path / "run", extra_vars=variables)
    statuses = {r.task: r.status for r in run.results if r.host == "xp1"}
    found = {r.task: r.result for r in run.results if r.host == "xp1"}
    expected = {
        "tampered": "does not match its signature (the file was altered after it was signed)",
        "truncated": "carries no Authenticode signature",
        "unsigned": "carries no Authenticode signature",
        "expired": "outside its certificate's validity (2010-01-01 to 2011-01-01",
        "wrong_kb": "expected a package for KB828753, its VERSIONINFO names KB 977381",
        "wrong_arch": "the file name says x86, its VERSIONINFO says x64",
        "wrong_arch_for_host": "the host is x86, its -pkgProperties.txt says the package is for x64",
        "pinned_hash": f"the task expects SHA-256 {'0' * 64}",
        "inventory_hash": f"kbfix_package_sha256 / kbfix_package_lock expect SHA-256 {'0' * 64}",
        "not_trusted": "expected an Authenticode signature chaining to Microsoft's root certificates;",
    }
    assert sorted(found) == sorted(expected), run.output[-3000:]
    assert found["unsigned"]["msg"].startswith(f"source: refusing the package {cases['unsigned']}: ")
    for case, text in expected.items():
        result = found[case]
        assert statuses[case] == "failed" and result["argument"] == "source", (case, result)
        assert "refusing the package" in result["msg"] and text in result["msg"], (case, result["msg"])
        assert "nothing was sent to the host" in result["msg"]
    assert "kbfix_package_unsigned" in found["unsigned"]["msg"]
    assert fleet.hosts["xp1"].counters()["requests"] == 0
    assert fleet.hosts["r2008"].counters()["requests"] == 0


def test_opt_out_and_lock_file(start_fleet: Any, tmp_path: Path) -> None:
    """An unsigned package installs only when listed in kbfix_package_unsigned, and the result says so; the
    package_lock module records verified hashes that a later task holds the files to."""
    unsigned_dir = tmp_path / "unsigned"
    packages.write_package(XP, unsigned_dir, signed=False)
    signed_dir = tmp_path / "signed"
    packages.write_package(R2, signed_dir)
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86"), ("r2008", "2008r2-rtm-x64")])
    lock = tmp_path / "packages.lock.yml"
    run = run_playbook("""
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: lock
              kbfix.windows.package_lock: {path: "{{ signed_dir }}", dest: "{{ lock }}"}
              vars:
                kbfix_package_trust_ca: "{{ hostvars.r2008.kbfix_package_trust_ca }}"
        - hosts: all
          gather_facts: false
          vars:
            kbfix_package_unsigned: [WindowsXP-KB828753-x86-ENU.exe]
            kbfix_package_lock: "{{ lock }}"
          tasks:
            - name: install
              kbfix.windows.hotfix:
                id: "{{ 'KB828753' if inventory_hostname == 'xp1' else 'KB977381' }}"
                source: "{{ unsigned_dir if inventory_hostname == 'xp1' else signed_dir }}/{{ name }}"
              vars:
                name: "{{ 'WindowsXP-KB828753-x86-ENU.exe' if inventory_hostname == 'xp1' else
                         'Windows6.1-KB977381-x64.msu' }}"
        """, inventory, tmp_path / "run",
        extra_vars={"unsigned_dir": str(unsigned_dir), "signed_dir": str(signed_dir), "lock": str(lock)})
    locked = run.one("lock", "localhost").result
    assert locked["changed"] and [p["file"] for p in locked["packages"]] == [R2], locked
    assert locked["packages"][0]["signature"] == "verified"
    xp = run.one("install", "xp1").result
    assert xp["changed"], xp.get("msg")
    assert xp["install"]["package_check"]["signature"] == "unsigned_allowed"
    r2 = run.one("install", "r2008").result
    check = r2["install"]["package_check"]
    assert check["signature"] == "verified" and "winsim Test Package Signer" in check["signed_by"]["signer"]
    assert check["sha256"] == locked["packages"][0]["sha256"]
    assert check["identity"] == {"source": "pkgProperties", "kb": "977381", "architecture": "x64",
                                 "language": None, "applies_to": "Windows Server 2008 R2"}
    # The lock file holds the package to the recorded bytes: the same package signed again (another signing
    # time, so other bytes, and a valid signature) is refused before any request.
    time.sleep(1.1)
    other = packages.write_package(R2, tmp_path / "resigned")
    assert other.read_bytes() != (signed_dir / R2).read_bytes()
    fleet.hosts["r2008"].reset_counters()
    again = run_playbook("""
        - hosts: r2008
          gather_facts: false
          vars:
            kbfix_package_lock: "{{ lock }}"
          tasks:
            - name: relocked
              kbfix.windows.hotfix: {id: KB977381, source: "{{ other }}"}
              ignore_errors: true
        """, inventory, tmp_path / "run2", extra_vars={"lock": str(lock), "other": str(other)})
    refused = again.one("relocked", "r2008").result
    assert again.one("relocked", "r2008").status == "failed"
    assert "kbfix_package_lock expect SHA-256" in refused["msg"], refused
    assert fleet.hosts["r2008"].counters()["requests"] == 0


def test_kb_article_refuses_a_tampered_package_before_uploading_it(start_fleet: Any, tmp_path: Path) -> None:
    """kb_article picks the package from the host's plan; a tampered file is refused before any write or
    upload (the judging reads happened, nothing was sent that changes the host)."""
    package_dir = tmp_path / "packages"
    good = packages.write_package(XP, tmp_path / "good")
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    package_dir.mkdir()
    (package_dir / XP).write_bytes(bytes(data))
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86")])
    fleet.hosts["xp1"].reset_counters()
    run = run_playbook("""
        - hosts: xp1
          gather_facts: false
          tasks:
            - name: enforce
              kbfix.windows.kb_article:
                articles: [KB828753]
                variables: {reconnectable_servers: [fs01]}
                state: enforced
                package_source: "{{ package_source }}"
              ignore_errors: true
        """, inventory, tmp_path / "run", extra_vars={"package_source": str(package_dir)})
    enforce = run.one("enforce", "xp1")
    assert enforce.status == "failed", enforce.result
    assert enforce.result["argument"] == "package_source"
    assert f"refusing the package {package_dir / XP}" in enforce.result["msg"]
    assert "altered after it was signed" in enforce.result["msg"]
    by_action = fleet.hosts["xp1"].counters()["by_action"]
    changed = {k: v for k, v in by_action.items()
               if k.startswith(("Invoke:Set", "Invoke:CreateKey", "Invoke:Delete")) or k == "Command"}
    assert changed == {}, by_action
