# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a spec's sections into a validated ``ArticleSpec``: article, variables, applicability, hotfix,
packages, registry, prerequisites and review (file rows are in ``spec_files``). Every error names the file
and the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from ..errors import ArgumentError, SpecError
from .model import ARCHITECTURES, Architecture, RegistryData, RegistryType
from .spec_files import read_files
from .spec_model import (
    EXIT_MEANINGS,
    INSTALLERS,
    MULTISTRING_MODES,
    PRODUCT_TYPES,
    SCHEMA_VERSION,
    SETTING_TYPES,
    VARIABLE_TYPES,
    ArticleSpec,
    ExitMeaning,
    HotfixRecord,
    Installer,
    MultiStringMode,
    OsEntry,
    Package,
    Prerequisite,
    RegistrySetting,
    ReviewItem,
    Variable,
    VariableType,
    When,
)
from .spec_reader import NAME_PATTERN, SYSTEM_ROOT_PREFIX, FieldReader, SpecContext, check_unique, reader_list
from .variables import coerce_variable
from .versions import parse_build_line

_ARTICLE_ID = re.compile(r"^KB\d{5,7}$")
_HOTFIX_ID = re.compile(r"^(KB|Q)\d{5,7}$")
_DWORD_MAX = 0xFFFFFFFF
_QWORD_MAX = 0xFFFFFFFFFFFFFFFF


def _article(top: FieldReader) -> FieldReader:
    article = FieldReader(top.raw("article"), top.source, "article", "article")
    article_id = article.req_text("id")
    if not _ARTICLE_ID.match(article_id):
        raise article.error("id", f"{article_id!r} is not a KB article id like 'KB828753'")
    url = article.req_text("url")
    if not url.startswith(("https://", "http://")):
        raise article.error("url", f"{url!r} is not an http(s) URL")
    article.req_text("title")
    article.req_text("summary")
    for key in ("supersedes", "superseded_by"):
        _hotfix_ids(article, key)
    return article


def _hotfix_ids(reader: FieldReader, key: str, required: bool = False) -> tuple[str, ...]:
    ids = reader.items(key, required) or []
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not _HOTFIX_ID.match(value):
            raise SpecError(reader.source, f"{reader.at(key)}[{index}]",
                            f"{value!r} is not a hotfix id like KB828753 or Q253729")
    return tuple(ids)


def _review(top: FieldReader) -> tuple[ReviewItem, ...]:
    return tuple(ReviewItem(field=reader.req_text("field"), reason=reader.req_text("reason"))
                 for reader in reader_list(top, "review", "review", required=False))


def _variables(top: FieldReader) -> tuple[Variable, ...]:
    raw = top.raw("variables")
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise top.error("variables", "must be a mapping of variable name to definition")
    result = []
    for name, body in raw.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise top.error("variables", f"{name!r} is not a variable name (lower case, digits, _)")
        result.append(_variable(FieldReader(body, top.source, f"variables.{name}", "variables"), name))
    return tuple(result)


def _variable(reader: FieldReader, name: str) -> Variable:
    var_type = cast(VariableType, reader.choice("type", VARIABLE_TYPES))
    required = reader.flag("required", False)
    minimum = reader.integer("min", required=False)
    maximum = reader.integer("max", required=False)
    if (minimum is not None or maximum is not None) and var_type not in ("int", "list"):
        raise reader.error("min" if minimum is not None else "max", "only int and list variables take a range")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise reader.error("min", f"min {minimum} is greater than max {maximum}")
    variable = Variable(name=name, type=var_type, description=reader.req_text("description"), required=required,
                        min=minimum, max=maximum)
    if reader.has("default"):
        if required:
            raise reader.error("default", "a required variable has no default")
        try:
            default = coerce_variable(variable, reader.raw("default"))
        except ArgumentError as exc:
            raise reader.error("default", exc.message) from None
        variable = Variable(name=name, type=var_type, description=variable.description, default=default,
                            min=minimum, max=maximum)
    return variable


