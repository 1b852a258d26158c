# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the engine tests: the seed specs, OS fixtures, a host builder, and a model of what the
plan's steps do to a host (used to prove that carrying out a plan makes the host compliant)."""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import expand_path, matching_entry
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    FileFacts,
    HostFacts,
    OsFacts,
    PlanStep,
    RegistryValue,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec, FileRow, load_spec
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.versions import WinVersion

TOP = Path(__file__).resolve().parents[3]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SEEDS = Path(__file__).resolve().parent / "articles"  # the articles' text, kept with the tests
ARTICLES = ("KB828753", "KB253729", "KB977381", "KB938475")


@functools.cache
def seed_spec(article: str) -> ArticleSpec:
    name = article.lower()
    return load_spec(TOP / "roles" / name / "files" / f"{name}.yml")


NT4_TSE = OsFacts("4.0.1381", 6, "x86", 3, caption="Microsoft Windows NT Server 4.0, Terminal Server Edition",
                  system_root="C:\\WINNT")
NT4_SERVER = OsFacts("4.0.1381", 6, "x86", 3, caption="Microsoft Windows NT Server 4.0", system_root="C:\\WINNT")
XP_SP1 = OsFacts("5.1.2600", 1, "x86", 1, caption="Microsoft Windows XP Professional")
XP_SP2 = OsFacts("5.1.2600", 2, "x86", 1, caption="Microsoft Windows XP Professional")
WS2003_SP2 = OsFacts("5.2.3790", 2, "x86", 3, caption="Microsoft Windows Server 2003, Standard Edition")
WS2003R2_X86 = OsFacts("5.2.3790", 2, "x86", 3, caption="Microsoft Windows Server 2003 R2", r2=True)
WS2003R2_X64 = dataclasses.replace(WS2003R2_X86, architecture="x64")
WS2003R2_IA64 = dataclasses.replace(WS2003R2_X86, architecture="ia64")
WS2008_SP1_X86 = OsFacts("6.0.6001", 1, "x86", 3, caption="Microsoft Windows Server 2008 Standard",
                         system_root="C:\\Windows")
WS2008_SP2_X64 = OsFacts("6.0.6002", 2, "x64", 3, caption="Microsoft Windows Server 2008 Enterprise",
                         system_root="C:\\Windows")
WS2008R2 = OsFacts("6.1.7600", 0, "x64", 3, caption="Microsoft Windows Server 2008 R2 Standard",
                   system_root="C:\\Windows")
WS2008R2_SP1 = dataclasses.replace(WS2008R2, version="6.1.7601", service_pack=1)
WIN7 = OsFacts("6.1.7600", 0, "x64", 1, caption="Microsoft Windows 7 Professional", system_root="C:\\Windows")
VISTA_X86 = OsFacts("6.0.6000", 0, "x86", 1, caption="Microsoft Windows Vista Business", system_root="C:\\Windows")
VISTA_X64 = dataclasses.replace(VISTA_X86, architecture="x64")
VISTA_SP1_X64 = dataclasses.replace(VISTA_X64, version="6.0.6001", service_pack=1)

DFSR_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\DFSR"
WORKSTATION = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"
SERVER = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"

# The variables the rule tests use unless a case says otherwise.
VARIABLES: dict[str, dict[str, Any]] = {
    "KB828753": {"reconnectable_servers": ["fs01", "fs01.corp.example.com"], "reconnect_timeout": 120},
    "KB253729": {},
    "KB977381": {},
    "KB938475": {"asynchronous_credits": 512},
}

_TAGS = {"ldr": "kbfix_qfe", "gdr": "kbfix_gdr", "baseline": "kbfix_rtm"}


def rows_for(spec: ArticleSpec, os: OsFacts, any_service_pack: bool = False) -> list[FileRow]:
    """The spec's rows that apply to this host (by the spec, not through the engine)."""
    entry = matching_entry(spec, os)
    assert entry is not None, f"{spec.id} does not apply to {os}"
    return [r for r in spec.files
            if r.os == entry.id and os.architecture in r.architectures
            and (any_service_pack or r.service_packs is None or os.service_pack in r.service_packs)]


