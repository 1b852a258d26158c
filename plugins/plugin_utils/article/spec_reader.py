# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a spec's fields: typed access to one mapping with the field path for error messages, and the
context later sections check their references against (applicability ids, declared variables)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

from ..errors import SpecError
from .model import ARCHITECTURES, Architecture
from .spec_model import FIELDS, OsEntry, Variable
from .versions import WinVersion

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")  # ids of applicability entries, prerequisites, variables
SYSTEM_ROOT_PREFIX = "%systemroot%\\"


# ------------------------------------------------------------------------------------------------- reading


class FieldReader:
    """Typed access to one mapping of the spec, with the field path for error messages."""

    def __init__(self, data: Any, source: str, where: str, section: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(source, where, f"must be a mapping, got {type(data).__name__}")
        self.data: Mapping[Any, Any] = data
        self.source = source
        self.where = where
        unknown = sorted(str(k) for k in data if k not in FIELDS[section])
        if unknown:
            raise SpecError(source, self.at(unknown[0]),
                            f"unknown key (allowed: {', '.join(FIELDS[section])})")

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(self.source, self.at(key), message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def _typed(self, key: str, kind: type[T], label: str, required: bool) -> T | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        # bool is an int subclass: never let `true` pass as a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {label}, got {value!r}")
        return value

    def text(self, key: str, required: bool = True) -> str | None:
        value = self._typed(key, str, "a string", required)
        if value is not None and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def req_text(self, key: str) -> str:
        return cast(str, self.text(key))

    def integer(self, key: str, required: bool = True, minimum: int | None = None) -> int | None:
        value = self._typed(key, int, "an integer", required)
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, "true or false", False)
        return default if value is None else value

    def items(self, key: str, required: bool = True) -> list[Any] | None:
        value = self._typed(key, list, "a list", required)
        if value is not None and required and not value:
            raise self.error(key, "must not be empty")
        return value

    def choice(self, key: str, allowed: Iterable[str], required: bool = True, default: str | None = None) -> str:
        allowed = tuple(allowed)
        value = self.text(key, required=required and default is None)
        if value is None:
            return cast(str, default)
        if value not in allowed:
            raise self.error(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def choices(self, key: str, allowed: Iterable[Any], required: bool = True) -> tuple[Any, ...] | None:
        allowed = tuple(allowed)
        values = self.items(key, required)
        if values is None:
            return None
        for index, value in enumerate(values):
            if value not in allowed or isinstance(value, bool):
                raise SpecError(self.source, f"{self.at(key)}[{index}]",
                                f"{value!r} is not one of {', '.join(str(a) for a in allowed)}")
        if len(set(values)) != len(values):
            raise self.error(key, "lists a value twice")
        return tuple(values)

    def numbers(self, key: str, required: bool = False) -> tuple[int, ...] | None:
        values = self.items(key, required)
        if values is None:
            return None
        for index, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpecError(self.source, f"{self.at(key)}[{index}]", f"must be an integer >= 0, got {value!r}")
        if len(set(values)) != len(values):
            raise self.error(key, "lists a value twice")
        return tuple(values)

    def version(self, key: str, required: bool = True) -> WinVersion | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"{value!r} is not a four-part version (quote it)")
        try:
            parsed = WinVersion.parse(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if parsed.tag:
            raise self.error(key, f"{value!r}: give the four numbers only, without a build tag")
        return parsed

    def hklm_key(self, key: str, required: bool = True) -> str | None:
        value = self.text(key, required)
        if value is None:
            return None
        # The WMI registry provider takes the hive as a number, so only HKLM paths are meaningful here;
        # a trailing backslash would make two spellings of one key.
        if not value.startswith("HKLM\\") or value.endswith("\\") or "\\\\" in value:
            raise self.error(key, f"{value!r} must be a key path like 'HKLM\\SOFTWARE\\...' (no trailing '\\')")
        return value


def reader_list(parent: FieldReader, key: str, section: str, required: bool = True) -> list[FieldReader]:
    values = parent.items(key, required) or []
    where = parent.at(key)
    return [FieldReader(value, parent.source, f"{where}[{index}]", section) for index, value in enumerate(values)]


def check_unique(reader: FieldReader, key: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise SpecError(reader.source, f"{reader.at(key)}[{index}].{what}", f"{value!r} is used twice")
        seen.add(value)


class SpecContext:
    """What later sections check their references against."""

    def __init__(self, source: str, entries: tuple[OsEntry, ...], variables: tuple[Variable, ...]) -> None:
        self.source = source
        self.entries = {e.id: e for e in entries}
        self.variables = {v.name: v for v in variables}
        self.used_variables: set[str] = set()

    def entry(self, reader: FieldReader, key: str) -> OsEntry:
        entry_id = reader.req_text(key)
        if entry_id not in self.entries:
            raise reader.error(key, f"{entry_id!r} is not an applicability id ({', '.join(self.entries)})")
        return self.entries[entry_id]

    def entry_ids(self, reader: FieldReader, key: str) -> tuple[str, ...] | None:
        values = reader.items(key, required=False)
        if values is None:
            return None
        for index, value in enumerate(values):
            if value not in self.entries:
                raise SpecError(self.source, f"{reader.at(key)}[{index}]",
                                f"{value!r} is not an applicability id ({', '.join(self.entries)})")
        return tuple(values)

    def architectures(self, reader: FieldReader, entry: OsEntry) -> tuple[Architecture, ...]:
        archs = cast(tuple[Architecture, ...], reader.choices("architectures", ARCHITECTURES))
        stray = [a for a in archs if a not in entry.architectures]
        if stray:
            raise reader.error("architectures", f"{stray[0]} is not an architecture of {entry.id}")
        return archs

    def service_packs(self, reader: FieldReader, entry: OsEntry) -> tuple[int, ...] | None:
        packs = reader.numbers("service_packs")
        if packs is not None and entry.service_packs is not None:
            stray = [sp for sp in packs if sp not in entry.service_packs]
            if stray:
                raise reader.error("service_packs", f"SP{stray[0]} is not a service pack of {entry.id}")
        return packs

    def variable(self, reader: FieldReader, key: str, types: tuple[str, ...]) -> Variable:
        name = reader.req_text(key)
        if name not in self.variables:
            raise reader.error(key, f"{name!r} is not a declared variable")
        variable = self.variables[name]
        if variable.type not in types:
            raise reader.error(key, f"variable {name!r} is {variable.type}, this needs {' or '.join(types)}")
        self.used_variables.add(name)
        return variable