def _applicability(top: FieldReader) -> tuple[OsEntry, ...]:
    entries = []
    for reader in reader_list(top, "applicability", "applicability"):
        entry_id = reader.req_text("id")
        if not NAME_PATTERN.match(entry_id):
            raise reader.error("id", f"{entry_id!r} is not an id (lower case, digits, _)")
        version = reader.req_text("version")
        try:
            parse_build_line(version)
        except ValueError as exc:
            raise reader.error("version", str(exc)) from None
        service_packs = reader.numbers("service_packs")
        fixed_in = reader.integer("fixed_in_service_pack", required=False, minimum=1)
        if service_packs is not None and fixed_in is not None and max(service_packs) >= fixed_in:
            raise reader.error("service_packs", f"lists a service pack at or above fixed_in_service_pack {fixed_in}")
        captions = reader.items("caption_contains", required=False) or []
        if not all(isinstance(c, str) and c.strip() for c in captions):
            raise reader.error("caption_contains", "must be a list of non-empty strings")
        r2 = reader.raw("r2")
        if r2 is not None and not isinstance(r2, bool):
            raise reader.error("r2", f"must be true or false, got {r2!r}")
        entries.append(OsEntry(
            id=entry_id, name=reader.req_text("name"), version=version,
            product_types=cast(tuple[int, ...], reader.choices("product_types", PRODUCT_TYPES)),
            architectures=cast(tuple[Architecture, ...], reader.choices("architectures", ARCHITECTURES)),
            service_packs=service_packs, fixed_in_service_pack=fixed_in, r2=r2, caption_contains=tuple(captions),
        ))
    check_unique(top, "applicability", [e.id for e in entries], "id")
    return tuple(entries)


def _hotfix(top: FieldReader, ctx: SpecContext) -> tuple[tuple[str, ...], tuple[HotfixRecord, ...]]:
    hotfix = FieldReader(top.raw("hotfix"), top.source, "hotfix", "hotfix")
    ids = _hotfix_ids(hotfix, "ids", required=True)
    records = tuple(
        HotfixRecord(os=ctx.entry(r, "os").id, key=cast(str, r.hklm_key("key")))
        for r in reader_list(hotfix, "records", "hotfix.records", required=False)
    )
    return ids, records


def _sha256(reader: FieldReader) -> str | None:
    value = reader.raw("sha256")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise reader.error("sha256", f"must be a SHA-256 digest (64 hexadecimal digits), got {value!r}")
    return value.lower()


def _packages(top: FieldReader, ctx: SpecContext) -> tuple[Package, ...]:
    packages = []
    for reader in reader_list(top, "packages", "packages", required=False):
        entry = ctx.entry(reader, "os")
        raw_codes = reader.raw("exit_codes")
        if not isinstance(raw_codes, Mapping) or not raw_codes:
            raise reader.error("exit_codes", "must map exit codes to meanings")
        codes: dict[int, ExitMeaning] = {}
        for code, meaning in raw_codes.items():
            # Exit codes arrive as signed 32-bit (wusa's -2145124329) or as unsigned HRESULT-style values.
            if not isinstance(code, int) or isinstance(code, bool) or not -(2**31) <= code <= _DWORD_MAX:
                raise reader.error("exit_codes", f"{code!r} is not a 32-bit exit code")
            if meaning not in EXIT_MEANINGS:
                raise SpecError(top.source, f"{reader.at('exit_codes')}.{code}",
                                f"{meaning!r} is not one of {', '.join(EXIT_MEANINGS)}")
            codes[code] = cast(ExitMeaning, meaning)
        if codes.get(0) != "success":
            raise reader.error("exit_codes", "must declare 0: success")
        arguments = reader.items("arguments", required=False) or []
        if not all(isinstance(a, str) and a for a in arguments):
            raise reader.error("arguments", "must be a list of non-empty strings")
        restart = reader.raw("restart")
        if not isinstance(restart, bool):
            raise reader.error("restart", "is required: true or false")
        packages.append(Package(
            os=entry.id, architectures=ctx.architectures(reader, entry), service_packs=ctx.service_packs(reader, entry),
            file=reader.req_text("file"), installer=cast(Installer, reader.choice("installer", INSTALLERS)),
            arguments=tuple(arguments), exit_codes=codes, restart=restart, sha256=_sha256(reader),
        ))
    return tuple(packages)


