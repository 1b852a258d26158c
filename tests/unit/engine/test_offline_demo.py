# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundled host snapshots, their loader, and the offline demo that judges them."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from engine_helpers import SNAPSHOTS, TOP

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FactRequest, FileFacts, RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.snapshot import (
    host_snapshot_from_data,
    load_host_snapshot,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import SpecError


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offline_demo", TOP / "tools" / "offline_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What each bundled host is for (the snapshot's comment says why); every other cell is not_applicable.
EXPECTED = {
    ("nt4-tse-sp6-x86", "KB253729"): "noncompliant",
    ("xp-sp1-x86", "KB828753"): "noncompliant",
    ("xp-sp2-x86", "KB828753"): "not_applicable",
    ("ws2003r2-sp2-x86", "KB977381"): "not_applicable",
    ("ws2003r2-sp2-x64", "KB977381"): "noncompliant",
    ("ws2008-sp1-x86", "KB977381"): "reboot_pending",
    ("ws2008-sp2-x64", "KB977381"): "compliant",
    ("ws2008r2-rtm-x64", "KB977381"): "compliant",
    ("vista-rtm-x86", "KB938475"): "noncompliant",
    ("vista-rtm-x64", "KB938475"): "unknown",
    ("vista-sp1-x64", "KB938475"): "not_applicable",
}


def test_every_seed_os_has_a_snapshot() -> None:
    names = sorted(path.stem for path in SNAPSHOTS.glob("*.yml"))
    assert names == sorted({host for host, _ in EXPECTED})
    for path in SNAPSHOTS.glob("*.yml"):
        assert load_host_snapshot(path).name == path.stem


def test_demo_verdicts() -> None:
    demo = load_demo()
    results = demo.run(demo.load_specs(), demo.load_snapshots())
    statuses = {(host, article): verdict.status for host, verdicts in results.items()
                for article, verdict in verdicts.items()}
    assert len(statuses) == 11 * 4
    assert {k: v for k, v in statuses.items() if v != "not_applicable" or k in EXPECTED} == EXPECTED
    reasons = {(h, a): v.reason for h, verdicts in results.items() for a, v in verdicts.items()}
    assert reasons[("xp-sp2-x86", "KB828753")] == "fixed by service pack: Windows XP SP2 contains the fix"
    assert reasons[("ws2003r2-sp2-x86", "KB977381")].startswith("prerequisite not met")


def test_demo_prints_table_counts_and_failing_checks() -> None:
    out = io.StringIO()
    assert load_demo().main([], out=out) == 0
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].split() == ["host", "KB253729", "KB828753", "KB938475", "KB977381"]
    assert lines[2].split() == ["nt4-tse-sp6-x86", "FAIL", "n/a", "n/a", "n/a"]
    assert "2 compliant, 4 noncompliant, 36 not_applicable, 1 reboot_pending, 1 unknown" in lines
    assert "ws2003r2-sp2-x64 KB977381: noncompliant" in lines
    assert "  FAIL file:%SystemRoot%\\system32\\Dfsr.exe" in lines
    assert ("  NOT READ registry:HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"
            "\\AsynchronousCredits") in lines
    # Deterministic: a second run prints the same.
    again = io.StringIO()
    load_demo().main([], out=again)
    assert again.getvalue() == text


def test_demo_json() -> None:
    out = io.StringIO()
    load_demo().main(["--json"], out=out)
    data = json.loads(out.getvalue())
    verdict = data["ws2008-sp1-x86"]["KB977381"]
    assert verdict["status"] == "reboot_pending"
    assert [step["action"] for step in verdict["plan"]] == ["reboot"]


# -------------------------------------------------------------------------------------- snapshot format


def _snapshot(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "h", "os": {"version": "5.1.2600", "service_pack": 1, "architecture": "x86",
                                                "product_type": 1}}
    data.update(extra)
    return data


def test_snapshot_answers_like_a_transport() -> None:
    snapshot = host_snapshot_from_data(_snapshot(
        files={"C:\\WINDOWS\\system32\\a.dll": {"version": "5.1.2600.1", "size": 3,
                                                 "modified": "2003-01-01T00:00:00Z"}},
        registry={"HKLM\\SOFTWARE\\X": {"V": {"type": "dword", "data": 1}}},
        registry_keys=["HKLM\\SOFTWARE\\Y"],
        hotfixes={"kb1": ["qfe"]}, reboot_pending=["PendingFileRenameOperations"],
        unreadable=["file:C:\\WINDOWS\\b.dll", "registry:HKLM\\SOFTWARE\\X\\Hidden"],
    ), "h.yml")
    facts = snapshot.answer(FactRequest(
        files=("c:\\windows\\SYSTEM32\\A.DLL", "C:\\WINDOWS\\b.dll", "C:\\WINDOWS\\c.dll"),
        registry_values=(("HKLM\\SOFTWARE\\X", "v"), ("HKLM\\SOFTWARE\\X", "Hidden"), ("HKLM\\SOFTWARE\\X", "W")),
        registry_keys=("HKLM\\SOFTWARE\\X", "HKLM\\SOFTWARE", "HKLM\\SOFTWARE\\Y", "HKLM\\SOFTWARE\\Z"),
    ))
    found = facts.file("C:\\WINDOWS\\system32\\a.dll")
    assert found is not None and (found.path, found.version, found.size) == (
        "c:\\windows\\SYSTEM32\\A.DLL", "5.1.2600.1", 3)
    assert found.modified is not None and found.modified.isoformat() == "2003-01-01T00:00:00+00:00"
    assert facts.file("C:\\WINDOWS\\b.dll") is None  # unreadable: not in the answer
    assert facts.file("C:\\WINDOWS\\c.dll") == FileFacts("C:\\WINDOWS\\c.dll", exists=False)
    assert facts.value("HKLM\\SOFTWARE\\X", "V") == RegistryValue("dword", 1)
    assert facts.value("HKLM\\SOFTWARE\\X", "Hidden") == "missing"
    assert facts.value("HKLM\\SOFTWARE\\X", "W") is None
    assert facts.registry_keys == {"hklm\\software\\x": True, "hklm\\software": True, "hklm\\software\\y": True,
                                   "hklm\\software\\z": False}
    assert facts.hotfixes == frozenset({"KB1"}) and facts.hotfix_sources == {"KB1": ("qfe",)}
    assert facts.reboot_pending and facts.reboot_pending_sources == ("PendingFileRenameOperations",)


@pytest.mark.parametrize(("data", "field", "message"), [
    (_snapshot(color="red"), "color", "unknown key"),
    (_snapshot(hotfixes=["KB1"]), "hotfixes", "must map hotfix ids"),
    (_snapshot(reboot_pending=True), "reboot_pending", "must be a list"),
    ({"os": {"version": "5.1.2600", "architecture": "x86"}}, "os.service_pack", "is required"),
    ({"os": {"version": "5.1.2600", "architecture": "amd64"}}, "os.architecture",
     "'amd64' is not one of x86, x64, ia64, alpha, mips, ppc"),
    (_snapshot(files={"C:\\a": {"version": 5.1}}), "files.C:\\a.version", "must be a string"),
    (_snapshot(files={"C:\\a": {"modified": "2003-01-01T00:00:00"}}), "files.C:\\a.modified", "needs a time zone"),
    (_snapshot(files={"C:\\a": {"modified": "yesterday"}}), "files.C:\\a.modified", "is not an ISO date"),
    (_snapshot(files={"C:\\a": {"owner": "x"}}), "files.C:\\a.owner", "unknown key"),
    (_snapshot(registry={"HKLM\\X": {"V": {"type": "REG_SZ", "data": "x"}}}), "registry.HKLM\\X.V.type",
     "is not one of"),
])
def test_snapshot_errors(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        host_snapshot_from_data(data, "bad.yml")
    assert caught.value.field == field
    assert message in caught.value.message


def test_snapshot_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read host snapshot"):
        load_host_snapshot(tmp_path / "none.yml")
