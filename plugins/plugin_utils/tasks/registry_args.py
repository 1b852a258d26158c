# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Task arguments of ``kbfix.windows.registry_value``: paths, types and data as users write them.

Everything here is pure (no I/O) and raises ``ArgumentError`` naming the argument, so a bad task fails before
any request reaches the host. The quirks handled are the ones users meet with other registry modules:

* paths: ``HKLM:\\SOFTWARE\\X`` (PowerShell drive), ``Registry::HKEY_LOCAL_MACHINE\\...`` (PowerShell provider),
  ``HKEY_LOCAL_MACHINE\\...`` and ``HKLM\\...`` all name the same key;
* dword/qword: integers, decimal or ``0x`` hex strings (YAML hands ``0xFFFFFFFF`` over as an int, ``'0x10'`` as
  a string), negative numbers as the two's complement of the same width (``-1`` is ``0xFFFFFFFF``, as
  ``reg.exe`` and ``.reg`` files show a DWORD written from a signed int), anything out of range refused;
* binary: a hex string (``'0a0b'``, ``'0x0a0b'``, ``'hex:0a,0b'``, ``'0a 0b'``) or a list of byte values;
* multistring: a list (a single string is one entry); entries cannot be empty, because an empty string ends a
  REG_MULTI_SZ on Windows and every later entry would be lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..article import model
from ..article.model import RegistryData, RegistryType, RegistryValue
from ..errors import ArgumentError
from ..transport.base import MAX_VALUE_NAME
from ..windows_text import windows_string

# The module's type choices, for the action plugin (which imports only the task layer).
REGISTRY_TYPES = model.REGISTRY_TYPES
# Hive spellings accepted in ``path`` -> the short form StdRegProv calls use (registry_path.HIVES knows both).
HIVE_ALIASES: dict[str, str] = {
    "HKLM": "HKLM", "HKEY_LOCAL_MACHINE": "HKLM",
    "HKCU": "HKCU", "HKEY_CURRENT_USER": "HKCU",
    "HKU": "HKU", "HKEY_USERS": "HKU",
    "HKCR": "HKCR", "HKEY_CLASSES_ROOT": "HKCR",
    "HKCC": "HKCC", "HKEY_CURRENT_CONFIG": "HKCC",
}
MAX_KEY_NAME = 255  # characters in one key name (RegCreateKeyEx)
MULTISTRING_MODES = ("replace", "merge", "remove")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PROVIDER_PREFIX = re.compile(r"^(?:Microsoft\.PowerShell\.Core\\)?Registry::", re.IGNORECASE)
_HEX_SEPARATORS = re.compile(r"[\s,:_-]")


def normalize_path(path: Any, field: str = "path") -> str:
    """The key as ``HKLM\\SOFTWARE\\X`` (short hive name, no leading/trailing backslash)."""
    if not isinstance(path, str) or not path.strip():
        raise ArgumentError(field, "a registry key path such as HKLM\\SOFTWARE\\Example is required")
    text = _PROVIDER_PREFIX.sub("", path.strip())
    if _CONTROL.search(text):
        raise ArgumentError(field, f"{path!r} contains a control character")
    hive, _sep, rest = text.partition("\\")
    short = HIVE_ALIASES.get(hive.rstrip(":").upper())
    if short is None:
        raise ArgumentError(field, f"{path!r} does not start with a registry hive "
                                   f"(HKLM, HKCU, HKU, HKCR, HKCC or their HKEY_ names)")
    rest = rest.strip("\\")
    if not rest:
        raise ArgumentError(field, f"{path!r} names the hive itself; values live in a key below it")
    parts = rest.split("\\")
    if any(not p for p in parts):
        raise ArgumentError(field, f"{path!r} has an empty key name (two backslashes in a row)")
    if any(p in (".", "..") for p in parts):
        # The registry has no parent references: Windows would create keys literally named '.' or '..'.
        raise ArgumentError(field, f"{path!r}: '.' and '..' are not key names the registry resolves; give the "
                                   "key's own path")
    if any(len(p) > MAX_KEY_NAME for p in parts):
        raise ArgumentError(field, f"{path!r} has a key name longer than {MAX_KEY_NAME} characters")
    return short + "\\" + "\\".join(parts)


