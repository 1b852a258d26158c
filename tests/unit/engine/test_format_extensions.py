# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The format's extensions for real articles (docs/spec-format.md): a branch on every kind of row, rows that
check version and size/date, NT 4.0-era architectures, rows printed twice, articles without packages, review
items and supersedence. The spec here is a made-up article in the shape of the real ones."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

import pytest
from engine_helpers import host

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import evaluate, fact_request
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FileFacts, HostFacts, OsFacts, Verdict
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import (
    ArticleSpec,
    load_spec_data,
    require_installable,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import SpecError

UTC = datetime.UTC
XP = OsFacts("5.1.2600", 2, "x86", 1, caption="Microsoft Windows XP Professional")
NT4_ALPHA = OsFacts("4.0.1381", 6, "alpha", 3, caption="Microsoft Windows NT Server 4.0", system_root="C:\\WINNT")
NETAPI = "C:\\WINDOWS\\system32\\Netapi32.dll"
RDR = "C:\\WINDOWS\\system32\\drivers\\Rdr.sys"
SRV_NT4 = "C:\\WINNT\\system32\\drivers\\Srv.sys"

BASE: dict[str, Any] = {
    "schema": 1,
    "article": {"id": "KB900001", "title": "A redirector fix", "url": "https://support.microsoft.com/kb/900001",
                "summary": "A made-up article in the shape of the real ones.",
                "supersedes": ["Q812345"], "superseded_by": ["KB900002"]},
    "applicability": [
        {"id": "xp", "name": "Windows XP", "version": "5.1.2600", "product_types": [1], "architectures": ["x86"],
         "service_packs": [2]},
        {"id": "nt4", "name": "Windows NT 4.0", "version": "4.0.1381", "product_types": [1, 3],
         "architectures": ["x86", "alpha"], "service_packs": [6]},
    ],
    "hotfix": {"ids": ["KB900001"]},
    "packages": [
        {"os": "xp", "architectures": ["x86"], "file": "WindowsXP-KB900001-x86-ENU.exe", "installer": "update",
         "arguments": ["/quiet", "/norestart"], "exit_codes": {0: "success"}, "restart": True},
    ],
    "files": [
        # The GDR and QFE rows of one size/date file.
        {"table": "xp-gdr", "name": "Netapi32.dll", "dir": "%SystemRoot%\\system32", "os": "xp",
         "architectures": ["x86"], "check": "size_date", "branch": "gdr", "size": 1000, "date": "2008-01-01",
         "time": "12:00", "platform": "x86"},
        {"table": "xp-qfe", "name": "Netapi32.dll", "dir": "%SystemRoot%\\system32", "os": "xp",
         "architectures": ["x86"], "check": "size_date", "branch": "ldr", "size": 2000, "date": "2008-02-01",
         "time": "12:00", "platform": "x86"},
        # The article prints 5.1.2600.3300 for the old and the new build: size and date tell them apart.
        {"table": "xp-qfe", "name": "Rdr.sys", "dir": "%SystemRoot%\\system32\\drivers", "os": "xp",
         "architectures": ["x86"], "check": "version_size_date", "version": "5.1.2600.3300", "branch": "ldr",
         "branch_floor": "5.1.2600.2180", "size": 5000, "date": "2008-03-01", "time": "12:00", "platform": "x86"},
        {"table": "nt4-alpha", "name": "Srv.sys", "dir": "%SystemRoot%\\system32\\drivers", "os": "nt4",
         "architectures": ["alpha"], "check": "size_date", "size": 7000, "date": "1999-05-01", "platform": "alpha"},
        {"table": "nt4-x86", "name": "Srv.sys", "dir": "%SystemRoot%\\system32\\drivers", "os": "nt4",
         "architectures": ["x86"], "check": "size_date", "size": 6000, "date": "1999-05-01", "platform": "x86"},
    ],
    "review": [{"field": "packages", "reason": "the article names no NT 4.0 package"}],
}

FIXED = {NETAPI: {"size": 2000, "version": "5.1.2600.3310 (xpsp_sp2_qfe.080201-1200)"},
         RDR: {"size": 5000, "version": "5.1.2600.3300 (xpsp_sp2_qfe.080301-1200)"}}


def spec_of(data: dict[str, Any] | None = None) -> ArticleSpec:
    return load_spec_data(copy.deepcopy(data or BASE), "kb900001.yml")


def xp_host(**files: dict[str, Any]) -> HostFacts:
    facts = host(XP)
    for path, body in {**FIXED, **{k.replace("_", "\\"): v for k, v in files.items()}}.items():
        modified = body.get("modified", datetime.datetime(2007, 1, 1, tzinfo=UTC))
        facts.files[path.casefold()] = FileFacts(path, True, version=body.get("version"), size=body.get("size"),
                                                 modified=modified)
    return facts


def file_check(verdict: Verdict, name: str) -> tuple[bool | None, str]:
    (check,) = [c for c in verdict.checks if c.id.endswith(name)]
    return check.passed, check.message


# ------------------------------------------------------------------------------------ branch on every row


def test_gdr_and_qfe_size_date_rows_of_one_file_coexist() -> None:
    spec = spec_of()
    assert [(r.name, r.branch) for r in spec.files[:2]] == [("Netapi32.dll", "gdr"), ("Netapi32.dll", "ldr")]
    assert evaluate(spec, xp_host(), {}).status == "compliant"


@pytest.mark.parametrize(("tag", "size", "passed"), [
    ("xpsp_sp2_gdr.080101-1200", 1000, True),  # the GDR row's file on the GDR branch
    ("xpsp_sp2_qfe.080101-1200", 1000, False),  # the same size on the QFE branch: older than the QFE file
    ("xpsp_sp2_qfe.080201-1200", 2000, True),
])
def test_the_file_branch_picks_the_size_date_row(tag: str, size: int, passed: bool) -> None:
    netapi = {"size": size, "version": f"5.1.2600.3310 ({tag})"}
    verdict = evaluate(spec_of(), xp_host(**{NETAPI.replace("\\", "_"): netapi}), {})
    assert file_check(verdict, "Netapi32.dll")[0] is passed
    assert verdict.status == ("compliant" if passed else "noncompliant")


def test_a_file_whose_branch_cannot_be_told_passes_with_any_rows_file() -> None:
    netapi = {"size": 1000, "version": None}
    verdict = evaluate(spec_of(), xp_host(**{NETAPI.replace("\\", "_"): netapi}), {})
    assert file_check(verdict, "Netapi32.dll") == (True, "the article's file (same size)")


# ---------------------------------------------------------------------------------- version and size/date


def test_version_size_date_row_tells_the_old_build_by_its_size_and_date() -> None:
    old = {"size": 4000, "version": "5.1.2600.3300 (xpsp_sp2_qfe.080101-1200)"}
    verdict = evaluate(spec_of(), xp_host(**{RDR.replace("\\", "_"): old}), {})
    passed, message = file_check(verdict, "Rdr.sys")
    assert passed is False and verdict.status == "noncompliant"
    assert "at or above 5.1.2600.3300" in message and "older than the article's file" in message
    assert [s.action for s in verdict.plan] == ["install_package", "reboot"]


def test_version_size_date_row_passes_the_new_build_and_later_files() -> None:
    assert file_check(evaluate(spec_of(), xp_host(), {}), "Rdr.sys")[0] is True
    later = {"size": 4000, "version": "5.1.2600.3300 (xpsp_sp2_qfe.080301-1200)",
             "modified": datetime.datetime(2008, 4, 1, tzinfo=UTC)}
    assert file_check(evaluate(spec_of(), xp_host(**{RDR.replace("\\", "_"): later}), {}), "Rdr.sys")[0] is True


def test_version_size_date_row_still_fails_a_lower_version() -> None:
    lower = {"size": 5000, "version": "5.1.2600.3200 (xpsp_sp2_qfe.080301-1200)"}
    verdict = evaluate(spec_of(), xp_host(**{RDR.replace("\\", "_"): lower}), {})
    assert file_check(verdict, "Rdr.sys") == (False, "5.1.2600.3200 is below 5.1.2600.3300, the LDR fix")


def test_version_size_date_row_needs_size_and_date() -> None:
    data = copy.deepcopy(BASE)
    del data["files"][2]["size"]
    with pytest.raises(SpecError, match=r"files\[2\]\.size: is required"):
        spec_of(data)


# ------------------------------------------------------------------------------- NT 4.0-era architectures


def test_an_alpha_host_is_judged_and_reported_as_alpha() -> None:
    spec = spec_of()
    request = fact_request(spec, NT4_ALPHA, {})
    assert request.files == (SRV_NT4,)
    facts = host(NT4_ALPHA)
    facts.files[SRV_NT4.casefold()] = FileFacts(SRV_NT4, True, size=7000,
                                                modified=datetime.datetime(1999, 5, 1, tzinfo=UTC))
    verdict = evaluate(spec, facts, {})
    assert verdict.status == "compliant"
    assert "alpha" in verdict.checks[0].found


def test_a_mips_host_is_not_applicable_when_the_article_has_no_mips_table() -> None:
    verdict = evaluate(spec_of(), host(OsFacts("4.0.1381", 6, "mips", 3, system_root="C:\\WINNT")), {})
    assert (verdict.status, verdict.checks[0].found) == ("not_applicable", "mips")
    assert verdict.reason == "KB900001 has no fix for Windows NT 4.0 mips"


# ------------------------------------------------------------------------------------- rows printed twice


def test_a_row_printed_twice_identically_is_a_warning_and_kept_once() -> None:
    data = copy.deepcopy(BASE)
    data["files"].append({**data["files"][1], "table": "xp-qfe-again"})
    spec = spec_of(data)
    assert len(spec.files) == len(BASE["files"])
    assert spec.warnings == ("files[5] repeats files[1] (Netapi32.dll, xp): kept once",)
    assert spec_of().warnings == ()


def test_two_different_rows_for_one_file_and_branch_are_an_error_naming_both() -> None:
    data = copy.deepcopy(BASE)
    data["files"].append({**data["files"][1], "size": 2001})
    with pytest.raises(SpecError) as caught:
        spec_of(data)
    assert caught.value.field == "files[5]"
    assert "a second row for %SystemRoot%\\system32\\Netapi32.dll on xp x86 (ldr), different from files[1]" in str(
        caught.value)


# ---------------------------------------------------------------------------------- articles without packages


def test_an_os_without_a_package_plans_a_manual_step_naming_where_to_get_it() -> None:
    old_srv = FileFacts("", True, size=5000, modified=datetime.datetime(1998, 1, 1, tzinfo=UTC))
    facts = host(dataclasses.replace(NT4_ALPHA, architecture="x86"),
                 files={"%SystemRoot%\\system32\\drivers\\Srv.sys": old_srv})
    verdict = evaluate(spec_of(), facts, {})
    assert verdict.status == "noncompliant"
    (step,) = verdict.plan
    assert step.action == "manual"
    assert "names no package for" in step.description
    assert "https://support.microsoft.com/kb/900001" in step.description
    assert "Microsoft Update Catalog" in step.description and "add `packages`" in step.description


def test_an_os_with_some_packages_still_needs_one_for_each_architecture() -> None:
    data = copy.deepcopy(BASE)
    data["packages"].append({**data["packages"][0], "os": "nt4", "architectures": ["x86"], "installer": "hotfix"})
    with pytest.raises(SpecError, match="nt4 alpha SP6 has 0 packages, needs exactly one"):
        spec_of(data)


def test_a_spec_without_packages_loads() -> None:
    data = copy.deepcopy(BASE)
    del data["packages"]
    assert spec_of(data).packages == ()


# -------------------------------------------------------------------------------- review and supersedence


def test_review_items_and_supersedence_load() -> None:
    spec = spec_of()
    assert [item.text() for item in spec.review] == ["review packages: the article names no NT 4.0 package"]
    assert (spec.supersedes, spec.superseded_by) == (("Q812345",), ("KB900002",))
    data = copy.deepcopy(BASE)
    data["article"]["supersedes"] = ["828753"]
    with pytest.raises(SpecError, match=r"article\.supersedes\[0\]: '828753' is not a hotfix id"):
        spec_of(data)
    data = copy.deepcopy(BASE)
    data["review"] = [{"field": "packages"}]
    with pytest.raises(SpecError, match=r"review\[0\]\.reason: is required"):
        spec_of(data)


def test_a_review_placeholder_package_is_audited_but_never_installed() -> None:
    data = copy.deepcopy(BASE)
    data["packages"][0]["file"] = "REVIEW-KB900001-xp-x86"
    spec = spec_of(data)
    old = {"size": 4000, "version": "5.1.2600.3300 (xpsp_sp2_qfe.080101-1200)"}
    verdict = evaluate(spec, xp_host(**{RDR.replace("\\", "_"): old}), {})
    assert verdict.status == "noncompliant" and verdict.plan[0].action == "install_package"
    with pytest.raises(SpecError, match="'REVIEW-KB900001-xp-x86' is a placeholder"):
        require_installable(spec, spec.packages[0])
    require_installable(spec_of(), spec_of().packages[0])
