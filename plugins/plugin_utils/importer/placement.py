# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each file row of the article goes: which OS entry, architecture, service pack, branch, directory,
and which kind of check (version, size/date, version and size/date, info)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..article.versions import WinVersion
from .model import FileEntry, Findings, Table
from .windows import Product, architectures_in, products_in, service_pack_of, sp_baseline

_EMBEDDED_VERSION = re.compile(r"_(\d+\.\d+\.\d+\.\d+)_")
_INFO_DIRS = {".manifest": "%SystemRoot%\\winsxs\\Manifests", ".mum": "%SystemRoot%\\servicing\\Packages"}
_DIRS = {".sys": "%SystemRoot%\\system32\\drivers", ".mof": "%SystemRoot%\\system32\\wbem",
         ".mui": "%SystemRoot%\\system32\\en-US"}
_NT6_FLOORS = {"gdr": 16000, "ldr": 20000, "baseline": 0}


@dataclass
class Placed:
    row: dict[str, Any]
    product: Product
    arch: str  # the host architecture (the table's), not the file's platform
    service_pack: int | None


@dataclass
class TableContext:
    products: list[Product] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)


def place_rows(tables: list[tuple[Table, list[FileEntry]]], applies_to: list[Product],
               findings: Findings, branch_ranges: dict[tuple[str, str], int] | None = None) -> list[Placed]:
    placed: list[Placed] = []
    previous = TableContext()
    used_ids: set[str] = set()
    for table, entries in tables:
        context = _context(table, entries, applies_to, previous, findings)
        previous = context
        if not context.products:
            for entry in entries:
                findings.unplace("file row", entry.source, f"{entry.table}: no Windows version in the table's "
                                                           "heading or the article's Applies to")
            continue
        for product in context.products:
            for arch in context.architectures or _row_archs(entries, product):
                table_id = _table_id(product, arch, used_ids)
                names = {e.name.casefold(): e.name for e in entries}
                table_rows = []
                for entry in entries:
                    if not context.architectures and (entry.platform or "none") not in (arch, "none"):
                        continue  # a Q-article table: each row's platform is its architecture
                    row = _row(entry, product, arch, table_id, names, findings, branch_ranges or {})
                    if row is not None:
                        table_rows.append(row)
                _one_service_pack(table_rows, findings)
                placed.extend(table_rows)
    _mark_equal_versions(placed, findings)
    return placed


def _one_service_pack(rows: list[Placed], findings: Findings) -> None:
    """A row without a version (a .mof) in a table whose versioned rows all belong to one service pack is that
    service pack's too: articles print one table per service pack."""
    packs = {r.service_pack for r in rows if r.service_pack is not None}
    if len(packs) != 1:
        return
    (pack,) = packs
    for row in rows:
        if row.service_pack is None and row.row.get("dir") is not None:
            row.service_pack = pack
            keys = list(row.row)
            row.row["service_packs"] = [pack]
            # Keep the spec's field order: service_packs right after architectures.
            cut = keys.index("architectures") + 1
            order = [*keys[:cut], "service_packs", *keys[cut:]]
            row.row = {k: row.row[k] for k in order}
            findings.infer(f"files[{row.row['table']}:{row.row['name']}].service_packs", pack,
                           f"the other rows of its table are SP{pack}'s")


def _context(table: Table, entries: list[FileEntry], applies_to: list[Product], previous: TableContext,
             findings: Findings) -> TableContext:
    products = products_in(table.heading)
    archs = architectures_in(table.heading) if products else []
    label = entries[0].table if entries else "a table"
    if not products and previous.products:
        findings.infer(f"{label}.heading", ", ".join(p.name for p in previous.products),
                       "the table has no heading of its own: it continues the table before it")
        return TableContext(previous.products, previous.architectures)
    if not products:
        products = applies_to
        if products:
            findings.infer(f"{label}.heading", ", ".join(p.name for p in products),
                           "the table's heading names no Windows version: the article's Applies to")
    return TableContext(products, archs)


def _row_archs(entries: list[FileEntry], product: Product) -> list[str]:
    archs = [e.platform for e in entries if e.platform and e.platform != "none"]
    found = list(dict.fromkeys(a for a in archs if a is not None))
    return found or [product.architectures[0]]


def _table_id(product: Product, arch: str, used: set[str]) -> str:
    base = f"{product.id}-{arch}"
    candidate, number = base, 2
    while candidate in used:
        candidate = f"{base}-{number}"
        number += 1
    used.add(candidate)
    return candidate


