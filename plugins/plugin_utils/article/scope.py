# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which applicability entry a host is judged as, and which of the spec's rows, settings, records and
prerequisites apply to it (docs/engine.md, "What is read")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from .model import (
    CheckResult,
    OsFacts,
    RegistryData,
)
from .spec_model import (
    ArticleSpec,
    FileRow,
    OsEntry,
    Package,
    Prerequisite,
    RegistrySetting,
    VariableValue,
)

_SYSTEM_ROOT = "%systemroot%"


# ------------------------------------------------------------------------------------------ applicability


@dataclass(frozen=True)
class Scope:
    """Whether (and as which applicability entry) the article applies to an OS."""

    entry: OsEntry | None
    check: CheckResult

    @property
    def applies(self) -> bool:
        return self.entry is not None


def _out_of_scope(kind: Literal["applicability", "service_pack"], expected: str, found: str, message: str) -> Scope:
    check = CheckResult(id=kind, kind=kind, passed=False, expected=expected, found=found, message=message)
    return Scope(None, check)


def _os_text(os: OsFacts) -> str:
    name = os.caption or "Windows"
    return f"{name} {os.version} SP{os.service_pack} {os.architecture} (product type {os.product_type})"


def scope_of(spec: ArticleSpec, os: OsFacts) -> Scope:
    covered = "; ".join(f"{e.name} {e.version}" for e in spec.applicability)
    by_version = [e for e in spec.applicability if e.matches_version(os.numbers)]
    if not by_version:
        return _out_of_scope("applicability", covered, _os_text(os), f"{spec.id} does not cover Windows {os.version}")
    by_product = [e for e in by_version if os.product_type in e.product_types]
    if not by_product:
        kinds = sorted({t for e in by_version for t in e.product_types})
        return _out_of_scope("applicability", f"product type {kinds}", f"product type {os.product_type}",
                             f"{spec.id} covers {by_version[0].name} only as product type {kinds}")
    by_edition = [e for e in by_product if _edition_matches(e, os)]
    if not by_edition:
        entry = by_product[0]
        wanted = "R2" if entry.r2 else (" or ".join(entry.caption_contains) or "not R2")
        return _out_of_scope("applicability", f"{entry.name} ({wanted})", _os_text(os),
                             f"{spec.id} covers {entry.name} only; the host is another edition"
                             + ("" if os.caption else " (the OS caption was not reported)"))
    entry = by_edition[0]
    if os.architecture not in entry.architectures:
        return _out_of_scope("applicability", "/".join(entry.architectures), os.architecture,
                             f"{spec.id} has no fix for {entry.name} {os.architecture}")
    fixed_in = entry.fixed_in_service_pack
    if fixed_in is not None and os.service_pack >= fixed_in:
        return _out_of_scope("service_pack", f"below SP{fixed_in}", f"SP{os.service_pack}",
                             f"fixed by service pack: {entry.name} SP{fixed_in} contains the fix")
    if entry.service_packs is not None and os.service_pack not in entry.service_packs:
        packs = ", ".join(f"SP{sp}" for sp in entry.service_packs)
        return _out_of_scope("service_pack", packs, f"SP{os.service_pack}",
                             f"{spec.id} has no fix for {entry.name} SP{os.service_pack} (it covers {packs})")
    check = CheckResult(id="applicability", kind="applicability", passed=True, expected=entry.name,
                        found=_os_text(os), message=f"{spec.id} applies to {entry.name}")
    return Scope(entry, check)


def _edition_matches(entry: OsEntry, os: OsFacts) -> bool:
    if entry.r2 is not None and entry.r2 != os.r2:
        return False
    if entry.caption_contains:
        caption = os.caption.casefold()
        return any(text.casefold() in caption for text in entry.caption_contains)
    return True


def matching_entry(spec: ArticleSpec, os_facts: OsFacts) -> OsEntry | None:
    """The applicability entry the host is judged as, or None when the article does not apply."""
    return scope_of(spec, os_facts).entry


def package_for(spec: ArticleSpec, os_facts: OsFacts) -> Package | None:
    """The installer for this host, or None when the article does not apply."""
    entry = matching_entry(spec, os_facts)
    return None if entry is None else entry_package(spec, entry, os_facts)


def applicability(spec: ArticleSpec, os_facts: OsFacts) -> tuple[bool, str]:
    """Whether the article applies to this OS, and why (or why not)."""
    scope = scope_of(spec, os_facts)
    return scope.applies, scope.check.message


# ------------------------------------------------------------------------------------ what to look at


def expand_path(path: str, os: OsFacts) -> str:
    """``%SystemRoot%\\...`` -> the host's Windows directory (``C:\\WINNT`` on NT 4.0 / 2000)."""
    if path.casefold().startswith(_SYSTEM_ROOT):
        return os.system_root.rstrip("\\") + path[len(_SYSTEM_ROOT):]
    return path


def rows_for(spec: ArticleSpec, entry: OsEntry, os: OsFacts, any_service_pack: bool = False) -> list[FileRow]:
    return [r for r in spec.files
            if r.os == entry.id and os.architecture in r.architectures
            and (any_service_pack or r.service_packs is None or os.service_pack in r.service_packs)]


def entry_package(spec: ArticleSpec, entry: OsEntry, os: OsFacts) -> Package | None:
    # The loader guarantees exactly one per applicable OS / architecture / service pack of an OS entry that
    # has packages; an entry without any is an article that names none.
    return next((p for p in spec.packages
                 if p.os == entry.id and os.architecture in p.architectures
                 and (p.service_packs is None or os.service_pack in p.service_packs)), None)


def desired_value(setting: RegistrySetting, variables: Mapping[str, VariableValue]) -> RegistryData:
    if setting.value_from is None:
        return setting.value
    return cast(RegistryData, variables.get(setting.value_from))


def active_settings(spec: ArticleSpec, entry: OsEntry, os: OsFacts,
                    variables: Mapping[str, VariableValue]) -> list[RegistrySetting]:
    active = []
    for setting in spec.registry:
        if setting.os is not None and entry.id not in setting.os:
            continue
        when = setting.when
        if when is not None and when.product_types is not None and os.product_type not in when.product_types:
            continue
        if when is not None and when.variable is not None and not variables.get(when.variable):
            continue
        # An optional variable left out means "leave this value alone" (KB828753's ReconnectTimeout).
        if desired_value(setting, variables) is None:
            continue
        active.append(setting)
    return active


def record_keys(spec: ArticleSpec, entry: OsEntry) -> list[str]:
    return [r.key for r in spec.hotfix_records if r.os == entry.id]


def prerequisites_for(spec: ArticleSpec, entry: OsEntry) -> list[Prerequisite]:
    return [p for p in spec.prerequisites if p.os is None or entry.id in p.os]
