# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix.windows.registry_value`` task: one registry value read, compared and written with read-back
through ``Transport`` (StdRegProv over WinRM, the remote registry on NT 4.0; no PowerShell on the host).
Argument parsing is ``registry_args``'.

Pure library: no Ansible imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..article.model import OsFacts, RegistryData, RegistryType, RegistryValue
from ..errors import ArgumentError, NotFoundError
from ..transport.base import LOG_STEPS, Transport, same_value
from . import registry_args


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


def ensure(transport: Transport, req: RegistryRequest, os_facts: Callable[[], OsFacts], *, check_mode: bool = False,
           diff_mode: bool = False) -> dict[str, Any]:
    """Read the value, change it when it differs (not in check mode) and return the task result. ``os_facts``
    is called only for a non-native ``view``. The data is checked against what the transport can carry before
    any request."""
    if req.state == "present":  # REG_NONE (data None) too: its key and name go on a reg.exe line
        # The data as given; a merged multistring is checked again, whole, by set_value before it writes.
        transport.check_write(req.path, req.name, RegistryValue(req.type, req.data))
    if req.view != "native":
        check_view(req.view, os_facts().architecture)
    current = transport.read_value(req.path, req.name, req.type)
    desired = registry_args.desired_value(req.state, req.type, req.data, req.mode, req.case_insensitive,
                                          current)
    changed = not _unchanged(desired.value, current, req.case_insensitive)
    key_created = False
    if changed and current is None and desired.value is not None:
        key_created = not transport.key_exists(req.path)
        if key_created and not req.create_key:
            raise NotFoundError(f"{transport.host}: registry key {req.path} does not exist and create_key is false")
    after = desired.value if changed else current
    if changed and not check_mode:
        after = _apply(transport, req, desired.value)
    transport.log(LOG_STEPS, f"{req.label}: {_show(current)} -> {_show(after)}"
                  + (" (check mode)" if check_mode else ""))
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
    # GetExpandedStringValue hands back the data expanded; same_value accepts any expansion of %VARS%.
    return desired is not None and desired.type == "expandstring" and same_value(desired, current)


def _apply(transport: Transport, req: RegistryRequest, desired: RegistryValue | None) -> RegistryValue | None:
    if desired is None:
        return transport.delete_value(req.path, req.name).after
    return transport.set_value(req.path, req.name, desired, create=req.create_key).after


def _show(value: RegistryValue | None) -> str:
    shown = registry_args.display(value)
    return "(absent)" if shown is None else f"{shown['type']} {shown['data']!r}"


def _diff_side(req: RegistryRequest, value: RegistryValue | None) -> dict[str, Any]:
    shown = registry_args.display(value)
    return {} if shown is None else {"path": req.path, "name": req.name, **shown}
