# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""article_runner and installer without a host: preparing articles, OS facts, planning in check mode,
fail_on, and the installer's naming, quoting and exit-code rules."""

from __future__ import annotations

import copy
import datetime
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils import errors
from ansible_collections.kbfix.windows.plugins.plugin_utils.article import engine, snapshot
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, SpecError
from ansible_collections.kbfix.windows.plugins.plugin_utils.package import policy
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, catalogue, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim import packages
from winsim.signing import signing_ca

ROLES = Path(__file__).resolve().parents[3] / "roles"
KB828753 = ROLES / "kb828753" / "files" / "kb828753.yml"
KB938475 = ROLES / "kb938475" / "files" / "kb938475.yml"
KB977381 = ROLES / "kb977381" / "files" / "kb977381.yml"
KB253729 = ROLES / "kb253729" / "files" / "kb253729.yml"

XP_SP1 = OsFacts(version="5.1.2600", service_pack=1, architecture="x86", product_type=1,
                 caption="Microsoft Windows XP Professional", system_root="C:\\WINDOWS")


def request(spec: Path | dict[str, Any], variables: dict[str, Any] | None = None,
            index: int = 0) -> article_runner.ArticleRequest:
    return article_runner.ArticleRequest(spec, variables or {}, f"articles[{index}]")