def _check_package_coverage(top: FieldReader, spec_packages: tuple[Package, ...], entries: tuple[OsEntry, ...]) -> None:
    # An OS entry with packages needs exactly one installer per architecture / service pack, or a
    # noncompliant verdict would come with a plan nobody can carry out. An OS entry without any package is
    # an article that names none (its plan then says where to get one).
    for entry in entries:
        if not any(p.os == entry.id for p in spec_packages):
            continue
        for arch in entry.architectures:
            for sp in entry.service_packs or (None,):
                found = [p for p in spec_packages if p.os == entry.id and arch in p.architectures
                         and (p.service_packs is None or (sp is not None and sp in p.service_packs))]
                where = f"{entry.id} {arch}" + (f" SP{sp}" if sp is not None else "")
                if len(found) != 1:
                    raise top.error("packages", f"{where} has {len(found)} packages, needs exactly one")


def _registry(top: FieldReader, ctx: SpecContext) -> tuple[RegistrySetting, ...]:
    settings = [_setting(reader, ctx) for reader in reader_list(top, "registry", "registry", required=False)]
    check_unique(top, "registry", [s.path.casefold() for s in settings], "name")
    return tuple(settings)


_VARIABLE_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("str",), "expandstring": ("str",), "multistring": ("list",), "dword": ("int",), "qword": ("int",),
}


def _setting(reader: FieldReader, ctx: SpecContext) -> RegistrySetting:
    reg_type = cast(RegistryType, reader.choice("type", SETTING_TYPES))
    if reader.has("value") == reader.has("value_from"):
        raise reader.error("value", "give exactly one of value and value_from")
    value_range = _range(reader, reg_type)
    value: RegistryData = None
    value_from = None
    if reader.has("value"):
        value = _registry_data(reader, "value", reg_type, value_range)
    else:
        variable = ctx.variable(reader, "value_from", _VARIABLE_FOR_TYPE[reg_type])
        value_from = variable.name
        if value_range is not None and (variable.min is None or variable.max is None
                                        or variable.min < value_range[0] or variable.max > value_range[1]):
            raise reader.error("value_from", f"variable {value_from!r} must declare min and max within "
                                             f"{value_range[0]}..{value_range[1]}")
    mode = cast(MultiStringMode, reader.choice("mode", MULTISTRING_MODES, required=False, default="replace"))
    if mode == "merge" and reg_type != "multistring":
        raise reader.error("mode", "merge applies to multistring values only")
    case_insensitive = reader.flag("case_insensitive", False)
    if case_insensitive and reg_type not in ("string", "expandstring", "multistring"):
        raise reader.error("case_insensitive", "applies to string values only")
    return RegistrySetting(
        key=cast(str, reader.hklm_key("key")), name=reader.req_text("name"), type=reg_type, value=value,
        value_from=value_from,
        default=_registry_data(reader, "default", reg_type, value_range) if reader.has("default") else None,
        range=value_range, mode=mode, case_insensitive=case_insensitive, os=ctx.entry_ids(reader, "os"),
        when=_when(reader, ctx), restart=reader.flag("restart", False),
        description=reader.req_text("description"),
    )


def _range(reader: FieldReader, reg_type: str) -> tuple[int, int] | None:
    raw = reader.raw("range")
    if raw is None:
        return None
    if reg_type not in ("dword", "qword"):
        raise reader.error("range", "applies to dword and qword values only")
    limit = _DWORD_MAX if reg_type == "dword" else _QWORD_MAX
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= limit for n in raw)
            or raw[0] > raw[1]):
        raise reader.error("range", f"must be [min, max] within 0..{limit}, got {raw!r}")
    return (raw[0], raw[1])


