# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks every task argument gets before Ansible's own argument spec converts it, and before any request.

Ansible's validation is lenient where a Windows host is not: it turns a list given for a string into the text
``"['a']"``, a boolean given for a number into 1, and lets NUL and undecodable bytes through to whatever
builds the request (where a lone surrogate ends as a ``UnicodeEncodeError`` traceback). The bad-input
generator (tests/unit/plugins/bad_inputs.py) found each of these; every one is refused here with an
``ArgumentError`` naming the argument (``data[2]``, ``articles[0].variables.reconnectable_servers[1]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError

# No task waits longer than a day: a larger number is a typo (or 2**64), not a plan.
MAX_TIMEOUT = 86400


def _aliases(spec: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    names = {name: name for name in spec}
    for name, option in spec.items():
        for alias in option.get("aliases", ()):
            names[alias] = name
    return names


def check_raw(spec: Mapping[str, Mapping[str, Any]], raw: Mapping[str, Any]) -> None:
    """Refuse what Ansible's validation would let through or mangle: NUL and text that is not UTF-8 anywhere,
    a list or mapping for a string, a boolean for a number, a list or mapping inside a list of strings."""
    names = _aliases(spec)
    for given, value in raw.items():
        field = str(given)
        check_text(value, field)
        option = spec.get(names.get(field, ""), {})
        kind = option.get("type", "str" if option else None)
        if kind == "str" and isinstance(value, (Mapping, list, tuple, set)):
            raise ArgumentError(field, f"must be a string, not a {_kind(value)}")
        if kind == "int" and isinstance(value, bool):
            raise ArgumentError(field, f"must be a number, not the boolean {value}")
        if kind == "list" and option.get("elements") == "str" and isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, (Mapping, list, tuple, set)):
                    raise ArgumentError(f"{field}[{index}]", f"must be a string, not a {_kind(item)}")


def check_text(value: Any, field: str) -> None:
    """Every string in ``value`` (nested lists and mappings included) is UTF-8 text without NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ArgumentError(field, "contains a NUL character, which no Windows string can carry")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ArgumentError(field, f"is not valid UTF-8 text (an undecodable byte at position {exc.start})") \
                from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, field)
            check_text(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple, set)):
        for index, item in enumerate(value):
            check_text(item, f"{field}[{index}]")


# A path the controller's OS can resolve (Linux PATH_MAX); a longer one is a mistake, not a file.
MAX_CONTROLLER_PATH = 4096


def check_controller_path(path: str, field: str) -> None:
    check_text(path, field)
    if len(path) > MAX_CONTROLLER_PATH:
        raise ArgumentError(field, f"is {len(path)} characters long; a controller path has at most "
                                   f"{MAX_CONTROLLER_PATH}")


def check_timeout(value: int, field: str, minimum: int = 1) -> None:
    if not minimum <= value <= MAX_TIMEOUT:
        raise ArgumentError(field, f"must be between {minimum} and {MAX_TIMEOUT} seconds, not {value}")


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, Mapping) else "list"