def dead_client() -> winrm.WinRMClient:
    """A client whose every request fails: proves a code path sends nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    return winrm.WinRMClient(winrm.WinRMSettings(host="127.0.0.1", port=port, username="u", password="p",
                                                 retries=0))


# ------------------------------------------------------------------------------------------------ prepare


def test_prepare_all_four_seed_articles_with_common_and_own_variables() -> None:
    prepared = article_runner.prepare(
        [request(KB828753), request(KB253729, index=1), request(KB977381, index=2),
         request(KB938475, {"asynchronous_credits": "512"}, index=3)],
        {"reconnectable_servers": ["fs01", "fs01.example.com"], "asynchronous_credits": 128},
    )
    assert [p.id for p in prepared] == ["KB828753", "KB253729", "KB977381", "KB938475"]
    by_id = {p.id: p for p in prepared}
    assert by_id["KB828753"].variables["reconnectable_servers"] == ["fs01", "fs01.example.com"]
    assert by_id["KB828753"].variables["reconnect_timeout"] is None  # optional, left out
    # The article's own value wins over the common one, and inventory strings become numbers.
    assert by_id["KB938475"].variables["asynchronous_credits"] == 512
    assert by_id["KB938475"].variables["file_server"] is True  # the spec's default


def test_missing_required_variable_names_the_article_and_field_where_the_article_applies() -> None:
    prepared = article_runner.prepare([request(KB938475)], {})
    # Not required on a host the article does not apply to (a fleet-wide audit of every article) ...
    article_runner.require_applicable(prepared, OsFacts("6.1.7600", 0, "x64", 3))
    # ... required on Vista RTM, where it does, before any fact is gathered.
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.require_applicable(prepared, OsFacts("6.0.6000", 0, "x64", 1))
    assert caught.value.article == "KB938475"
    assert isinstance(caught.value.cause, ArgumentError)
    assert caught.value.cause.field == "articles[0].variables.asynchronous_credits"
    assert "is required" in str(caught.value)


@pytest.mark.parametrize("value", [0, 65536, "lots", True, 1.5])
def test_out_of_range_or_mistyped_variable_fails(value: Any) -> None:
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.prepare([request(KB938475)], {"asynchronous_credits": value})
    cause = caught.value.cause
    assert isinstance(cause, ArgumentError)
    # Given as a common variable, so the field is named where the user wrote it.
    assert cause.field == "variables.asynchronous_credits"
    assert "1..65535" in cause.message or "integer" in cause.message


def test_a_bad_list_entry_is_named_where_it_was_written() -> None:
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.prepare([request(KB828753)], {"reconnectable_servers": ["fs01", ""]})
    assert caught.value.cause.field == "variables.reconnectable_servers[1]"  # type: ignore[attr-defined]
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.prepare([request(KB828753, {"reconnectable_servers": "fs01"})], {})
    assert caught.value.cause.field == "articles[0].variables.reconnectable_servers"  # type: ignore[attr-defined]


def test_an_article_named_by_id_reads_its_role_variables_and_errors_name_them() -> None:
    host = {"kb828753_reconnectable_servers": ["fs01", ""], "kb828753_reconnect_timeout": None, "other": 1}
    asked: list[str] = []

    def host_value(name: str) -> Any:
        asked.append(name)
        return host.get(name)

    by_id = catalogue.collection_request(ROLES, "kb828753", "articles[1]", {}, host_value)
    assert by_id.spec == KB828753 and asked == ["kb828753_reconnectable_servers", "kb828753_reconnect_timeout"]
    assert by_id.variables == {"reconnectable_servers": ["fs01", ""]}  # a null host variable is not given
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.prepare([by_id], {})
    assert caught.value.cause.field == "kb828753_reconnectable_servers[1]"  # type: ignore[attr-defined]
    # The task's own variables win over the host's, and errors then name them there.
    common = {"reconnectable_servers": ["fs01"]}
    [prepared] = article_runner.prepare(
        [catalogue.collection_request(ROLES, "KB828753", "articles[0]", common, host_value)], common)
    assert prepared.variables["reconnectable_servers"] == ["fs01"]
    # A required variable nobody set is reported as the host variable to set, where the article applies.
    [unset] = article_runner.prepare([catalogue.collection_request(ROLES, "KB828753", "articles[0]", {},
                                                                        lambda name: None)], {})
    assert unset.missing is not None and unset.missing.field == "kb828753_reconnectable_servers"


def test_an_unknown_article_id_fails_naming_the_entry() -> None:
    assert catalogue.is_article_id(" KB977381 ") and not catalogue.is_article_id("kb977381.yml")
    with pytest.raises(ArgumentError) as caught:
        catalogue.collection_request(ROLES, "KB0000001", "articles[2]", {}, lambda name: None)
    assert caught.value.field == "articles[2]" and "KB977381" in caught.value.message


def test_a_common_variable_no_article_declares_is_a_typo() -> None:
    with pytest.raises(ArgumentError) as caught:
        article_runner.prepare([request(KB977381)], {"reconectable_servers": ["fs01"]})
    assert caught.value.field == "variables.reconectable_servers"


def test_a_per_article_variable_the_article_does_not_declare_fails() -> None:
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.prepare([request(KB977381, {"asynchronous_credits": 5})], {})
    assert caught.value.cause.field == "articles[0].variables.asynchronous_credits"  # type: ignore[attr-defined]


def test_an_article_listed_twice_fails() -> None:
    with pytest.raises(ArgumentError) as caught:
        article_runner.prepare([request(KB977381), request(KB977381, index=1)], {})
    assert caught.value.field == "articles"


def test_inline_spec_data_is_validated_with_its_position_in_the_task() -> None:
    data = yaml.safe_load(KB977381.read_text(encoding="utf-8"))
    assert article_runner.prepare([request(data)], {})[0].id == "KB977381"
    broken = copy.deepcopy(data)
    broken["files"][0]["version"] = "6.0.6001"
    with pytest.raises(SpecError) as caught:
        article_runner.prepare([request(broken)], {})
    assert caught.value.source == "articles[0].spec"
    assert caught.value.field == "files[0].version"


# -------------------------------------------------------------------------------------------- OS facts


def test_os_facts_from_the_kbfix_os_fact() -> None:
    facts = article_runner.os_facts_from_mapping({**XP_SP1.to_dict(), "hostname": "XP1"})
    assert facts == XP_SP1 and facts.last_boot is None
    # kbfix_last_boot may be combined in: the engine then tells an unrelated pending restart apart.
    booted = article_runner.os_facts_from_mapping({**XP_SP1.to_dict(), "last_boot": "2024-03-01T06:00:00+00:00"})
    assert booted.last_boot == datetime.datetime(2024, 3, 1, 6, 0, tzinfo=datetime.UTC)
    minimal = article_runner.os_facts_from_mapping(
        {"version": "6.1.7600", "service_pack": 0, "architecture": "x64", "product_type": 3})
    assert minimal.system_root == "C:\\WINDOWS" and minimal.r2 is False


@pytest.mark.parametrize(("change", "field"), [
    ({"version": "5.1"}, "host_facts.version"),
    ({"version": None}, "host_facts.version"),
    ({"service_pack": "1"}, "host_facts.service_pack"),
    ({"service_pack": True}, "host_facts.service_pack"),
    ({"architecture": "arm64"}, "host_facts.architecture"),
    ({"product_type": 4}, "host_facts.product_type"),
    ({"r2": "yes"}, "host_facts.r2"),
    ({"last_boot": "x"}, "host_facts.last_boot"),
    ({"last_boot": "2024-03-01T06:00:00"}, "host_facts.last_boot"),  # no time zone
    ({"last_boot": 1709272800}, "host_facts.last_boot"),
    ({"system_root": 5}, "host_facts.system_root"),
])
def test_bad_os_facts_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        article_runner.os_facts_from_mapping({**XP_SP1.to_dict(), **change})
    assert caught.value.field == field


# ------------------------------------------------------------------------------------- check-mode plan


XP_SNAPSHOT = {
    "name": "xp", "os": XP_SP1.to_dict(),
    "files": {
        "C:\\WINDOWS\\system32\\cscdll.dll": {"version": "5.1.2600.1106 (xpsp1.020828-1920)"},
        "C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys": {"version": "5.1.2600.1106 (xpsp1.020828-1920)"},
        "C:\\WINDOWS\\system32\\drivers\\rdbss.sys": {"version": "5.1.2600.1106 (xpsp1.020828-1920)"},
    },
    "registry": {"HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters": {
        "ReconnectableServers": {"type": "multistring", "data": ["old01"]}}},
}


XP_PACKAGE = "WindowsXP-KB828753-x86-ENU.exe"
# Packages are judged before any step (check mode too): winsim's packages are signed by its test CA.
TRUST_WINSIM = policy.PackagePolicy(ca_files=(str(signing_ca().ca_file),))


def package_dir(tmp_path: Path) -> installer.PackageLocation:
    packages.write_package(XP_PACKAGE, tmp_path)
    return installer.PackageLocation("controller", str(tmp_path))


def plan_in_check_mode(recorded: dict[str, Any], **options: Any) -> tuple[article_runner.RunResult,
                                                                           winrm.WinRMClient]:
    prepared = article_runner.prepare([request(KB828753)], {"reconnectable_servers": ["fs01"],
                                                            "reconnect_timeout": 120})
    host = snapshot.host_snapshot_from_data(recorded, "snapshot")
    facts = host.answer(article_runner.merged_request(prepared, host.state.os))
    verdicts = [engine.evaluate(p.spec, facts, p.variables) for p in prepared]
    client = dead_client()
    opts = article_runner.Options(state="enforced", check_mode=True, **{"package_policy": TRUST_WINSIM, **options})
    return article_runner.enforce(WinRMTransport(client), facts, prepared, verdicts, opts), client


def test_check_mode_reports_the_plan_and_sends_nothing(tmp_path: Path) -> None:
    result, client = plan_in_check_mode(XP_SNAPSHOT, package_source=package_dir(tmp_path))
    assert client.request_count == 0
    actions = [(c["action"], c.get("name") or c.get("package")) for c in result.changes]
    assert actions == [("install_package", "WindowsXP-KB828753-x86-ENU.exe"),
                       ("set_registry", "ReconnectableServers"), ("set_registry", "ReconnectTimeout")]
    assert all(c["planned"] and c["changed"] for c in result.changes)
    assert result.changed
    servers = result.changes[1]
    # Merge mode keeps the entry an administrator put there.
    assert servers["before"] == {"type": "multistring", "data": ["old01"]}
    assert servers["after"] == {"type": "multistring", "data": ["old01", "fs01"]}
    timeout = result.changes[2]
    assert (timeout["before"], timeout["after"]) == (None, {"type": "dword", "data": 120})
    diffs = {d["before_header"]: d for d in result.diff}
    key = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"
    assert diffs[f"{key}\\ReconnectableServers"]["after"] == "(multistring)\nold01\nfs01\n"
    assert diffs[f"{key}\\ReconnectTimeout"] == {"before_header": f"{key}\\ReconnectTimeout",
                                                 "after_header": f"{key}\\ReconnectTimeout",
                                                 "before": "(absent)\n", "after": "120 (dword)\n"}
    assert "KB828753: WindowsXP-KB828753-x86-ENU.exe (planned)\n" in [d["after"] for d in result.diff]


def test_an_install_without_package_source_fails_before_any_change() -> None:
    with pytest.raises(errors.ArticleFault) as caught:
        plan_in_check_mode(XP_SNAPSHOT)
    assert caught.value.article == "KB828753"
    assert caught.value.cause.field == "package_source"  # type: ignore[attr-defined]
    assert caught.value.partial["changes"] == []


def test_a_package_missing_from_the_controller_directory_fails(tmp_path: Path) -> None:
    # Not in check mode: the file is looked for before anything is uploaded.
    prepared = article_runner.prepare([request(KB828753)], {"reconnectable_servers": ["fs01"]})
    host = snapshot.host_snapshot_from_data(XP_SNAPSHOT, "snapshot")
    facts = host.answer(article_runner.merged_request(prepared, host.state.os))
    verdicts = [engine.evaluate(p.spec, facts, p.variables) for p in prepared]
    client = dead_client()
    options = article_runner.Options(state="enforced",
                                     package_source=installer.PackageLocation("controller", str(tmp_path)))
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.enforce(WinRMTransport(client), facts, prepared, verdicts, options)
    assert "WindowsXP-KB828753-x86-ENU.exe is not in" in str(caught.value)
    assert client.request_count == 0


@pytest.mark.parametrize("common", [True, False], ids=["task variables", "article variables"])
def test_every_step_of_every_article_is_checked_before_the_first_write(tmp_path: Path, common: bool) -> None:
    # The install comes first in the plan; the registry value after it cannot be written (a 300,000-character
    # entry is far above XP's 150 kB WS-Man envelope). The task must fail before the install, sending nothing,
    # and name the variable where it was written.
    servers = {"reconnectable_servers": ["fs01", "x" * 300_000]}
    prepared = article_runner.prepare([request(KB828753, None if common else servers)], servers if common else {})
    host = snapshot.host_snapshot_from_data(XP_SNAPSHOT, "snapshot")
    facts = host.answer(article_runner.merged_request(prepared, host.state.os))
    verdicts = [engine.evaluate(p.spec, facts, p.variables) for p in prepared]
    assert [s.action for s in verdicts[0].plan][:2] == ["install_package", "set_registry"]
    client = dead_client()
    options = article_runner.Options(state="enforced", package_source=package_dir(tmp_path),
                                     package_policy=TRUST_WINSIM)
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.enforce(WinRMTransport(client), facts, prepared, verdicts, options)
    field = "variables.reconnectable_servers" if common else "articles[0].variables.reconnectable_servers"
    assert caught.value.cause.field == field, caught.value  # type: ignore[attr-defined]
    assert "MaxEnvelopeSizekb" in str(caught.value)
    assert caught.value.partial["changes"] == []
    assert client.request_count == 0


def test_check_mode_refuses_a_package_that_would_be_refused_and_sends_nothing(tmp_path: Path) -> None:
    # A preview that says "would install" for a package the real run refuses would mislead: the package is
    # judged (hash, identity, signature) in the pre-flight, before any step of any article, check mode included.
    location = package_dir(tmp_path)
    data = bytearray((tmp_path / XP_PACKAGE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / XP_PACKAGE).write_bytes(bytes(data))
    with pytest.raises(errors.ArticleFault) as caught:
        plan_in_check_mode(XP_SNAPSHOT, package_source=location)
    assert caught.value.article == "KB828753"
    assert caught.value.cause.field == "package_source"  # type: ignore[attr-defined]
    assert "altered after it was signed" in str(caught.value)
    assert caught.value.partial["changes"] == []
    # The same package passes once it is genuine again.
    packages.write_package(XP_PACKAGE, tmp_path)
    result, client = plan_in_check_mode(XP_SNAPSHOT, package_source=location)
    assert result.changes[0]["action"] == "install_package" and client.request_count == 0


def test_pending_restart_skips_the_install_but_not_the_settings(tmp_path: Path) -> None:
    pending = {**XP_SNAPSHOT, "reboot_pending": ["PendingFileRenameOperations"]}
    result, client = plan_in_check_mode(pending, package_source=package_dir(tmp_path))
    install = result.changes[0]
    assert install["skipped"] and not install["changed"]
    assert "a restart is pending (PendingFileRenameOperations)" in install["reason"]
    assert [c["action"] for c in result.changes[1:]] == ["set_registry", "set_registry"]
    assert result.restart_required
    assert "restart is pending" in article_runner.summary(result)
    allowed, _ = plan_in_check_mode(pending, allow_pending_reboot=True, package_source=package_dir(tmp_path))
    assert allowed.changes[0]["planned"] and "skipped" not in allowed.changes[0]
    assert client.request_count == 0


def test_compliant_host_plans_nothing() -> None:
    fixed = copy.deepcopy(XP_SNAPSHOT)
    for path in fixed["files"]:
        fixed["files"][path] = {"version": "5.1.2600.1276 (xpsp2.030926-1738)"}
    fixed["registry"]["HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"] = {
        "ReconnectableServers": {"type": "multistring", "data": ["FS01"]},  # server names: case-insensitive
        "ReconnectTimeout": {"type": "dword", "data": 120}}
    result, _ = plan_in_check_mode(fixed)
    assert result.changes == [] and not result.changed and result.diff == []
    assert [v.status for v in result.verdicts] == ["compliant"]


# ---------------------------------------------------------------------------------- fail_on, summary


def test_fail_on_selects_verdicts_by_status() -> None:
    host = snapshot.host_snapshot_from_data(XP_SNAPSHOT, "snapshot")
    prepared = article_runner.prepare([request(KB828753), request(KB977381, index=1)],
                                      {"reconnectable_servers": ["fs01"]})
    facts = host.answer(article_runner.merged_request(prepared, host.state.os))
    verdicts = [engine.evaluate(p.spec, facts, p.variables) for p in prepared]
    assert [v.status for v in verdicts] == ["noncompliant", "not_applicable"]
    assert [v.article for v in article_runner.failing(verdicts, ["noncompliant", "unknown"])] == ["KB828753"]
    assert article_runner.failing(verdicts, []) == []
    text = article_runner.summary(article_runner.RunResult(verdicts=verdicts, verdicts_before=verdicts))
    assert text == "KB828753: noncompliant; KB977381: not_applicable"
    assert not article_runner.awaiting_restart(verdicts)


# -------------------------------------------------------------------------------------------- installer


@pytest.mark.parametrize(("given", "normal"), [
    ("KB977381", "KB977381"), ("kb977381", "KB977381"), (" 977381 ", "KB977381"), (977381, "KB977381"),
    ("q253729", "Q253729"),
])
def test_hotfix_ids_are_normalised(given: Any, normal: str) -> None:
    assert installer.hotfix_id(given) == normal


@pytest.mark.parametrize("given", ["KB97", "KB12345678", "MS08-067", "", None, True, "KB977381.msu"])
def test_bad_hotfix_ids_are_refused(given: Any) -> None:
    with pytest.raises(ArgumentError) as caught:
        installer.hotfix_id(given)
    assert caught.value.field == "id"


@pytest.mark.parametrize(("name", "kind"), [
    ("WindowsXP-KB828753-x86-ENU.exe", "update"),
    ("WindowsServer2003-KB977381-x86-ENU.exe", "update"),
    ("WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe", "update"),
    ("Q253729i.exe", "hotfix"),
    ("q253729I.EXE", "hotfix"),
    ("Windows6.1-KB977381-x64.msu", "msu"),
    ("C:\\updates\\Windows6.0-KB938475-x86.msu", "msu"),
    ("\\\\fs\\share\\WindowsXP-KB828753-x86-ENU.exe", "update"),
])
def test_installer_kind_from_the_file_name(name: str, kind: str) -> None:
    assert installer.detect_installer(name) == kind


def test_unknown_installer_name_asks_for_the_installer() -> None:
    with pytest.raises(ArgumentError) as caught:
        installer.detect_installer("setup.exe")
    assert caught.value.field == "source" and "give the installer" in caught.value.message


def test_a_package_for_another_hotfix_is_refused() -> None:
    installer.check_package_name("WindowsXP-KB828753-x86-ENU.exe", "KB828753")
    installer.check_package_name("custom-package.exe", "KB828753")  # names nothing: the user knows
    with pytest.raises(ArgumentError, match="for KB977381, not KB828753"):
        installer.check_package_name("Windows6.1-KB977381-x64.msu", "KB828753")


@pytest.mark.parametrize(("text", "kind"), [
    ("packages", "controller"), ("/srv/packages", "controller"), ("C:\\updates", "host"), ("d:/updates", "host"),
    ("\\\\fileserver\\updates", "unc"), ("\\\\fileserver\\updates\\x.msu", "unc"),
])
def test_source_kinds(text: str, kind: str) -> None:
    assert installer.source_kind(text) == kind


def test_remote_locations_refuse_what_cmd_cannot_carry() -> None:
    assert installer.remote_location("c:/updates", "package_source").path == "c:\\updates"
    with pytest.raises(ArgumentError) as caught:
        installer.remote_location("C:\\%TEMP%\\x", "package_source")
    assert caught.value.field == "package_source"
    with pytest.raises(ArgumentError):
        installer.remote_location("updates", "package_source")
    located = installer.PackageLocation("unc", "\\\\fs\\updates\\").joined("Windows6.1-KB977381-x64.msu")
    assert located.path == "\\\\fs\\updates\\Windows6.1-KB977381-x64.msu"
    assert located.filename == "Windows6.1-KB977381-x64.msu"


def test_install_commands_per_installer() -> None:
    msu = "C:\\Windows\\Temp\\Windows6.1-KB977381-x64.msu"
    assert installer.install_command("msu", msu, ["/quiet", "/norestart"]) == f"wusa.exe {msu} /quiet /norestart"
    spaced = "C:\\Documents and Settings\\x\\WindowsXP-KB828753-x86-ENU.exe"
    assert installer.install_command("update", spaced, ["/quiet"]) == f'"{spaced}" /quiet'
    assert installer.DEFAULT_ARGUMENTS["hotfix"] == ("-m", "-q", "-z")


def test_exit_codes_fold_unsigned_hresults_and_take_the_spec_on_top() -> None:
    codes = installer.exit_codes({0: "success", 3010: "restart_required"})
    assert installer.exit_meaning(0x80240017, codes) == "not_applicable"  # WinRS reports it unsigned
    assert installer.exit_meaning(-2145124329, codes) == "not_applicable"
    assert installer.exit_meaning(2359302, codes) == "already_installed"
    assert installer.exit_meaning(1, codes) is None
    assert installer.exit_codes({1641: "restart_required"})[1641] == "restart_required"


def test_evidence_spec_keeps_files_and_records_only() -> None:
    from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec, resolve_variables

    spec = installer.evidence_spec(load_spec(KB828753))
    assert spec.registry == () and spec.variables == ()
    assert len(spec.files) == 3 and spec.hotfix_records
    assert resolve_variables(spec, {}) == {}  # KB828753's required variable no longer stands in the way
