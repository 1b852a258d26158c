# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host snapshots: a recorded host's state, read from YAML, answering fact requests as a transport would
(docs/engine.md, "Host snapshots"). Used by the unit tests and the offline demo."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from ..errors import SpecError
from .checks import (
    file_fact_id,
    key_fact_id,
    value_fact_id,
)
from .model import (
    REGISTRY_TYPES,
    FactRequest,
    FileFacts,
    HostFacts,
    RegistryType,
    RegistryValue,
    os_facts_from_mapping,
    registry_key_id,
)

# ---------------------------------------------------------------------------------------- host snapshots


@dataclass(frozen=True)
class HostSnapshot:
    """A recorded host (docs/engine.md, "Host snapshots"): its state, and which facts cannot be read.

    ``answer`` plays the transport: it returns the ``HostFacts`` a collector would produce for a request,
    so the engine can be run offline against bundled hosts.
    """

    name: str
    description: str
    state: HostFacts
    unreadable: frozenset[str]

    def answer(self, request: FactRequest) -> HostFacts:
        state = self.state
        files = {}
        for path in request.files:
            if file_fact_id(path).casefold() not in self.unreadable:
                known = state.file(path)
                files[path.casefold()] = (dataclasses.replace(known, path=path) if known
                                          else FileFacts(path=path, exists=False))
        registry: dict[tuple[str, str], RegistryValue | None] = {}
        for key, name in request.registry_values:
            if value_fact_id(key, name).casefold() not in self.unreadable:
                registry[(registry_key_id(key), name.casefold())] = state.registry.get(
                    (registry_key_id(key), name.casefold()))
        keys = {}
        for key in request.registry_keys:
            if key_fact_id(key).casefold() not in self.unreadable:
                keys[registry_key_id(key)] = self._key_exists(key)
        return HostFacts(os=state.os, files=files, registry=registry, registry_keys=keys, hotfixes=state.hotfixes,
                         hotfix_sources=dict(state.hotfix_sources), reboot_pending=state.reboot_pending,
                         reboot_pending_sources=state.reboot_pending_sources,
                         pending_renames=state.pending_renames)

    def _key_exists(self, key: str) -> bool:
        key_id = registry_key_id(key)
        if self.state.registry_keys.get(key_id):
            return True
        # A key holding a value exists, and so do its parents.
        return any(k == key_id or k.startswith(key_id + "\\") for k, _value in self.state.registry)


def _snapshot_mapping(value: Any, source: str, where: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(source, where, "must be a mapping")
    allowed = tuple(allowed)
    stray = [str(k) for k in value if k not in allowed]
    if stray:
        raise SpecError(source, f"{where}.{stray[0]}" if where else stray[0],
                        f"unknown key (allowed: {', '.join(allowed)})")
    return value


def _snapshot_time(value: Any, source: str, where: str) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise SpecError(source, where, f"{value!r} is not an ISO date and time") from None
    if not isinstance(value, datetime.datetime):
        raise SpecError(source, where, f"{value!r} is not an ISO date and time")
    if value.tzinfo is None:
        raise SpecError(source, where, "needs a time zone (end it with Z for UTC)")
    return value.astimezone(datetime.UTC)


def _snapshot_files(data: Any, source: str) -> dict[str, FileFacts]:
    files = {}
    for path, body in (data or {}).items():
        where = f"files.{path}"
        body = _snapshot_mapping(body or {}, source, where, ("version", "size", "modified"))
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise SpecError(source, f"{where}.version", "must be a string (quote it)")
        files[str(path).casefold()] = FileFacts(path=str(path), exists=True, version=version, size=body.get("size"),
                                                modified=_snapshot_time(body.get("modified"), source,
                                                                        f"{where}.modified"))
    return files


def _snapshot_registry(data: Any, source: str) -> dict[tuple[str, str], RegistryValue | None]:
    registry: dict[tuple[str, str], RegistryValue | None] = {}
    for key, values in (data or {}).items():
        for name, body in (values or {}).items():
            where = f"registry.{key}.{name}"
            body = _snapshot_mapping(body, source, where, ("type", "data"))
            reg_type = body.get("type")
            if reg_type not in REGISTRY_TYPES:
                raise SpecError(source, f"{where}.type",
                                f"{reg_type!r} is not one of {', '.join(REGISTRY_TYPES)}")
            data_value = body.get("data")
            if reg_type == "binary" and isinstance(data_value, str):
                data_value = bytes.fromhex(data_value)
            registry[(registry_key_id(str(key)), str(name).casefold())] = RegistryValue(
                type=cast(RegistryType, reg_type), data=data_value)
    return registry


_SNAPSHOT_KEYS = ("name", "description", "os", "files", "registry", "registry_keys", "hotfixes", "reboot_pending",
                  "pending_renames", "unreadable")
_OS_KEYS = ("version", "service_pack", "architecture", "product_type", "caption", "r2", "system_root", "last_boot")


def host_snapshot_from_data(data: Any, source: str) -> HostSnapshot:
    """Build a ``HostSnapshot`` from parsed YAML (format in docs/engine.md)."""
    top = _snapshot_mapping(data, source, "", _SNAPSHOT_KEYS)
    os_data = _snapshot_mapping(top.get("os"), source, "os", _OS_KEYS)
    os = os_facts_from_mapping(os_data, "os", lambda field, message: SpecError(source, field, message))
    hotfixes = top.get("hotfixes") or {}
    if not isinstance(hotfixes, Mapping):
        raise SpecError(source, "hotfixes", "must map hotfix ids to their sources ({KB977381: [qfe]})")
    for key in ("registry_keys", "reboot_pending", "pending_renames", "unreadable"):
        if not isinstance(top.get(key) or [], list):
            raise SpecError(source, key, "must be a list")
    reboot_sources = tuple(str(s) for s in top.get("reboot_pending") or ())
    state = HostFacts(
        os=os, files=_snapshot_files(top.get("files"), source),
        registry=_snapshot_registry(top.get("registry"), source),
        registry_keys={registry_key_id(str(k)): True for k in top.get("registry_keys") or ()},
        hotfixes=frozenset(str(h).upper() for h in hotfixes),
        hotfix_sources={str(h).upper(): tuple(s or ()) for h, s in hotfixes.items()},
        reboot_pending=bool(reboot_sources), reboot_pending_sources=reboot_sources,
        # Left out: not read (the engine then cannot rule out that the restart is for the article).
        pending_renames=(tuple(str(e) for e in top["pending_renames"] or ())
                         if "pending_renames" in top else None),
    )
    return HostSnapshot(name=str(top.get("name") or Path(source).stem), description=str(top.get("description", "")),
                        state=state, unreadable=frozenset(str(u).casefold() for u in top.get("unreadable") or ()))


def load_host_snapshot(path: str | Path) -> HostSnapshot:
    """Read a host snapshot YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(path.name, "", f"cannot read host snapshot: {exc}") from None
    return host_snapshot_from_data(data, path.name)