def version_text(row: FileRow) -> str:
    """The FileVersion string a file built for this row would report (tag only matters on XP / 2003)."""
    assert row.version is not None
    built = row.date or datetime.date(2007, 6, 15)  # inferred rows have no date in the article
    return f"{row.version} ({_TAGS[row.branch or 'baseline']}.{built:%y%m%d}-0000)"


def fixed_file(row: FileRow, os: OsFacts) -> FileFacts:
    path = expand_path(row.path or "", os)
    return FileFacts(path=path, exists=True, version=version_text(row) if row.version else None, size=row.size,
                     modified=row.modified)


def host(os: OsFacts, files: Mapping[str, FileFacts | str | None] | None = None,
         registry: Mapping[tuple[str, str], RegistryValue | None] | None = None,
         keys: Mapping[str, bool] | None = None, hotfixes: tuple[str, ...] = (), reboot: bool = False) -> HostFacts:
    """HostFacts from short forms: files by %SystemRoot% path -> version string, None (absent) or FileFacts."""
    file_facts = {}
    for path, value in (files or {}).items():
        full = expand_path(path, os)
        if isinstance(value, FileFacts):
            file_facts[full.casefold()] = dataclasses.replace(value, path=full)
        else:
            file_facts[full.casefold()] = FileFacts(path=full, exists=value is not None, version=value)
    return HostFacts(
        os=os, files=file_facts,
        registry={(registry_key_id(k), n.casefold()): v for (k, n), v in (registry or {}).items()},
        registry_keys={registry_key_id(k): v for k, v in (keys or {}).items()},
        hotfixes=frozenset(h.upper() for h in hotfixes), hotfix_sources={h.upper(): ("qfe",) for h in hotfixes},
        reboot_pending=reboot, reboot_pending_sources=("PendingFileRenameOperations",) if reboot else (),
    )


def fixed_host(spec: ArticleSpec, os: OsFacts, variables: Mapping[str, Any] | None = None) -> HostFacts:
    """A host on which the article is fully in place, built from the spec's own rows and settings."""
    facts = host(os, keys={DFSR_KEY: True})
    facts = _lay_down_files(spec, facts)
    values = dict(VARIABLES[spec.id] if variables is None else variables)
    for setting in spec.registry:
        data = setting.value if setting.value_from is None else values.get(setting.value_from)
        facts.registry[(registry_key_id(setting.key), setting.name.casefold())] = (
            None if data is None else RegistryValue(setting.type, data))
    for record in spec.hotfix_records:
        facts.registry_keys[registry_key_id(record.key)] = False
    return facts


def _row_to_install(rows: list[FileRow], current: FileFacts | None, os: OsFacts) -> FileRow:
    """The row whose file the package lays down: the one for the build line the file is on when the article
    has rows for it at or above the host's own line (a 6.0.6002 file on an SP1 host gets the SP2 file)."""
    host_rows = [r for r in rows if r.service_packs is None or os.service_pack in r.service_packs]
    if current is None or current.version is None or rows[0].check != "version":
        return max(host_rows, key=lambda r: r.version or WinVersion(0, 0, 0, 0))
    try:
        line = WinVersion.parse(current.version).build_line
    except ValueError:
        line = None
    host_line = min(r.version.build_line for r in host_rows if r.version)
    same_line = [r for r in rows if r.version and r.version.build_line == line and line >= host_line]
    return max(same_line or host_rows, key=lambda r: r.version or WinVersion(0, 0, 0, 0))


def _lay_down_files(spec: ArticleSpec, facts: HostFacts) -> HostFacts:
    """What installing the package does to the files: every decisive row's file is the package's, except
    a file on a newer build line than the article knows (an installer never downgrades a superseding build)."""
    os = facts.os
    all_rows = [(r.path, r) for r in rows_for(spec, os, any_service_pack=True) if r.path and r.check != "info"]
    host_paths = {r.path.casefold() for r in rows_for(spec, os) if r.path and r.check != "info"}
    for path in sorted(host_paths):
        rows = [r for row_path, r in all_rows if row_path.casefold() == path]
        key = expand_path(path, os).casefold()
        current = facts.files.get(key)
        if current is not None and _newer_line(current, rows):
            continue
        migrated = _qfe_twin(current, rows)
        facts.files[key] = migrated or fixed_file(_row_to_install(rows, current, os), os)
    return facts


