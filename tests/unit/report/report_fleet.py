# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small fleet built from the real model classes, shaped like the seed articles' verdicts.

A plain module (not conftest.py) so that tests can import it by a name no other test directory uses."""

from __future__ import annotations

import datetime
from html.parser import HTMLParser
from typing import Any

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import CheckResult, PlanStep, Verdict
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport

NOW = datetime.datetime(2026, 11, 22, 8, 30, 0, tzinfo=datetime.UTC)
EVIL_HOST = '<img src=x onerror="alert(1)">&amp;'
EVIL_FOUND = "</code><script>alert('found')</script>"

KB828753_TITLE = "Programs that run from a file server quit after the server restarts"
KB977381_TITLE = "The DFS Replication service stops responding"
KB938475_TITLE = "More than 64 concurrent long-term SMB requests fail on Windows Vista"
KB253729_TITLE = "Stopped persistent connection becomes unavailable on NT 4.0 TSE"

MRXSMB = "file:%SystemRoot%\\system32\\drivers\\mrxsmb.sys"
RECONNECT = "registry:HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters\\ReconnectTimeout"
CREDITS = "registry:HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters\\AsynchronousCredits"


def _step(action: str, description: str, details: dict[str, Any]) -> PlanStep:
    # plan-step details are typed; the step is built from its task-result form, as the report reads it
    return PlanStep.from_dict({"action": action, "description": description, "details": details})


def kb828753(status: str, found_version: str = "5.1.2600.1106") -> dict[str, Any]:
    fixed = status == "compliant"
    checks = [
        CheckResult("service_pack", "service_pack", True, "SP1 (fix first shipped in SP2)", "SP1"),
        CheckResult(MRXSMB, "file", fixed, ">= 5.1.2600.1276", "5.1.2600.1276" if fixed else found_version),
        CheckResult(RECONNECT, "registry", fixed, "dword 120", "dword 120" if fixed else "absent"),
    ]
    plan = [] if fixed else [
        _step("install_package", "install WindowsXP-KB828753-x86-ENU.exe (/quiet /norestart)",
                 {"hotfix_id": "KB828753", "package": "WindowsXP-KB828753-x86-ENU.exe", "installer": "update",
                  "arguments": ["/quiet", "/norestart"], "success_codes": {"0": "done", "3010": "restart"},
                  "restart": True}),
        _step("set_registry", "set ReconnectTimeout to 120 (dword)",
                 {"key": "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters",
                  "name": "ReconnectTimeout", "type": "dword", "data": 120, "before": None}),
    ]
    reason = "all checks passed" if fixed else "mrxsmb.sys is older than the fixed version"
    return Verdict("KB828753", KB828753_TITLE, status, reason, checks, plan,
                   restart_required=not fixed).to_dict()


def kb828753_not_applicable() -> dict[str, Any]:
    return Verdict("KB828753", KB828753_TITLE, "not_applicable", "fixed by Windows XP SP2 (host has SP3)",
                   [CheckResult("service_pack", "service_pack", None, "SP1", "SP3")]).to_dict()


def kb977381(status: str) -> dict[str, Any]:
    checks = [CheckResult("file:%SystemRoot%\\system32\\Dfsrs.exe", "file", True, ">= 6.0.6002.22269",
                          "6.0.6002.22269")]
    if status == "reboot_pending":
        checks.append(CheckResult("reboot", "reboot", False, "no pending restart",
                                  "PendingFileRenameOperations set"))
        plan = [_step("reboot", "restart to finish installing KB977381", {"reason": "pending file rename"})]
        return Verdict("KB977381", KB977381_TITLE, "reboot_pending", "installed; a restart completes it", checks,
                       plan).to_dict()
    return Verdict("KB977381", KB977381_TITLE, "compliant", "all checks passed", checks).to_dict()


def kb938475(status: str, found: str = "absent") -> dict[str, Any]:
    ok = status == "compliant"
    checks = [CheckResult(CREDITS, "registry", ok, "dword 512", "dword 512" if ok else found)]
    return Verdict("KB938475", KB938475_TITLE, status, "AsynchronousCredits" + (" set" if ok else " not set"),
                   checks).to_dict()


def kb938475_unknown() -> dict[str, Any]:
    return Verdict("KB938475", KB938475_TITLE, "unknown", "could not read 1 fact",
                   [CheckResult(CREDITS, "registry", None, "dword 512", "(not read)", "access denied")],
                   missing=[CREDITS.removeprefix("registry:")]).to_dict()


def build_fleet() -> FleetReport:
    """Eight hosts: every status at least once, a change during the run, hostile text in name and value."""
    report = FleetReport()
    report.playbooks.append("audit.yml")
    report.add_result("xp-sp1-01", [kb828753("noncompliant")])
    # audit, then enforce (module gives verdicts_before), so the cell changed during the run
    report.add_result("xp-sp1-02", [kb828753("noncompliant")])
    report.add_result("xp-sp1-02", [kb828753("compliant")], before=[kb828753("noncompliant")])
    report.add_result("xp-sp3-01", [kb828753_not_applicable()])
    report.add_unreachable("nt4-tse-01", "connection refused: no WinRM listener on port 5985", task="Audit")
    report.add_result("dfs-2008-01", [kb977381("reboot_pending")])
    report.add_result("dfs-2008r2-01", [kb977381("compliant")])
    report.add_result("vista-01", [kb938475("noncompliant", EVIL_FOUND)])
    report.add_result("vista-02", [kb938475_unknown()])
    report.add_failure(EVIL_HOST, "spec <b>kb938475.yml</b> could not be loaded", article="KB938475",
                       task="Audit KB938475")
    return report


# The grid's cell classes (plugin_utils/report/html_fleet.py CODES), written out again: the tests read the page
# the way a person's browser shows it, not through the code that wrote it.
GRID_CLASSES = {"c": "compliant", "n": "noncompliant", "r": "reboot_pending", "a": "not_applicable", "u": "unknown",
                "f": "failed", "x": "unreachable", "v": "not_audited", "o": "not_run"}


def grid_cells(elements: list[tuple[str, dict[str, str]]]) -> dict[tuple[str, str], str]:
    """(host, article) -> status from the parsed grid: the article columns' headers (``th data-article``) in
    order, and in each row (``tr data-host``) the cells after the host status and age, by their class. The
    row's ``data-cells`` (the filters' copy) must say the same."""
    articles = [a["data-article"] for t, a in elements if t == "th" and "data-article" in a]
    cells: dict[tuple[str, str], str] = {}
    host, column, letters = None, 0, ""
    for tag, attrs in elements:
        if tag == "tr":
            if host is not None:
                assert column - 2 == len(articles), f"row {host!r} has {column - 2} article cells"
            host, column, letters = attrs.get("data-host"), 0, attrs.get("data-cells", "")
        elif tag == "td" and host is not None:
            if column >= 2:
                status = GRID_CLASSES[attrs["class"]]
                assert letters[column - 2] == attrs["class"], f"data-cells of {host!r} disagree with its cells"
                cells[(host, articles[column - 2])] = status
            column += 1
    return cells


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def html_elements(text: str) -> list[tuple[str, dict[str, str]]]:
    """Every start tag of the page, in order, with its attributes (entities decoded)."""
    parser = _Elements()
    parser.feed(text)
    return parser.elements