def _row(entry: FileEntry, product: Product, arch: str, table_id: str, names: dict[str, str],
         findings: Findings, branch_ranges: dict[tuple[str, str], int]) -> Placed | None:
    name = entry.name
    if any(c in name for c in '\\/"<>|*?:') or name in (".", ".."):
        findings.unplace("file row", entry.source, f"{entry.table}: {name!r} is not a file name")
        return None
    suffix = "." + name.rsplit(".", 1)[-1].casefold() if "." in name else ""
    where = f"files[{table_id}:{name}]"
    row: dict[str, Any] = {"table": table_id, "name": name}
    wow = entry.service_branch == "WOW" or (arch in ("x64", "ia64") and entry.platform == "x86")
    version = WinVersion.parse(entry.version) if entry.version else None
    service_pack = entry.service_pack
    if service_pack is None:
        embedded = _EMBEDDED_VERSION.search(name)
        evidence = version or (WinVersion.parse(embedded[1]) if embedded else None)
        if evidence is not None:
            service_pack, why = service_pack_of(evidence.parts)
            if service_pack is not None and not (evidence.major == 6 and suffix in (".manifest", "")):
                if product.version.startswith("5."):
                    findings.infer(f"{where}.service_packs", service_pack, why)
    # Check kind and directory.
    note = ""
    directory: str | None = None
    if name.endswith("~"):
        check, note = "info", "name truncated in the article"
    elif suffix in _INFO_DIRS or suffix == ".cat" or (suffix == ".mui" and version is not None):
        check = "info"
        directory = _INFO_DIRS.get(suffix)
        if suffix == ".mum" and (name.casefold() == "update.mum"):
            directory, note = None, "renamed when installed"
        elif suffix == ".cat":
            note = "not located: catalogs are filed under a generated name"
        if directory is not None:
            findings.infer(f"{where}.dir", directory, f"the article gives no directory: where servicing keeps {suffix} "
                                                      "files")
    elif version is not None:
        check = "version"
    elif entry.size is not None and entry.date is not None:
        check = "size_date"
    else:
        findings.unplace("file row", entry.source,
                         f"{entry.table}: neither a version nor a size and date to check")
        return None
    if check != "info" or suffix == ".mui":
        directory = "%SystemRoot%\\SysWOW64" if wow else _DIRS.get(suffix, "%SystemRoot%\\system32")
        kind = "32-bit copies on a 64-bit system" if wow else f"{suffix or 'such'} files"
        findings.infer(f"{where}.dir", directory, f"the article gives no directory: where Windows keeps {kind}")
    if wow and name[:1] in "wW" and name[1:].casefold() in names:
        row["installed_as"] = names[name[1:].casefold()]
        findings.infer(f"{where}.installed_as", row["installed_as"],
                       "the package names 32-bit copies with a leading W")
    if directory is not None:
        row["dir"] = directory
    row.update({"os": product.id, "architectures": [arch]})
    if service_pack is not None:
        row["service_packs"] = [service_pack]
    row["check"] = check
    if version is not None:
        row["version"] = str(version)
    if check == "version" and version is not None:
        row.update(_branch(entry, version, service_pack, where, findings, branch_ranges))
    elif entry.service_branch in ("GDR", "LDR", "QFE"):
        row["branch"] = "ldr" if entry.service_branch in ("LDR", "QFE") else "gdr"
    if entry.size is not None:
        row["size"] = entry.size
    if entry.date is not None:
        row["date"] = entry.date
    if entry.time is not None:
        row["time"] = entry.time
    row["platform"] = entry.platform or ("none" if check == "info" else arch)
    if entry.platform is None:
        findings.infer(f"{where}.platform", row["platform"], "the table has no Platform column: the table's "
                                                             "architecture")
    if wow:
        row["wow"] = True
    if note:
        row["note"] = note
    return Placed(row, product, arch, service_pack)


def _branch(entry: FileEntry, version: WinVersion, service_pack: int | None, where: str,
            findings: Findings, branch_ranges: dict[tuple[str, str], int]) -> dict[str, Any]:
    stated = {"GDR": "gdr", "LDR": "ldr", "QFE": "ldr"}.get(entry.service_branch or "")
    if version.major == 6:
        branch = stated or version.branch()
        if branch == "unknown":
            branch = "ldr"
        stated_floor = branch_ranges.get((version.build_line_text, branch))
        if stated_floor is not None and stated_floor <= version.revision:
            return {"branch": branch, "branch_floor": f"{version.build_line_text}.{stated_floor}"}
        floor = _NT6_FLOORS[branch]
        if branch != "baseline":
            findings.infer(f"{where}.branch_floor", f"{version.build_line_text}.{floor}",
                           f"the start of the {branch.upper()} revision range on NT 6.x (docs/engine.md)")
        return {"branch": branch, "branch_floor": f"{version.build_line_text}.{floor}"}
    branch = stated or ("ldr" if version.major == 5 and version.minor >= 1 else "baseline")
    first = sp_baseline(version.build_line, service_pack) if service_pack is not None else None
    floor = first if first is not None and first <= version.revision else 0
    if stated is None:
        findings.infer(f"{where}.branch", branch, "a hotfix file of this era is a QFE (LDR) build"
                       if branch == "ldr" else "Windows of this era has one servicing line")
    findings.infer(f"{where}.branch_floor", f"{version.build_line_text}.{floor}",
                   f"the first build of SP{service_pack}" if first is not None else "the build line's start")
    return {"branch": branch, "branch_floor": f"{version.build_line_text}.{floor}"}


def _mark_equal_versions(placed: list[Placed], findings: Findings) -> None:
    """One file printed with the same version but different sizes (old and new build): version alone cannot
    tell them apart, so such rows check version and size/date together."""
    groups: dict[tuple[str, str, str, str, int | None], list[Placed]] = {}
    for item in placed:
        if item.row["check"] == "version":
            on_disk = str(item.row.get("installed_as") or item.row["name"]).casefold()
            key = (item.product.id, item.arch, str(item.row.get("dir")).casefold(), on_disk, item.service_pack)
            groups.setdefault(key, []).append(item)
    for items in groups.values():
        versions = {i.row["version"] for i in items}
        sizes = {i.row.get("size") for i in items}
        if len(items) > 1 and len(versions) == 1 and len(sizes) > 1 and all(i.row.get("date") for i in items):
            for item in items:
                item.row["check"] = "version_size_date"
                findings.notes.append(f"{item.row['name']} ({item.row['table']}): the same version with different "
                                      "sizes: checked by version and size/date")