def _gdr_above(current: FileFacts | None, rows: list[FileRow]) -> WinVersion | None:
    """An XP / 2003 GDR file numbered at or above the row's QFE fix, or None."""
    try:
        found = WinVersion.parse(current.version or "") if current is not None else None
    except ValueError:
        return None
    if found is None or found.major >= 6 or found.branch() != "gdr":
        return None
    above = any(r.branch == "ldr" and r.version is not None and r.version.build_line == found.build_line
                and found >= r.version for r in rows)
    return found if above else None


def _qfe_twin(current: FileFacts | None, rows: list[FileRow]) -> FileFacts | None:
    """update.exe never lays a lower-numbered file over a higher one: over a GDR file above the QFE fix it
    installs the QFE build of the same number that the security update stored in $hf_mig$."""
    found = _gdr_above(current, rows)
    if found is None or current is None:
        return None
    return dataclasses.replace(current, version=f"{found} (kbfix_qfe.{found.tag.split('.', 1)[-1]})")


def _newer_line(current: FileFacts, rows: list[FileRow]) -> bool:
    try:
        found = WinVersion.parse(current.version or "")
    except ValueError:
        return False
    return all(r.version is not None and found.build_line > r.version.build_line for r in rows)


def _recorded(spec: ArticleSpec, facts: HostFacts) -> bool:
    return (any(h.upper() in facts.hotfixes for h in spec.hotfix_ids)
            or any(facts.registry_keys.get(registry_key_id(r.key)) for r in spec.hotfix_records))


def apply_plan(spec: ArticleSpec, facts: HostFacts, plan: list[PlanStep]) -> HostFacts:
    """The host after the plan's steps: a model of their effects, written from the spec, not the engine."""
    facts = dataclasses.replace(facts, files=dict(facts.files), registry=dict(facts.registry),
                                registry_keys=dict(facts.registry_keys), hotfix_sources=dict(facts.hotfix_sources))
    for step in plan:
        if step.action == "install_package":
            facts = _lay_down_files(spec, facts)
            hotfix_id = step.details.hotfix_id
            facts.hotfixes = facts.hotfixes | {hotfix_id}
            facts.hotfix_sources[hotfix_id] = ("qfe",)
            if step.details.restart:
                # In-use files: the installer queues them for the next start.
                facts.reboot_pending = True
                facts.reboot_pending_sources = ("PendingFileRenameOperations",)
                facts.pending_renames = tuple(f"!\\??\\{f.path}" for f in facts.files.values())
        elif step.action == "set_registry":
            details = step.details
            facts.registry[(registry_key_id(details.key), details.name.casefold())] = RegistryValue(
                details.type, details.data)
        elif step.action == "reboot":
            # Replacements an installer left for the next start happen now.
            if _recorded(spec, facts):
                facts = _lay_down_files(spec, facts)
            facts.reboot_pending = False
            facts.reboot_pending_sources = ()
            facts.pending_renames = ()
            facts.os = dataclasses.replace(facts.os, last_boot=datetime.datetime.now(datetime.UTC))
        elif step.action == "manual":
            # The remedy it names: the security update reinstalled on the QFE branch (/B:SPnQFE) lays down
            # the QFE build of each GDR file's number.
            for path in step.details.files:
                key = expand_path(path, facts.os).casefold()
                rows = [r for r in rows_for(spec, facts.os, any_service_pack=True) if r.path == path]
                twin = _qfe_twin(facts.files.get(key), rows)
                assert twin is not None, step
                facts.files[key] = twin
        else:
            raise AssertionError(f"unexpected step {step.action}")
    return facts