def normalize_name(name: Any, field: str = "name") -> str:
    """The value name; None and '' both mean the key's default (unnamed) value."""
    if name is None:
        return ""
    return windows_string(name, field, limit=MAX_VALUE_NAME, what="a registry value name")


# --- data --------------------------------------------------------------------------------------------------


def _integer(data: Any, bits: int, field: str, type_name: str) -> int:
    if isinstance(data, bool):
        # YAML turns yes/no/true/false into booleans; writing 1 for "yes" silently would hide the mistake.
        raise ArgumentError(field, f"{type_name} data must be a number, not the boolean {data!r}")
    number: int
    if isinstance(data, float):
        if not data.is_integer():
            raise ArgumentError(field, f"{type_name} data must be a whole number, not {data!r}")
        number = int(data)
    elif isinstance(data, str):
        number = _parse_int_text(data, field, type_name)
    elif isinstance(data, int):
        number = data
    else:
        raise ArgumentError(field, f"{type_name} data must be a number, not {type(data).__name__}")
    top = 1 << bits
    if -(top // 2) <= number < 0:
        return top + number  # two's complement of the same width
    if not 0 <= number < top:
        raise ArgumentError(field, f"{number} does not fit in a {type_name} "
                                   f"({-(top // 2)} to {top - 1}, or 0x0 to 0x{top - 1:X})")
    return number


def _parse_int_text(text: str, field: str, type_name: str) -> int:
    cleaned = text.strip().replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", cleaned):
            return int(cleaned, 16)
        if re.fullmatch(r"[+-]?\d+", cleaned):
            return int(cleaned, 10)
    except ValueError:
        pass
    raise ArgumentError(field, f"{text!r} is not a {type_name} number (decimal, or hex with 0x)")


def _binary(data: Any, field: str) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        text = data.strip()
        if text.lower().startswith("hex:"):
            text = text[4:]  # the .reg file notation, hex:0a,0b
        if text.lower().startswith("0x"):
            text = text[2:]
        digits = _HEX_SEPARATORS.sub("", text)
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", digits):
            raise ArgumentError(field, f"{data!r} is not a hex string with two digits per byte")
        return bytes.fromhex(digits)
    if isinstance(data, Sequence):
        out = bytearray()
        for index, item in enumerate(data):
            value = _integer(item, 64, f"{field}[{index}]", "binary byte")
            if not 0 <= value <= 255:
                raise ArgumentError(f"{field}[{index}]", f"{item!r} is not a byte value (0 to 255)")
            out.append(value)
        return bytes(out)
    raise ArgumentError(field, f"binary data must be a hex string or a list of byte values, "
                               f"not {type(data).__name__}")


def _string(data: Any, field: str, type_name: str) -> str:
    if isinstance(data, bool) or data is None or isinstance(data, (list, dict)):
        raise ArgumentError(field, f"{type_name} data must be a string, not {data!r}")
    text = data if isinstance(data, str) else str(data)
    if "\x00" in text:
        raise ArgumentError(field, "a registry string cannot contain NUL")
    return text


def _multistring(data: Any, field: str) -> list[str]:
    if data is None:
        return []
    items = [data] if isinstance(data, str) else data
    if not isinstance(items, Sequence) or isinstance(items, (bytes, bytearray)):
        raise ArgumentError(field, f"multistring data must be a list of strings, not {type(data).__name__}")
    out = []
    for index, item in enumerate(items):
        text = _string(item, f"{field}[{index}]", "multistring entry")
        if text == "":
            raise ArgumentError(f"{field}[{index}]", "a multistring entry cannot be empty: Windows ends the "
                                                     "list at an empty string and drops every later entry")
        out.append(text)
    return out


def normalize_data(type_: str, data: Any, field: str = "data") -> RegistryData:
    """``data`` in the shape ``RegistryValue`` holds for ``type_`` (see the module docstring for the rules)."""
    if type_ not in REGISTRY_TYPES:
        raise ArgumentError("type", f"must be one of {', '.join(REGISTRY_TYPES)}, not {type_!r}")
    if type_ == "dword":
        return _integer(data, 32, field, "dword")
    if type_ == "qword":
        return _integer(data, 64, field, "qword")
    if type_ == "binary":
        return _binary(data, field)
    if type_ == "multistring":
        return _multistring(data, field)
    if type_ == "none":
        if data not in (None, "", [], b""):
            raise ArgumentError(field, "a value of type none has no data; leave data out")
        return None
    return _string(data, field, type_)


# --- desired value ------------------------------------------------------------------------------------------


def _fold(text: str, case_insensitive: bool) -> str:
    return text.casefold() if case_insensitive else text


def merge_entries(current: Sequence[str], wanted: Sequence[str], case_insensitive: bool) -> list[str]:
    """Keep every current entry (other tools and admins list their servers too), append missing ones in the
    order asked for; duplicates in ``wanted`` are added once."""
    seen = {_fold(c, case_insensitive) for c in current}
    out = list(current)
    for entry in wanted:
        if _fold(entry, case_insensitive) not in seen:
            seen.add(_fold(entry, case_insensitive))
            out.append(entry)
    return out


def remove_entries(current: Sequence[str], unwanted: Sequence[str], case_insensitive: bool) -> list[str]:
    drop = {_fold(u, case_insensitive) for u in unwanted}
    return [c for c in current if _fold(c, case_insensitive) not in drop]


@dataclass(frozen=True)
class Desired:
    """What the value should become. ``value`` None: the value must not exist."""

    value: RegistryValue | None
    note: str = ""  # why nothing can be done, for a warning (remove mode on a value of another type)


def desired_value(state: str, type_: RegistryType, data: RegistryData, mode: str, case_insensitive: bool,
                  current: RegistryValue | None) -> Desired:
    """The value the host should end up with, given what it has now (merge and remove depend on it)."""
    if state == "absent":
        return Desired(None)
    if type_ != "multistring" or mode == "replace":
        return Desired(RegistryValue(type_, data))
    wanted = list(data) if isinstance(data, list) else []
    if mode == "merge":
        have = current.data if current is not None and current.type == "multistring" else []
        return Desired(RegistryValue("multistring", merge_entries(_as_entries(have), wanted, case_insensitive)))
    # remove
    if current is None:
        return Desired(None)
    if current.type != "multistring":
        return Desired(current, note=f"the value is a {current.type}, not a multistring: nothing removed")
    return Desired(RegistryValue("multistring", remove_entries(_as_entries(current.data), wanted, case_insensitive)))


def _as_entries(data: RegistryData) -> list[str]:
    return [str(d) for d in data] if isinstance(data, list) else []


def same(desired: RegistryValue | None, found: RegistryValue | None, case_insensitive: bool) -> bool:
    """Equality the module judges idempotence by. Exact, except multistring entries under
    ``case_insensitive`` (server names) and expandstring data, which the provider returns expanded (that
    comparison is left to ``same_value``, which the caller applies as well)."""
    if desired is None or found is None:
        return desired is found
    if desired.type != found.type:
        return False
    if desired.type == "multistring" and case_insensitive:
        return [_fold(e, True) for e in _as_entries(desired.data)] == [_fold(e, True) for e in _as_entries(found.data)]
    return desired.data == found.data


def validate_combination(state: str, type_: str, mode: str, data_given: bool) -> None:
    """Argument combinations the argument spec cannot express."""
    if mode not in MULTISTRING_MODES:
        raise ArgumentError("multistring_mode", f"must be one of {', '.join(MULTISTRING_MODES)}")
    if mode != "replace" and type_ != "multistring":
        raise ArgumentError("multistring_mode", f"{mode} works on multistring values only, not {type_}")
    if state == "absent" and mode == "merge":
        raise ArgumentError("multistring_mode", "merge adds entries and needs state=present")
    if state == "absent" and mode == "remove":
        raise ArgumentError("multistring_mode", "remove keeps the value and needs state=present "
                                                "(state=absent deletes the whole value)")
    if state == "present" and not data_given and type_ != "none":
        raise ArgumentError("data", f"is required with state=present and type={type_} "
                                    "(use data: [] for an empty multistring, or type: none)")
    if mode != "replace" and not data_given:
        raise ArgumentError("data", f"multistring_mode={mode} needs the entries to {mode}")


def display(value: RegistryValue | None) -> dict[str, Any] | None:
    """A value for task results and diffs: ``{type, data}`` with binary data as hex, or None when absent."""
    return None if value is None else value.to_dict()
