# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix.windows.registry_value`` task: one registry value through StdRegProv (no PowerShell on the
host), with reg.exe for what StdRegProv cannot write. Argument parsing is ``registry_args``'.

Pure library: no Ansible imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import cmdshell, registry_args, wmi
from .errors import ArgumentError, NotFoundError, WriteVerificationError
from .model import OsFacts, RegistryData, RegistryType, RegistryValue
from .winrm import LOG_STEPS, WinRMClient


@dataclass(frozen=True)
class RegistryRequest:
    """The task's arguments, normalised and checked (``request_from``) before any request reaches the host."""

    path: str
    name: str
    type: RegistryType
    data: RegistryData
    state: str
    mode: str
    case_insensitive: bool
    create_key: bool
    view: str

    @property
    def label(self) -> str:
        return f"{self.path}\\{self.name or '(Default)'}"


def request_from(args: Mapping[str, Any]) -> RegistryRequest:
    state, type_, mode = args["state"], args["type"], args["multistring_mode"]
    data_given = args["data"] is not None
    registry_args.validate_combination(state, type_, mode, data_given)
    data = registry_args.normalize_data(type_, args["data"]) if state == "present" else None
    return RegistryRequest(
        path=registry_args.normalize_path(args["path"]), name=registry_args.normalize_name(args["name"]),
        type=type_, data=data, state=state, mode=mode, case_insensitive=args["case_insensitive"],
        create_key=args["create_key"], view=args["view"],
    )


def ensure(client: WinRMClient, req: RegistryRequest, os_facts: Callable[[], OsFacts], *, check_mode: bool = False,
           diff_mode: bool = False) -> dict[str, Any]:
    """Read the value, change it when it differs (not in check mode) and return the task result. ``os_facts``
    is called only for a non-native ``view``."""
    if req.view != "native":
        check_view(req.view, os_facts().architecture)
    current = wmi.read_value(client, req.path, req.name, req.type)
    desired = registry_args.desired_value(req.state, req.type, req.data, req.mode, req.case_insensitive,
                                          current)
    changed = not _unchanged(desired.value, current, req.case_insensitive)
    key_created = False
    if changed and current is None and desired.value is not None:
        key_created = not wmi.key_exists(client, req.path)
        if key_created and not req.create_key:
            raise NotFoundError(f"{client.host}: registry key {req.path} does not exist and create_key is false")
    after = desired.value if changed else current
    if changed and not check_mode:
        after = _apply(client, req, desired.value)
    client.log(LOG_STEPS, f"{req.label}: {_show(current)} -> {_show(after)}" + (" (check mode)" if check_mode else ""))
    result: dict[str, Any] = {
        "changed": changed, "path": req.path, "name": req.name, "key_created": key_created,
        "before": registry_args.display(current), "after": registry_args.display(after),
    }
    if desired.note:
        result["warnings"] = [f"{req.label}: {desired.note}"]
    if diff_mode:
        result["diff"] = {"before_header": req.label, "after_header": req.label,
                          "before": _diff_side(req, current), "after": _diff_side(req, after)}
    return result


def check_view(view: str, arch: str) -> None:
    # DCOM WMI picks a registry view with the __ProviderArchitecture context; a WS-Man Invoke has no way
    # to carry it, so StdRegProv always answers from its native view. Say so rather than write elsewhere.
    if view == "64" and arch == "x86":
        raise ArgumentError("view", "a 32-bit Windows has no 64-bit registry view")
    if view == "32" and arch != "x86":
        raise ArgumentError("view", f"the 32-bit view of a {arch} host cannot be selected over WinRM's WMI "
                                    "plugin; address 32-bit software's keys by their real path "
                                    "(HKLM\\SOFTWARE\\Wow6432Node\\...) with view=native")


def _unchanged(desired: RegistryValue | None, current: RegistryValue | None, case_insensitive: bool) -> bool:
    if registry_args.same(desired, current, case_insensitive):
        return True
    # GetExpandedStringValue hands back the data expanded; wmi.same_value accepts any expansion of %VARS%.
    return desired is not None and desired.type == "expandstring" and wmi.same_value(desired, current)


def _apply(client: WinRMClient, req: RegistryRequest, desired: RegistryValue | None) -> RegistryValue | None:
    if desired is None:
        return wmi.delete_value(client, req.path, req.name).after
    if desired.type == "multistring" and not desired.data:
        return _write_empty_multistring(client, req)
    return wmi.set_value(client, req.path, req.name, desired, create=req.create_key).after


def _write_empty_multistring(client: WinRMClient, req: RegistryRequest) -> RegistryValue | None:
    # StdRegProv.SetMultiStringValue refuses an empty sValue array (a WS-Man array with no elements is a null
    # parameter), so an empty REG_MULTI_SZ is written by reg.exe, which every WinRM-capable Windows has.
    target = ["/ve"] if req.name == "" else ["/v", req.name]
    cmdshell.run(client, "reg", ["add", req.path, *target, "/t", "REG_MULTI_SZ", "/d", "", "/f"], timeout=120)
    after = wmi.read_value(client, req.path, req.name, "multistring")
    if after is None or after.type != "multistring" or after.data:
        raise WriteVerificationError(f"{client.host}: wrote an empty multistring to {req.label} but read back "
                                     f"{_show(after)}")
    return after


def _show(value: RegistryValue | None) -> str:
    shown = registry_args.display(value)
    return "(absent)" if shown is None else f"{shown['type']} {shown['data']!r}"


def _diff_side(req: RegistryRequest, value: RegistryValue | None) -> dict[str, Any]:
    shown = registry_args.display(value)
    return {} if shown is None else {"path": req.path, "name": req.name, **shown}
