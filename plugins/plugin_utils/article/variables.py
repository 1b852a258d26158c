# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A spec's role variables: check and convert the values a play gives, fill in the defaults."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..booleans import parse_bool
from ..errors import ArgumentError
from .spec_model import ArticleSpec, Variable, VariableValue


def _coerce_int(variable: Variable, value: Any) -> int:
    # Inventory and extra-vars often deliver numbers as strings ("120"); accept those, never floats or bools.
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentError(variable.name, f"must be an integer, got {value!r}")
    if _outside(variable, value):
        raise ArgumentError(variable.name, f"must be in {_bounds(variable)}, got {value}")
    return value


def _coerce_bool(variable: Variable, value: Any) -> bool:
    return parse_bool(value, variable.name)


def _coerce_str(variable: Variable, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentError(variable.name, f"must be a string, got {value!r}")
    if "\x00" in value:
        raise ArgumentError(variable.name, "must not contain NUL characters")
    return value


def _coerce_list(variable: Variable, value: Any) -> list[str]:
    # A bare string here is almost always a forgotten list ("fs01" instead of [fs01]); say so rather than
    # guessing a separator.
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ArgumentError(variable.name, f"must be a list of strings, got {value!r}")
    entries = []
    for index, item in enumerate(value):
        # REG_MULTI_SZ cannot hold an empty entry: it would end the list early.
        if not isinstance(item, str) or not item or "\x00" in item:
            raise ArgumentError(f"{variable.name}[{index}]", f"must be a non-empty string, got {item!r}")
        entries.append(item)
    if _outside(variable, len(entries)):
        raise ArgumentError(variable.name, f"must have {_bounds(variable)} entries, got {len(entries)}")
    return entries


def _outside(variable: Variable, number: int) -> bool:
    return (variable.min is not None and number < variable.min) or (variable.max is not None and number > variable.max)


def _bounds(variable: Variable) -> str:
    low = "" if variable.min is None else str(variable.min)
    high = "" if variable.max is None else str(variable.max)
    return f"{low}..{high}"


_COERCE: dict[str, Callable[[Variable, Any], VariableValue]] = {
    "int": _coerce_int, "bool": _coerce_bool, "str": _coerce_str, "list": _coerce_list,
}


def coerce_variable(variable: Variable, value: Any) -> VariableValue:
    """Check and convert one provided value; ``ArgumentError`` names the variable."""
    return _COERCE[variable.type](variable, value)


def resolve_variables(spec: ArticleSpec, provided: Mapping[str, Any], *,
                      require: bool = True) -> dict[str, VariableValue]:
    """The value of every declared variable: provided (checked and converted), else its default, else None.

    A provided ``None`` counts as not given. Unknown names, and missing required variables when ``require``
    is true, raise ``ArgumentError`` naming the variable. ``require=False`` checks what was given and leaves
    a missing required variable None: a variable is only required on hosts where its article applies.
    Resolving an already resolved mapping gives the same mapping.
    """
    declared = {v.name: v for v in spec.variables}
    for name in provided:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ArgumentError(str(name), f"is not a variable of {spec.id} (declared: {known})")
    resolved: dict[str, VariableValue] = {}
    for name, variable in declared.items():
        value = provided.get(name)
        if value is None:
            if variable.required and require:
                raise ArgumentError(name, f"is required: {variable.description.strip()}")
            resolved[name] = variable.default
        else:
            resolved[name] = coerce_variable(variable, value)
    return resolved
