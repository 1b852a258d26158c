# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input found by trying the modules as a user would (issue 15 items 3-6), through real ansible-playbook
runs against winsim. Every refusal happens before any request (winsim's counters stay at 0) and names the
field; what is legal reaches the host literally, proven from winsim's own state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import run_playbook

pytestmark = pytest.mark.slow

ROLES = Path(__file__).resolve().parents[3] / "roles"
SECRET = "hunter2-do-not-echo"


def no_requests(ep: Any) -> None:
    counters = ep.counters()
    assert (counters["requests"], counters["auth_requests"]) == (0, 0), counters


# --- item 4: the same path rules for every path argument --------------------------------------------------


PATHS = r"""
- name: Paths
  hosts: xp1
  gather_facts: false
  tasks:
    - name: a quote
      kbfix.windows.file_version:
        paths: ['C:\kbfix\axb.dll', 'C:\kbfix\a".dll']
        minimum_version: 1.0.0.0
      ignore_errors: true
    - name: a dot-dot segment
      kbfix.windows.file_version:
        paths: ['C:\WINDOWS\system32\..\..\kbfix\axb.dll']
        minimum_version: 1.0.0.0
      ignore_errors: true
    - name: a stream
      kbfix.windows.file_version:
        paths: ['C:\kbfix\axb.dll:hidden']
        minimum_version: 1.0.0.0
      ignore_errors: true
    - name: hotfix source with a dot-dot segment
      kbfix.windows.hotfix:
        id: KB977381
        source: 'C:\updates\..\Windows6.0-KB977381-x64.msu'
      ignore_errors: true
    - name: package source with a quote
      kbfix.windows.kb_article:
        articles: ['{{ spec }}']
        state: enforced
        package_source: 'C:\updates\"x'
      ignore_errors: true
"""


def test_path_arguments_are_refused_before_any_request(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86")])
    run = run_playbook(PATHS, inventory, tmp_path / "run",
                       extra_vars={"spec": str(ROLES / "kb977381" / "files" / "kb977381.yml")})
    failed = {r.task: r.result for r in run.results}
    assert all(r.status == "failed" for r in run.results) and len(failed) == 5, run.output[-4000:]
    assert failed["a quote"]["argument"] == "paths[1]" and "'\"'" in failed["a quote"]["msg"]
    assert failed["a dot-dot segment"]["argument"] == "paths[0]" and "'..'" in failed["a dot-dot segment"]["msg"]
    assert failed["a stream"]["argument"] == "paths[0]" and "':'" in failed["a stream"]["msg"]
    assert failed["hotfix source with a dot-dot segment"]["argument"] == "source"
    assert failed["package source with a quote"]["argument"] == "package_source"
    no_requests(fleet.hosts["xp1"])


WILDCARDS = r"""
- name: WQL wildcards in paths
  hosts: xp1
  gather_facts: false
  tasks:
    - name: files
      kbfix.windows.file_version:
        paths: ['C:\kbfix\axb.dll', 'C:\kbfix\a_b.dll', 'C:\kbfix\a%.dll', 'C:\kbfix\100%_done.dll']
        minimum_version: 1.0.0.0
        report_only: true
"""


def test_wql_wildcards_in_paths_reach_the_host_literally(start_fleet: Any, tmp_path: Path) -> None:
    # Only axb.dll and a file literally named 100%_done.dll exist. Were % or _ wildcards (WQL LIKE),
    # a_b.dll and a%.dll would match axb.dll.
    files = {"files": {r"C:\kbfix\axb.dll": {"version": "2.0.0.0"}, r"C:\kbfix\100%_done.dll": {"version": "2.0.0.0"}}}
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86", files)])
    run = run_playbook(WILDCARDS, inventory, tmp_path / "run", verbosity=5)
    result = run.one("files", "xp1")
    assert result.status == "ok", run.output[-4000:]
    exists = {f["path"]: f["exists"] for f in result.result["files"]}
    assert exists == {r"C:\kbfix\axb.dll": True, r"C:\kbfix\a_b.dll": False, r"C:\kbfix\a%.dll": False,
                      r"C:\kbfix\100%_done.dll": True}
    # What went on the wire (the payload log at -vvvvv): equality on each name, the characters as given.
    assert r"Name='C:\\kbfix\\a_b.dll'" in run.output and r"Name='C:\\kbfix\\a%.dll'" in run.output
    assert " LIKE " not in run.output.upper().replace("\n", " ")
    assert fleet.hosts["xp1"].counters()["by_action"].get("Enumerate", 0) >= 1


# --- item 5: spec files only from the spec search path, never their content in errors --------------------


SPECS = r"""
- name: Specs
  hosts: xp1
  gather_facts: false
  tasks:
    - name: passwd as a string
      kbfix.windows.kb_article:
        articles: [/etc/passwd]
      ignore_errors: true
    - name: passwd as spec
      kbfix.windows.kb_article:
        articles: [{spec: /etc/passwd}]
      ignore_errors: true
    - name: a yml outside the search path
      kbfix.windows.kb_article:
        articles: ['{{ outside }}']
      ignore_errors: true
    - name: a symlink out of the playbook directory
      kbfix.windows.kb_article:
        articles: [escape.yml]
      ignore_errors: true
    - name: not YAML
      kbfix.windows.kb_article:
        articles: [broken.yml]
      ignore_errors: true
    - name: hotfix spec passwd
      kbfix.windows.hotfix:
        id: KB977381
        spec: /etc/passwd
      ignore_errors: true
    - name: an explicit spec directory
      kbfix.windows.kb_article:
        articles: ['{{ outside }}']
      vars:
        kbfix_spec_dirs: ['{{ outside | dirname }}']
      ignore_errors: true
"""


def test_specs_resolve_only_within_the_search_path_and_errors_never_echo_content(
        start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp1-x86")])
    outside = tmp_path / "elsewhere" / "secret.yml"
    outside.parent.mkdir()
    outside.write_text(f"token: {SECRET}\n", encoding="utf-8")
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "escape.yml").symlink_to(outside)
    (workdir / "broken.yml").write_text(f"schema: 1\n{SECRET}: [unclosed\n", encoding="utf-8")

    run = run_playbook(SPECS, inventory, workdir, extra_vars={"outside": str(outside)})
    failed = {r.task: r.result for r in run.results}
    assert all(r.status == "failed" for r in run.results) and len(failed) == 7, run.output[-4000:]
    assert failed["passwd as a string"]["argument"] == "articles[0]"
    assert failed["passwd as spec"]["argument"] == "articles[0].spec"
    assert failed["hotfix spec passwd"]["argument"] == "spec"
    for task in ("a yml outside the search path", "a symlink out of the playbook directory"):
        assert failed[task]["argument"] == "articles[0]", failed[task]
        assert "outside the spec search path" in failed[task]["msg"]
    assert failed["not YAML"]["argument"] == "articles[0]"
    assert "not valid YAML at line 3" in failed["not YAML"]["msg"]
    # With the documented explicit directory the file is read, and judged not to be a spec, by field.
    explicit = failed["an explicit spec directory"]
    assert explicit["argument"] == "articles[0]" and "schema" in explicit["msg"], explicit
    passwd = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()
    assert not [line for line in passwd if line and line in run.output]
    assert "root:" not in run.output
    assert SECRET not in run.output
    no_requests(fleet.hosts["xp1"])


# --- item 6: the reboot message reaches shutdown.exe as its comment, nothing else runs -------------------


REBOOT = r"""
- name: Reboot with a hostile message
  hosts: s1
  gather_facts: false
  tasks:
    - name: restart
      kbfix.windows.reboot:
        pre_reboot_delay: 0
        msg: "x & echo pwned > C:\\pwn.txt & rem"
"""


def test_reboot_message_cannot_run_a_command(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("s1", "2008r2-rtm-x64", {"reboot_seconds": 1})])
    ep = fleet.hosts["s1"]
    booted = ep.host().boot_id
    run = run_playbook(REBOOT, inventory, tmp_path / "run")
    result = run.one("restart", "s1")
    assert result.status == "changed" and result.result["rebooted"] is True, run.output[-4000:]
    host = ep.host()
    assert host.boot_id == booted + 1
    assert not host.fs.exists("C:\\pwn.txt")
    assert not [f for f in host.fs.listdir("C:\\") if "pwn" in f.casefold()]
    # One process only: shutdown.exe (boot times are read over WMI, not through the shell).
    assert ep.counters()["by_action"].get("Command") == 1


# --- item 3: registry data bounded before any request, no key without its value ---------------------------


KEY = r"HKLM\SOFTWARE\kbfix-test\big"
REGISTRY = r"""
- name: Registry data sizes
  hosts: xp1
  gather_facts: false
  tasks:
    - name: a 300 kB string
      kbfix.windows.registry_value:
        path: 'HKLM\SOFTWARE\kbfix-test\big'
        name: Big
        data: "{{ 'x' * 300000 }}"
      ignore_errors: true
    - name: 10 kB of binary
      kbfix.windows.registry_value:
        path: 'HKLM\SOFTWARE\kbfix-test\big'
        name: Blob
        type: binary
        data: "{{ '00' * 10000 }}"
      ignore_errors: true
    - name: a value name over the registry's limit
      kbfix.windows.registry_value:
        path: 'HKLM\SOFTWARE\kbfix-test\big'
        name: "{{ 'n' * 16384 }}"
        data: x
      ignore_errors: true
    - name: a 2 MB multistring
      kbfix.windows.registry_value:
        path: 'HKLM\SOFTWARE\kbfix-test\big'
        name: Many
        type: multistring
        data: "{{ ['y' * 1000] * 1100 }}"
      ignore_errors: true
"""

FITS = r"""
- name: Registry data that fits
  hosts: xp1
  gather_facts: false
  tasks:
    - name: a 60 kB string
      kbfix.windows.registry_value:
        path: 'HKLM\SOFTWARE\kbfix-test\big'
        name: Fits
        data: "{{ 'z' * 60000 }}"
"""


def test_registry_data_is_bounded_before_any_request(start_fleet: Any, tmp_path: Path) -> None:
    fleet, inventory = start_fleet([("xp1", "xp-sp2-x86")])
    ep = fleet.hosts["xp1"]
    run = run_playbook(REGISTRY, inventory, tmp_path / "run")
    failed = {r.task: r.result for r in run.results}
    assert all(r.status == "failed" for r in run.results) and len(failed) == 4, run.output[-4000:]
    for task in ("a 300 kB string", "10 kB of binary"):
        assert failed[task]["argument"] == "data", failed[task]["msg"][:500]
        assert "MaxEnvelopeSizekb 150" in failed[task]["msg"]
    assert failed["a value name over the registry's limit"]["argument"] == "name"
    assert failed["a 2 MB multistring"]["argument"] == "data"
    assert "at most 1048576 bytes" in failed["a 2 MB multistring"]["msg"]
    no_requests(ep)
    assert ep.host().registry.open(KEY) is None, "a key was created for a value that cannot be written"

    # The bound is the host's, not a guess below it: a value well inside it is written and read back.
    fits = run_playbook(FITS, inventory, tmp_path / "fits")
    assert fits.one("a 60 kB string", "xp1").status == "changed", fits.output[-4000:]
    assert ep.host().registry.get(KEY, "Fits").data == "z" * 60000
