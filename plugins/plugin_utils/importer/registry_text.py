# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry sections of an article: key, value name, type, data, and the data left to the administrator.

Shapes seen in articles: a key line (``HKEY_LOCAL_MACHINE\\...``, sometimes wrapped onto a second line) followed
by ``Value Name:`` / ``Data Type:`` / ``Data:`` (or ``Value name`` / ``Value type`` / ``Value data``) lines; a
``Registry value:`` line giving the key and the value name together, followed by ``Value Type:``, ``Default:``
and ``Range:``; Markdown lists of the same labels. Every registry value an article mentions that cannot be
placed (no key, no name, no type) is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Findings

_KEY = re.compile(r"(?:HKEY_LOCAL_MACHINE|HKLM)\\[^\"'`]*")
_KEY_END = re.compile(r"(?:,\s|\.\s|\.$|\s{2,}|\s(?:and|to|then|is|as)\s)")
_LABEL = re.compile(r"^[-*\u2022\d.\s]*(value name|name|data type|value type|type|value data|data|value|radix|default|"
                    r"range|valid range|dword name|dword value name|qword name|string name|string value name|"
                    r"multi-string name|multi-string value name)\s*:\s*(.*)$", re.IGNORECASE)
_NAMED_TYPES = {"dword": "REG_DWORD", "qword": "REG_QWORD", "string": "REG_SZ", "multi-string": "REG_MULTI_SZ"}
TYPES = {"REG_DWORD": "dword", "REG_SZ": "string", "REG_EXPAND_SZ": "expandstring", "REG_MULTI_SZ": "multistring",
         "REG_QWORD": "qword"}
_RANGE = re.compile(r"(\d+)\s*(?:-|\u2013|to)\s*(\d+)")


@dataclass
class RegistryValue:
    key: str  # HKLM\...
    name: str
    type: str  # the spec's spelling
    value: int | str | None  # a literal the article gives
    range: tuple[int, int] | None  # the range the administrator chooses in
    default: int | None
    source: str
    notes: str = ""


def read_registry(lines: list[str], findings: Findings) -> list[RegistryValue]:
    values: list[RegistryValue] = []
    for index, line in enumerate(lines):
        match = _KEY.search(line)
        if match is None:
            continue
        key_text = _KEY_END.split(match[0], maxsplit=1)[0].strip().rstrip(".:")
        follow = index + 1
        # A key wrapped onto the next line ("...\Session Manager\Memory" / "Management").
        if follow < len(lines) and re.fullmatch(r"\s+[A-Z][\w ]*", lines[follow]) and not _LABEL.match(
                lines[follow]) and len(lines[follow].strip()) < 40:
            key_text = f"{key_text} {lines[follow].strip()}"
            follow += 1
        labels: dict[str, str] = {}
        for offset in range(follow, min(follow + 12, len(lines))):
            label = _LABEL.match(lines[offset])
            if label:
                labels.setdefault(_label_kind(label[1]), label[2].strip().strip("`*"))
                typed = label[1].casefold().split(" ")[0]
                if typed in _NAMED_TYPES and label[1].casefold() != "value name":
                    labels.setdefault("type", _NAMED_TYPES[typed])
            elif lines[offset].strip() and labels:
                break
        key = "HKLM\\" + key_text.split("\\", 1)[1].rstrip("\\")
        label_before = lines[index - 1].casefold() if index else ""
        name = labels.get("name")
        if name is None and ("registry value" in label_before or "registry value" in line.casefold()):
            key, name = key.rsplit("\\", 1)
        source = " ".join([line.strip(), *(f"{k}: {v}" for k, v in labels.items())])
        if not labels and name is None:
            findings.unplace("registry", line, "a registry key with no value name, type or data after it")
            continue
        if not name:
            findings.unplace("registry", source, "the value name is not given")
            continue
        reg_type = TYPES.get(labels.get("type", "").split()[0].upper() if labels.get("type") else "")
        if reg_type is None:
            findings.unplace("registry", source, f"type {labels.get('type')!r} is not one the format supports")
            continue
        values.append(_value(key, name.strip("` "), reg_type, labels, source))
    _mentions(lines, values, findings)
    return values


def _label_kind(label: str) -> str:
    folded = label.casefold()
    if folded in ("value name", "name") or folded.endswith(" name"):
        return "name"
    if "type" in folded:
        return "type"
    if folded in ("value data", "data", "value"):
        return "data"
    if "range" in folded:
        return "range"
    return folded


def _value(key: str, name: str, reg_type: str, labels: dict[str, str], source: str) -> RegistryValue:
    data = labels.get("data", "")
    radix_hex = labels.get("radix", "").casefold().startswith("hex")
    default = None
    default_match = re.match(r"\s*(\d+)", labels.get("default", ""))
    if default_match:
        default = int(default_match[1])
    ranges = [(int(a), int(b)) for a, b in _RANGE.findall(labels.get("range", "") + " " + data)]
    if reg_type in ("dword", "qword"):
        literal = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*(\(.*\))?\s*", data)
        if literal and not ranges:
            number = int(literal[1], 16 if literal[1].startswith("0x") or radix_hex else 10)
            return RegistryValue(key, name, reg_type, number, None, default, source)
        if ranges or not data:
            lows = [pair[0] for pair in ranges] + [int(n) for n in re.findall(r"\b(\d+)\s+or\b", data)]
            low = min(lows) if lows else 0
            high = max(pair[1] for pair in ranges) if ranges else 0xFFFFFFFF
            notes = data if " or " in data else ""
            return RegistryValue(key, name, reg_type, None, (low, high), default, source, notes)
    if data and reg_type in ("string", "expandstring"):
        return RegistryValue(key, name, reg_type, data.strip("\"'` "), None, None, source)
    return RegistryValue(key, name, reg_type, None, None, default, source)


def _mentions(lines: list[str], values: list[RegistryValue], findings: Findings) -> None:
    """Registry values named in prose ("modify the AsynchronousCredits registry entry", "the following
    REG_MULTI_SZ registry key") that no key section placed."""
    placed = {v.name.casefold() for v in values}
    seen: set[str] = set()
    for line in lines:
        for match in re.finditer(r"\bthe ([A-Z][A-Za-z0-9]+) registry (?:entry|value)", line):
            name = match[1]
            if name.casefold() not in placed and name.casefold() not in seen and name not in ("Windows",):
                seen.add(name.casefold())
                findings.unplace("registry", line, f"the article names the value {name} but no registry key for "
                                                   "it (lost from the text?): not placed")
        for reg_type in TYPES:
            if re.search(rf"\b(?:following|this|the) {reg_type} registry (?:key|value|entry)", line) and not any(
                    v.type == TYPES[reg_type] for v in values):
                findings.unplace("registry", line, f"a {reg_type} value is described, but its key and name are "
                                                   "not in the text: not placed")
