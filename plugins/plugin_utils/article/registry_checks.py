# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging the article's registry settings on a host, and the step that would set each one
(docs/engine.md, "Registry settings")."""

from __future__ import annotations

from typing import Any

from .checks import (
    Outcome,
    value_fact_id,
)
from .model import (
    CheckResult,
    HostFacts,
    PlanStep,
    RegistryData,
    RegistryDetails,
    RegistryValue,
)
from .spec_model import (
    RegistrySetting,
)

# ---------------------------------------------------------------------------------------------- registry


def _norm(value: str, setting: RegistrySetting) -> str:
    return value.casefold() if setting.case_insensitive else value


def _data_text(reg_type: str, data: Any) -> str:
    if isinstance(data, list):
        return "[" + ", ".join(data) + "]"
    if isinstance(data, bytes):
        return data.hex()
    return f"{data} ({reg_type})"


def judge_setting(setting: RegistrySetting, desired: RegistryData, host: HostFacts) -> Outcome:
    check_id = f"registry:{setting.path}"
    want_text = ("contains " if setting.mode == "merge" else "") + _data_text(setting.type, desired)
    current = host.value(setting.key, setting.name)
    if current == "missing":
        result = CheckResult(id=check_id, kind="registry", passed=None, expected=want_text, found="not read",
                             message=f"{setting.path} could not be read")
        return Outcome(result, missing=(value_fact_id(setting.key, setting.name),),
                       step=_set_step(setting, desired, None, before_read=False))
    if current is None:
        if setting.default is not None and _matches(setting, setting.default, desired):
            return Outcome(CheckResult(id=check_id, kind="registry", passed=True, expected=want_text,
                                       found="absent",
                                       message=f"absent: Windows uses {_data_text(setting.type, setting.default)}"))
        return Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found="absent",
                                   message=f"{setting.path} does not exist"),
                       step=_set_step(setting, desired, None))
    found_text = _data_text(current.type, current.data)
    if current.type != setting.type:
        return Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found=found_text,
                                   message=f"{setting.path} is {current.type}, Windows only honours "
                                           f"{setting.type} here"),
                       step=_set_step(setting, desired, current))
    if _matches(setting, current.data, desired):
        return Outcome(CheckResult(id=check_id, kind="registry", passed=True, expected=want_text, found=found_text))
    target = _merged(setting, current.data, desired) if setting.mode == "merge" else desired
    return Outcome(CheckResult(id=check_id, kind="registry", passed=False, expected=want_text, found=found_text,
                               message=f"{setting.path} differs"),
                   step=_set_step(setting, target, current))


def _matches(setting: RegistrySetting, current: RegistryData, desired: RegistryData) -> bool:
    if setting.type == "multistring":
        have = [_norm(v, setting) for v in _entries(current)]
        want = [_norm(v, setting) for v in _entries(desired)]
        return set(want) <= set(have) if setting.mode == "merge" else have == want
    if isinstance(current, str) and isinstance(desired, str):
        return _norm(current, setting) == _norm(desired, setting)
    return current == desired


def _entries(data: RegistryData) -> list[str]:
    if isinstance(data, list):
        return [str(v) for v in data]
    return [] if data is None else [str(data)]


def _merged(setting: RegistrySetting, current: RegistryData, desired: RegistryData) -> list[str]:
    # Merge keeps every entry already there (other tools and admins list their servers too) and appends
    # the missing ones in the order asked for.
    have = _entries(current)
    seen = {_norm(v, setting) for v in have}
    added = []
    for value in _entries(desired):
        if _norm(value, setting) not in seen:
            seen.add(_norm(value, setting))
            added.append(value)
    return have + added


def _set_step(setting: RegistrySetting, data: RegistryData, before: RegistryValue | None,
              before_read: bool = True) -> PlanStep:
    if before is None:
        change = "create" if before_read else "set (current value not read)"
        description = f"{change} {setting.path} = {_data_text(setting.type, data)}"
    elif setting.mode == "merge" and before.type == setting.type:
        added = _entries(data)[len(_entries(before.data)):]
        description = f"add {', '.join(added)} to {setting.path} ({setting.type})"
    else:
        description = (f"set {setting.path} from {_data_text(before.type, before.data)} "
                       f"to {_data_text(setting.type, data)}")
    details = RegistryDetails(key=setting.key, name=setting.name, type=setting.type, data=data, before=before,
                              before_read=before_read, mode=setting.mode,
                              case_insensitive=setting.case_insensitive, restart=setting.restart)
    return PlanStep(action="set_registry", description=description, details=details)
