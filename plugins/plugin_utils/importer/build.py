# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An article's text in, a checked spec and the importer's report out.

``import_article`` reads the article (any of the four shapes, ``document``), places every file row and
registry value it can (``placement``, ``registry_text``), infers what the format needs and the article leaves
out (each such value written ``(I)`` with the reason), marks for review what it cannot infer, renders the spec
(``render``) and loads it with the collection's own loader: a spec that does not load is an error, never a
result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from ..article.spec import ArticleSpec, load_spec_data
from ..errors import ArticleImportError, SpecError
from .document import read_document
from .model import Findings
from .placement import Placed, place_rows
from .registry_text import RegistryValue, read_registry
from .render import render_spec
from .rows import file_tables
from .statements import Statements, read_statements
from .windows import Product

_MSU_CODES = {0: "success", 3010: "restart_required", 2359302: "already_installed", -2145124329: "not_applicable"}


@dataclass
class ImportResult:
    spec_id: str  # "kb938475"
    text: str  # the spec file's YAML
    data: dict[str, Any]  # the spec as written (YAML-loaded)
    spec: ArticleSpec
    report: dict[str, Any]


def import_article(text: str, name_hint: str = "article") -> ImportResult:
    findings = Findings()
    doc = read_document(text)
    statements = read_statements(doc, findings, name_hint)
    if not statements.number:
        raise ArticleImportError(
            name_hint, "", "no article number found (DOCUMENT:Qnnnnnn, Article ID, Original KB number or KBnnnnnn)")
    tables = file_tables(doc.tables, findings)
    placed = place_rows(tables, statements.applies_to, findings, statements.branch_ranges)
    if not placed and not statements.applies_to:
        raise ArticleImportError(f"kb{statements.number}.yml", "applicability",
                                 "the article names no Windows version the importer knows")
    if not placed:
        raise ArticleImportError(f"kb{statements.number}.yml", "files",
                                 "the article has no file table the importer could read, and a spec needs at least "
                                 "one file row: write the spec by hand (docs/writing-articles.md)"
                                 + (f"; not placed: {findings.unplaced[0].reason}" if findings.unplaced else ""))
    registry = read_registry(doc.lines, findings)
    spec_id = f"kb{statements.number}"
    builder = _SpecBuilder(statements, placed, registry, findings, doc.lines)
    data = builder.build()
    comments = [(i.field, i.reason) for i in findings.inferred]
    yaml_text = render_spec(data, comments, statements, doc.shape)
    loaded = yaml.safe_load(yaml_text)
    try:
        spec = load_spec_data(loaded, f"{spec_id}.yml")
    except SpecError as exc:
        raise ArticleImportError(f"{spec_id}.yml", exc.field,
                                 f"the imported spec does not load: {exc.message}") from None
    report = {
        "shape": doc.shape,
        "article": statements.number,
        "tables": [{"table": t.heading[:120], "rows": len(e)} for t, e in tables],
        "file_rows": len(placed),
        "registry_values": len(registry),
        "unplaced": [asdict(u) for u in findings.unplaced],
        "inferred": [asdict(i) for i in findings.inferred],
        "review": list(findings.review),
        "warnings": list(getattr(spec, "warnings", ()) or ()),
        "notes": list(findings.notes),
    }
    return ImportResult(spec_id, yaml_text, loaded, spec, report)


def _installer_of(version: str) -> str:
    if version.startswith(("4.0", "5.0")):
        return "hotfix"
    return "update" if version.startswith(("5.1", "5.2")) else "msu"


def _named_package(files: list[str], version: str, arch: str, installer: str) -> str | None:
    """The article's own installer name for this Windows version and architecture, if it gives one."""
    arch_marks = {"x86": ("-x86", "i.exe"), "x64": ("-x64", "-amd64"), "ia64": ("-ia64",), "alpha": ("a.exe",)}
    for name in files:
        folded = name.casefold()
        if installer == "msu" and not (folded.endswith(".msu") and f"windows{version}-" in folded):
            continue
        if installer != "msu" and folded.endswith(".msu"):
            continue
        family = "windowsxp" if version.startswith("5.1") else "windowsserver2003"
        if installer == "update" and not folded.startswith(family):
            continue
        if any(mark in folded for mark in arch_marks.get(arch, ())):
            return name
    return None


