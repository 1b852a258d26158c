# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import ARTICLES, TOP, seed_spec

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import (
    FIELDS,
    load_spec,
    load_spec_data,
    resolve_variables,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.versions import WinVersion
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, SpecError


def raw(article: str) -> dict[str, Any]:
    name = article.lower()
    data: dict[str, Any] = yaml.safe_load((TOP / "roles" / name / "files" / f"{name}.yml").read_text())
    return data


@pytest.mark.parametrize("article", ARTICLES)
def test_seed_specs_load(article: str) -> None:
    spec = seed_spec(article)
    assert spec.id == article
    assert spec.schema == 1
    assert spec.source == f"{article.lower()}.yml"
    assert spec.files and spec.packages and spec.hotfix_ids


def test_kb938475_asynchronous_credits_is_a_required_bounded_choice() -> None:
    spec = seed_spec("KB938475")
    variable = spec.variable("asynchronous_credits")
    assert (variable.type, variable.required, variable.default, variable.min, variable.max) == (
        "int", True, None, 1, 65535)
    (setting,) = spec.registry
    assert (setting.name, setting.type, setting.value_from, setting.range) == (
        "AsynchronousCredits", "dword", "asynchronous_credits", (1, 65535))
    assert setting.when is not None and setting.when.variable == "file_server"


def test_kb828753_registry_settings() -> None:
    spec = seed_spec("KB828753")
    servers, timeout = spec.registry
    assert (servers.name, servers.type, servers.mode, servers.case_insensitive) == (
        "ReconnectableServers", "multistring", "merge", True)
    assert servers.key == "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"
    assert (timeout.name, timeout.type, timeout.default) == ("ReconnectTimeout", "dword", 60)
    assert not spec.variable("reconnect_timeout").required
    assert spec.variable("reconnect_timeout").default is None  # optional: only set when given


def test_kb828753_is_fixed_by_xp_sp2_and_records_under_sp2() -> None:
    spec = seed_spec("KB828753")
    assert spec.os_entry("xp").fixed_in_service_pack == 2
    assert spec.hotfix_records[0].key == "HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows XP\\SP2\\KB828753"


def test_kb977381_dfsrress_on_2008_r2_stays_the_rtm_file() -> None:
    spec = seed_spec("KB977381")
    (row,) = [r for r in spec.files if r.os == "ws2008r2" and r.name == "Dfsrress.dll"]
    assert row.version == WinVersion(6, 1, 7600, 16385)
    assert row.check == "version" and row.branch == "gdr"


def test_kb977381_wow_rows_go_to_syswow64() -> None:
    spec = seed_spec("KB977381")
    wow = [r for r in spec.files if r.wow]
    assert {tuple(r.architectures) for r in wow} == {("x64",), ("ia64",)}
    assert all(r.path == "%SystemRoot%\\SysWOW64\\W03a3409.dll" and r.platform == "x86" for r in wow)


# ------------------------------------------------------------------------------------------ load errors


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return change


_DELETE = object()


@pytest.mark.parametrize(("article", "change", "field", "message"), [
    ("KB828753", _set("extra", 1), "extra", "unknown key"),
    ("KB828753", _set("schema", 2), "schema", "2 is not a supported schema"),
    ("KB828753", _set("article.id", "828753"), "article.id", "'828753' is not a KB article id"),
    ("KB828753", _set("article.url", "support.microsoft.com"), "article.url", "is not an http(s) URL"),
    ("KB828753", _set("article.title", None), "article.title", "is required"),
    ("KB977381", _set("files.3.version", "6.0.6001"), "files[3].version", "'6.0.6001' is not a four-part version"),
    ("KB977381", _set("files.3.version", 6.0), "files[3].version", "is not a four-part version (quote it)"),
    ("KB977381", _set("files.3.version", "5.2.3790.4650 (srv03_sp2_qfe.100115-1232)"), "files[3].version",
     "without a build tag"),
    ("KB977381", _set("files.3.check", "size"), "files[3].check",
     "'size' is not one of version, size_date, version_size_date, info"),
    ("KB977381", _set("files.3.time", 1022), "files[3].time", "quote it"),
    ("KB977381", _set("files.3.date", "15-Jan-2010"), "files[3].date", "is not a date YYYY-MM-DD"),
    ("KB977381", _set("files.3.platform", "IA-64"), "files[3].platform",
     "is not one of x86, x64, ia64, alpha, mips, ppc, none"),
    ("KB977381", _set("files.3.branch_floor", "5.2.3791.0"), "files[3].branch_floor", "not on the build line"),
    ("KB977381", _set("files.3.branch_floor", "5.2.3790.4700"), "files[3].branch_floor", "above the fixed"),
    ("KB977381", _set("files.13.branch", "gdr"), "files[13].version", "is on the ldr branch, the row says gdr"),
    ("KB977381", _set("files.13.branch_floor", "6.0.6001.18000"), "files[13].branch_floor",
     "is on the gdr branch, the row says ldr"),
    ("KB977381", _set("files.3.architectures", ["arm"]), "files[3].architectures[0]", "'arm' is not one of"),
    ("KB977381", _set("files.0.architectures", ["x64", "x64"]), "files[0].architectures", "lists a value twice"),
    ("KB977381", _set("files.13.architectures", ["ia64"]), "files[13].architectures", "not an architecture of ws2008"),
    ("KB977381", _set("files.13.service_packs", [3]), "files[13].service_packs", "SP3 is not a service pack of"),
    ("KB977381", _set("files.13.os", "ws2012"), "files[13].os", "'ws2012' is not an applicability id"),
    ("KB977381", _set("files.13.dir", "C:\\Windows\\system32"), "files[13].dir", "must start with %SystemRoot%"),
    ("KB977381", _set("files.13.name", "system32\\Dfsrs.exe"), "files[13].name", "must be a file name"),
    ("KB977381", _set("files.13.dir", None), "files[13].dir", "is required"),
    ("KB977381", _set("files.13.color", "red"), "files[13].color", "unknown key"),
    ("KB977381", _set("files.12.service_packs", [2]), "files[15]", "a second row for"),
    ("KB977381", _set("files.12.check", "version"), "files[12].version", "is required"),
    ("KB977381", _set("files.8.branch_floor", "6.0.6001.22000"), "files[8].branch_floor",
     "only version and version_size_date rows have branch_floor"),
    ("KB977381", _set("files.8.branch", "qfe"), "files[8].branch", "'qfe' is not one of gdr, ldr, baseline"),
    ("KB977381", _set("packages.5.architectures", ["x64", "x86"]), "packages[5].architectures",
     "x86 is not an architecture of ws2008r2"),
    ("KB977381", _set("packages.4.os", "ws2008r2"), "packages", "ws2008 x64 SP1 has 0 packages"),
    ("KB977381", _set("packages.3.exit_codes", {3010: "restart_required"}), "packages[3].exit_codes",
     "must declare 0: success"),
    ("KB977381", _set("packages.3.exit_codes", {0: "success", 5: "maybe"}), "packages[3].exit_codes.5",
     "'maybe' is not one of"),
    ("KB977381", _set("packages.3.installer", "msi"), "packages[3].installer", "'msi' is not one of"),
    ("KB977381", _set("packages.3.restart", None), "packages[3].restart", "is required"),
    ("KB977381", _set("applicability.2.service_packs", [0, 1]), "applicability[2].service_packs",
     "at or above fixed_in_service_pack 1"),
    ("KB977381", _set("applicability.2.id", "ws2008"), "applicability[2].id", "'ws2008' is used twice"),
    ("KB977381", _set("applicability.1.version", "6"), "applicability[1].version", "major.minor"),
    ("KB977381", _set("applicability.1.product_types", [4]), "applicability[1].product_types[0]", "not one of 1, 2, 3"),
    ("KB977381", _set("applicability.0.r2", "yes"), "applicability[0].r2", "must be true or false"),
    ("KB977381", _set("hotfix.ids", ["977381"]), "hotfix.ids[0]", "is not a hotfix id"),
    ("KB977381", _set("hotfix.records.0.key", "HKEY_LOCAL_MACHINE\\SOFTWARE"), "hotfix.records[0].key",
     "must be a key path like"),
    ("KB977381", _set("prerequisites.0.file", "%SystemRoot%\\system32\\Dfsrs.exe"), "prerequisites[0].registry_key",
     "give exactly one of registry_key and file"),
    ("KB828753", _set("registry.0.value_from", "servers"), "registry[0].value_from", "'servers' is not a declared"),
    ("KB828753", _set("registry.1.value_from", "reconnectable_servers"), "registry[1].value_from",
     "variable 'reconnectable_servers' is list, this needs int"),
    ("KB828753", _set("registry.1.mode", "merge"), "registry[1].mode", "merge applies to multistring values only"),
    ("KB828753", _set("registry.1.case_insensitive", True), "registry[1].case_insensitive", "string values only"),
    ("KB828753", _set("registry.1.default", "60"), "registry[1].default", "must be an integer"),
    ("KB828753", _set("registry.1.range", [10, 1]), "registry[1].range", "must be [min, max]"),
    ("KB828753", _set("registry.1.value", 5), "registry[1].value", "give exactly one of value and value_from"),
    ("KB828753", _set("registry.1.type", "REG_DWORD"), "registry[1].type", "'REG_DWORD' is not one of"),
    ("KB828753", _set("registry.1.name", "ReconnectableServers"), "registry[1].name", "is used twice"),
    ("KB828753", _set("registry.1.when", {}), "registry[1].when", "needs product_types or variable"),
    ("KB828753", _set("registry.1.when", {"variable": "reconnect_timeout"}), "registry[1].when.variable",
     "variable 'reconnect_timeout' is int, this needs bool"),
    ("KB828753", _set("registry.1", _DELETE), "variables.reconnect_timeout", "is declared but no setting uses it"),
    ("KB828753", _set("variables.reconnect_timeout.type", "float"), "variables.reconnect_timeout.type",
     "'float' is not one of str, int, bool, list"),
    ("KB828753", _set("variables.reconnect_timeout.min", 10_000_000_000), "variables.reconnect_timeout.min",
     "greater than max"),
    ("KB828753", _set("variables.reconnectable_servers.default", ["fs01"]), "variables.reconnectable_servers.default",
     "a required variable has no default"),
    ("KB828753", _set("variables.reconnect_timeout.default", 0), "variables.reconnect_timeout.default",
     "must be in 1..4294967295"),
    ("KB828753", _set("variables.Bad-Name", {"type": "str", "description": "x"}), "variables",
     "'Bad-Name' is not a variable name"),
    ("KB938475", _set("variables.asynchronous_credits.max", None), "registry[0].value_from",
     "must declare min and max within 1..65535"),
    ("KB938475", _set("files.3.size", -1), "files[3].size", "must be >= 0"),
    ("KB938475", _set("files.14.version", None), "files[14].version", "is required"),
    # An inferred row must rest on a manifest of the article at the row's version, and say why.
    ("KB938475", _set("files.14.inferred_from", "microsoft-windows-smbserver-common"), "files[14].inferred_from",
     "no x86 manifest of microsoft-windows-smbserver-common at 6.0.6000.20620"),
    ("KB938475", _set("files.14.version", "6.0.6000.20734"), "files[14].inferred_from",
     "no x86 manifest of microsoft-windows-smbserver-v2 at 6.0.6000.20734"),
    ("KB938475", _set("files.14.note", None), "files[14].note", "needs a note"),
])
def test_invalid_spec_names_file_and_field(article: str, change: Callable[[dict[str, Any]], None], field: str,
                                            message: str) -> None:
    data = copy.deepcopy(raw(article))
    change(data)
    with pytest.raises(SpecError) as caught:
        load_spec_data(data, f"{article.lower()}.yml")
    assert caught.value.source == f"{article.lower()}.yml"
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{article.lower()}.yml: {field}: ")


def test_error_text_matches_the_documented_example() -> None:
    data = copy.deepcopy(raw("KB977381"))
    data["files"][3]["version"] = "6.0.6001"
    with pytest.raises(SpecError) as caught:
        load_spec_data(data, "kb977381.yml")
    assert str(caught.value) == "kb977381.yml: files[3].version: '6.0.6001' is not a four-part version"


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec_data([1, 2], "x.yml")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "absent.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("schema: [1\n")
    with pytest.raises(SpecError, match=r"broken\.yml: not valid YAML"):
        load_spec(broken)


# ---------------------------------------------------------------------------------------------- variables


@pytest.mark.parametrize(("article", "provided", "field", "message"), [
    ("KB938475", {}, "asynchronous_credits", "is required"),
    ("KB938475", {"asynchronous_credits": 0}, "asynchronous_credits", "must be in 1..65535, got 0"),
    ("KB938475", {"asynchronous_credits": 65536}, "asynchronous_credits", "must be in 1..65535"),
    ("KB938475", {"asynchronous_credits": True}, "asynchronous_credits", "must be an integer"),
    ("KB938475", {"asynchronous_credits": 12.5}, "asynchronous_credits", "must be an integer"),
    ("KB938475", {"asynchronous_credits": "lots"}, "asynchronous_credits", "must be an integer"),
    ("KB938475", {"asynchronous_credits": 64, "file_server": "maybe"}, "file_server", "must be true or false"),
    ("KB938475", {"asynchronous_credits": 64, "AsynchronousCredits": 64}, "AsynchronousCredits",
     "is not a variable of KB938475"),
    ("KB828753", {"reconnectable_servers": "fs01"}, "reconnectable_servers", "must be a list of strings"),
    ("KB828753", {"reconnectable_servers": []}, "reconnectable_servers", "must have 1.. entries, got 0"),
    ("KB828753", {"reconnectable_servers": ["fs01", ""]}, "reconnectable_servers[1]", "must be a non-empty string"),
    ("KB828753", {"reconnectable_servers": ["fs01", 7]}, "reconnectable_servers[1]", "must be a non-empty string"),
    ("KB828753", {"reconnectable_servers": ["fs01"], "reconnect_timeout": 0}, "reconnect_timeout", "must be in"),
    ("KB253729", {"anything": 1}, "anything", "(declared: none)"),
])
def test_resolve_variables_rejects(article: str, provided: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        resolve_variables(seed_spec(article), provided)
    assert caught.value.field == field
    assert message in caught.value.message


def test_resolve_variables_converts_and_fills_defaults() -> None:
    spec = seed_spec("KB938475")
    assert resolve_variables(spec, {"asynchronous_credits": "512"}) == {"asynchronous_credits": 512,
                                                                        "file_server": True}
    assert resolve_variables(spec, {"asynchronous_credits": 64, "file_server": "no"})["file_server"] is False
    assert resolve_variables(spec, {"asynchronous_credits": 64, "file_server": None})["file_server"] is True
    resolved = resolve_variables(seed_spec("KB828753"), {"reconnectable_servers": ("fs01", "fs02")})
    assert resolved == {"reconnectable_servers": ["fs01", "fs02"], "reconnect_timeout": None}
    assert resolve_variables(seed_spec("KB828753"), resolved) == resolved  # idempotent


# ------------------------------------------------------------------------------------------------- docs


def test_every_schema_field_is_documented() -> None:
    text = (TOP / "docs" / "spec-format.md").read_text()
    undocumented = [f"{section}.{key}" for section, keys in FIELDS.items() for key in keys
                    if f"`{key}`" not in text]
    assert undocumented == []