def _registry_data(reader: FieldReader, key: str, reg_type: str, value_range: tuple[int, int] | None) -> RegistryData:
    value = reader.raw(key)
    if reg_type in ("dword", "qword"):
        limit = _DWORD_MAX if reg_type == "dword" else _QWORD_MAX
        low, high = value_range or (0, limit)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise reader.error(key, f"must be an integer {low}..{high} for a {reg_type}, got {value!r}")
        return value
    if reg_type == "multistring":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise reader.error(key, f"must be a list of strings for a multistring, got {value!r}")
        return list(value)
    if not isinstance(value, str):
        raise reader.error(key, f"must be a string for a {reg_type}, got {value!r}")
    return value


def _when(reader: FieldReader, ctx: SpecContext) -> When | None:
    if reader.raw("when") is None:
        return None
    when = FieldReader(reader.raw("when"), reader.source, reader.at("when"), "registry.when")
    product_types = cast(tuple[int, ...] | None, when.choices("product_types", PRODUCT_TYPES, required=False))
    variable = ctx.variable(when, "variable", ("bool",)).name if when.has("variable") else None
    if product_types is None and variable is None:
        raise reader.error("when", "needs product_types or variable")
    return When(product_types=product_types, variable=variable)


def _prerequisites(top: FieldReader, ctx: SpecContext) -> tuple[Prerequisite, ...]:
    result = []
    for reader in reader_list(top, "prerequisites", "prerequisites", required=False):
        if reader.has("registry_key") == reader.has("file"):
            raise reader.error("registry_key", "give exactly one of registry_key and file")
        file = reader.text("file", required=False)
        if file is not None and not file.casefold().startswith(SYSTEM_ROOT_PREFIX):
            raise reader.error("file", f"{file!r} must start with %SystemRoot%\\")
        prereq_id = reader.req_text("id")
        if not NAME_PATTERN.match(prereq_id):
            raise reader.error("id", f"{prereq_id!r} is not an id (lower case, digits, _)")
        result.append(Prerequisite(id=prereq_id, description=reader.req_text("description"),
                                   os=ctx.entry_ids(reader, "os"), registry_key=reader.hklm_key("registry_key", False),
                                   file=file))
    check_unique(top, "prerequisites", [p.id for p in result], "id")
    return tuple(result)


# ------------------------------------------------------------------------------------------------ the spec


def spec_from_data(data: Any, source: str) -> ArticleSpec:
    """Validate already-parsed spec data (``source`` names it in errors)."""
    top = FieldReader(data, source, "", "top")
    schema = top.raw("schema")
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise top.error("schema", f"{schema!r} is not a supported schema (this version reads schema {SCHEMA_VERSION})")
    article = _article(top)
    variables = _variables(top)
    entries = _applicability(top)
    ctx = SpecContext(source, entries, variables)
    hotfix_ids, records = _hotfix(top, ctx)
    packages = _packages(top, ctx)
    _check_package_coverage(top, packages, entries)
    files, warnings = read_files(top, ctx)
    spec = ArticleSpec(
        schema=SCHEMA_VERSION, id=article.req_text("id"), title=article.req_text("title"),
        url=article.req_text("url"), summary=article.req_text("summary").strip(), variables=variables,
        applicability=entries, hotfix_ids=hotfix_ids, hotfix_records=records, packages=packages,
        files=files, registry=_registry(top, ctx), prerequisites=_prerequisites(top, ctx), source=source,
        supersedes=_hotfix_ids(article, "supersedes"), superseded_by=_hotfix_ids(article, "superseded_by"),
        review=_review(top), warnings=warnings,
    )
    unused = [v.name for v in variables if v.name not in ctx.used_variables]
    if unused:
        raise top.error(f"variables.{unused[0]}", "is declared but no setting uses it")
    return spec