class _SpecBuilder:
    def __init__(self, statements: Statements, placed: list[Placed], registry: list[RegistryValue],
                 findings: Findings, lines: list[str]) -> None:
        self.s = statements
        self.placed = placed
        self.registry = registry
        self.findings = findings
        self.lines = lines

    def infer(self, path: str, value: object, reason: str) -> None:
        self.findings.infer(path, value, reason)

    def build(self) -> dict[str, Any]:
        s = self.s
        hotfix_id = f"Q{s.number}" if s.q_article else f"KB{s.number}"
        article: dict[str, Any] = {"id": f"KB{s.number}", "title": s.title or f"KB{s.number}",
                                   "url": f"https://support.microsoft.com/kb/{s.number}",
                                   "summary": self._summary()}
        if s.title_guessed:
            self.findings.to_review("article.title", "taken from the first sentence of the copied text")
        if s.supersedes:
            article["supersedes"] = s.supersedes
        entries = self._applicability()
        data: dict[str, Any] = {"schema": 1, "article": article}
        variables, settings = self._registry(entries)
        if variables:
            data["variables"] = variables
        data["applicability"] = entries
        data["hotfix"] = {"ids": [hotfix_id]}
        records = self._records(entries, hotfix_id)
        if records:
            data["hotfix"]["records"] = records
        for text in s.prerequisites:
            self.findings.to_review("prerequisites", f"the article requires: {text} (add a registry_key or "
                                                     "file prerequisite)")
        data["packages"] = self._packages(entries)
        data["files"] = [p.row for p in self.placed]
        if settings:
            data["registry"] = settings
        if not any(p.row["check"] != "info" for p in self.placed):
            self.findings.notes.append("no file row decides the verdict (info rows only): the hotfix record "
                                       "and registry values judge")
        if self.findings.review:
            data["review"] = list(self.findings.review)
        return data

    def _summary(self) -> str:
        for index, line in enumerate(self.lines):
            if re.match(r"^\s*#*\s*(SYMPTOMS|Symptoms)\s*$", line):
                paragraph: list[str] = []
                for following in self.lines[index + 1:index + 20]:
                    text = following.strip()
                    if text.startswith("#") or (not text and paragraph):
                        break
                    if text and not set(text) <= set("=-"):
                        paragraph.append(text)
                if paragraph:
                    return " ".join(paragraph)[:400]
        return self.s.title or f"KB{self.s.number}"

    def _restart(self) -> bool:
        if self.s.restart is not None:
            return self.s.restart
        return True

    def _restart_reason(self) -> str | None:
        if self.s.restart is not None:
            return None
        return "the article states no restart requirement: replaced system files in use take effect at restart"

    def _applicability(self) -> list[dict[str, Any]]:
        products: dict[str, Product] = {p.product.id: p.product for p in self.placed}
        if not products:
            products = {p.id: p for p in self.s.applies_to}
        for product in self.s.applies_to:
            if product.id not in products and self.placed:
                self.findings.unplace("applies to", product.name, "no file table of the article is for it: "
                                                                  "not an applicability entry")
        if not products:
            raise ArticleImportError(f"kb{self.s.number}.yml", "applicability",
                                     "the article names no Windows version this importer knows")
        entries = []
        for product in products.values():
            rows = [p for p in self.placed if p.product.id == product.id]
            archs = list(dict.fromkeys(p.arch for p in rows)) or list(product.architectures[:1])
            if not rows:
                self.infer(f"applicability.{product.id}.architectures", archs,
                           f"no file table: {product.name}'s main architecture")
            entry: dict[str, Any] = {"id": product.id, "name": product.name, "version": product.version}
            if product.r2:
                entry["r2"] = True
            entry["product_types"] = list(product.product_types)
            entry["architectures"] = archs
            packs = sorted({p.service_pack for p in rows if p.service_pack is not None})
            fixed = self.s.fixed_in.get(product.id)
            if fixed is not None:
                stray = [sp for sp in packs if sp >= fixed]
                for sp in stray:
                    self.findings.notes.append(f"{product.name}: rows for SP{sp} although the article says the "
                                               f"fix is in SP{fixed}: those rows stay, the service pack is left out")
                packs = [sp for sp in packs if sp < fixed]
            if packs:
                entry["service_packs"] = packs
            if fixed is not None:
                entry["fixed_in_service_pack"] = fixed
            if product.caption_contains:
                entry["caption_contains"] = list(product.caption_contains)
            entries.append(entry)
        # Rows of a service pack the entry left out (at or above the fixing one) cannot load: drop them, said.
        for entry in entries:
            if "service_packs" not in entry:
                continue
            packs = entry["service_packs"]
            for item in list(self.placed):
                row_packs = item.row.get("service_packs")
                if item.product.id == entry["id"] and row_packs and not set(row_packs) <= set(packs):
                    self.placed.remove(item)
                    self.findings.unplace("file row", f"{item.row['name']} {item.row.get('version', '')}",
                                          f"SP{row_packs[0]}: the article says that service pack contains the fix")
        return entries

    def _records(self, entries: list[dict[str, Any]], hotfix_id: str) -> list[dict[str, str]]:
        records = []
        for entry in entries:
            version = entry["version"]
            if version.startswith(("4.0", "5.0")):
                key = f"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\{hotfix_id}"
                why = "hotfix.exe records each hotfix under CurrentVersion\\Hotfix"
            elif version.startswith(("5.1", "5.2")):
                family = "Windows XP" if version.startswith("5.1") else "Windows Server 2003"
                sp = entry.get("fixed_in_service_pack") or max(entry.get("service_packs") or [0]) + 1
                key = f"HKLM\\SOFTWARE\\Microsoft\\Updates\\{family}\\SP{sp}\\{hotfix_id}"
                why = "update.exe records a hotfix under the service pack that will contain it"
            else:
                continue
            self.infer(f"hotfix.records.{entry['id']}", key, why)
            records.append({"os": entry["id"], "key": key})
        return records

    def _packages(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        packages: list[dict[str, Any]] = []
        restart = self._restart()
        named_for: dict[str, int] = {}
        for entry in entries:
            for arch in entry["architectures"]:
                # Only hotfix.exe names (Q266433i.exe) leave the Windows version open; update.exe and .msu names
                # carry it (WindowsXP-..., Windows6.0-...).
                kind = _installer_of(entry["version"])
                found = _named_package(self.s.package_files, entry["version"], arch, kind)
                if found is not None and kind == "hotfix":
                    named_for[found] = named_for.get(found, 0) + 1
        for entry in entries:
            for arch in entry["architectures"]:
                version = entry["version"]
                number = self.s.number
                if version.startswith(("4.0", "5.0")):
                    letter = {"x86": "i", "alpha": "a"}.get(arch, "i")
                    name, installer = f"Q{number}{letter}.exe", "hotfix"
                    args, codes = ["-m", "-q", "-z"], {0: "success"}
                elif version.startswith(("5.1", "5.2")):
                    family = "WindowsXP" if version.startswith("5.1") else "WindowsServer2003"
                    name = f"{family}-KB{number}-{arch}-ENU.exe"
                    installer, args = "update", ["/quiet", "/norestart"]
                    codes = {0: "success", 3010: "restart_required"}
                else:
                    name = f"Windows{version}-KB{number}-{arch}.msu"
                    installer, args, codes = "msu", ["/quiet", "/norestart"], dict(_MSU_CODES)
                index = len(packages)
                named = _named_package(self.s.package_files, version, arch, installer)
                if named is not None and named_for.get(named, 0) > 1:
                    # One name that would fit several Windows versions: the article does not say which.
                    self.findings.to_review(f"packages[{index}].file", f"the article names {named} but not for "
                                            f"which Windows version; {name} is the usual name for {entry['name']}")
                    named = None
                elif named is None:
                    self.findings.to_review(f"packages[{index}].file", f"the article names no package file for "
                                            f"{entry['name']} {arch}: {name} is the usual name of that era")
                self.infer(f"packages[{index}].installer", installer, "the installer of that Windows era")
                packages.append({"os": entry["id"], "architectures": [arch],
                                 "file": named if named is not None else f"REVIEW-{name}",
                                 "installer": installer, "arguments": args, "exit_codes": codes, "restart": restart})
        reason = self._restart_reason()
        if reason:
            self.infer("packages.restart", restart, reason)
        return packages

    def _registry(self, entries: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        variables: dict[str, Any] = {}
        settings = []
        for value in self.registry:
            setting: dict[str, Any] = {"key": value.key, "name": value.name, "type": value.type}
            if value.value is not None:
                setting["value"] = value.value
            else:
                variable = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value.name).casefold()
                variable = re.sub(r"[^a-z0-9_]", "_", variable).strip("_") or "value"
                spec_type = {"dword": "int", "qword": "int", "multistring": "list"}.get(value.type, "str")
                declared: dict[str, Any] = {"type": spec_type, "required": True,
                                            "description": f"{value.name}: the article leaves the value to the "
                                                           "administrator." + (f" The article: {value.notes}."
                                                                               if value.notes else "")}
                if value.range is not None and spec_type == "int":
                    declared.update(min=value.range[0], max=value.range[1])
                    declared["description"] += f" From {value.range[0]} to {value.range[1]}."
                    setting["range"] = list(value.range)
                variables[variable] = declared
                setting["value_from"] = variable
                if value.notes:
                    self.findings.to_review(f"variables.{variable}", f"the article allows {value.notes}")
            if value.default is not None:
                setting["default"] = value.default
            setting["restart"] = self._restart()
            reason = self._restart_reason()
            if reason:
                self.infer(f"registry.{value.name}.restart", True, "a service reads its parameters when it starts")
            setting["description"] = f"From the article: {value.source.lstrip('-* ')[:200]}"
            settings.append(setting)
        return variables, settings
