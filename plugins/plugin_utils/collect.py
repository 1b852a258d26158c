# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""FactRequest -> HostFacts over WinRM with few requests, sent concurrently.

Requests for one article, when the OS facts are already known:

* one CIM_DataFile WQL query for all files;
* one Win32_QuickFixEngineering WQL query for all hotfix ids;
* per registry key holding requested values: one EnumValues (which values exist, their types), then one
  typed Get per value that exists;
* per parent of requested keys: one EnumKey (answers every sibling at once);
* pending restart: one GetMultiStringValue for PendingFileRenameOperations, and the RebootRequired /
  RebootPending keys joined into the EnumKey plan.

On XP SP1 with KB828753's request (3 files, 2 values in one key, 1 hotfix id, values absent) that is 5.
A fact that cannot be read (access denied, provider error) stays absent so the engine reports it as unknown;
an unreachable host or rejected credentials fail the whole gather.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from . import wmi
from .errors import ArgumentError, AuthenticationError, HostUnreachableError, KbfixError
from .model import FactRequest, FileFacts, HostFacts, OsFacts, RegistryValue, registry_key_id
from .winrm import LOG_STEPS, WinRMClient

T = TypeVar("T")

SOURCE_QFE = "qfe"
SOURCE_REGISTRY = "registry"


@dataclass
class _Plan:
    # normalised key id -> (key as sent, [(value name, requested key spelling)])
    values: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    # normalised parent id -> (parent as sent, [(leaf, requested key spelling)])
    parents: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)  # hive roots: they always exist


def _plan(request: FactRequest, pending_keys: tuple[str, ...]) -> _Plan:
    plan = _Plan()
    for key, name in request.registry_values:
        path = wmi.parse_key(key)
        plan.values.setdefault(registry_key_id(str(path)), (str(path), []))[1].append((name, key))
    for key in (*request.registry_keys, *pending_keys):
        path = wmi.parse_key(key)
        if not path.subkey:
            plan.roots.append(key)
            continue
        parent = path.parent
        plan.parents.setdefault(registry_key_id(str(parent)), (str(parent), []))[1].append((path.leaf, key))
    return plan


class _Gatherer:
    def __init__(self, client: WinRMClient, os: OsFacts, request: FactRequest) -> None:
        self.client = client
        self.os = os
        self.request = request
        self.facts = HostFacts(os=os)

    def attempt(self, what: str, call: Callable[[], T]) -> tuple[bool, T | None]:
        """Run one read: (True, result), or (False, None) when it failed. A fact that fails stays absent;
        errors that concern the whole host (unreachable, credentials, a bad request) propagate."""
        try:
            return True, call()
        except (HostUnreachableError, AuthenticationError, ArgumentError):
            raise
        except KbfixError as exc:
            self.client.log(LOG_STEPS, f"{self.client.host}: could not read {what}: {exc}")
            return False, None

    # --- the reads --------------------------------------------------------------------------------

    def files(self) -> dict[str, FileFacts]:
        return self.attempt("file facts", lambda: wmi.file_facts(self.client, list(self.request.files)))[1] or {}

    def qfe(self) -> dict[str, Any]:
        return self.attempt("Win32_QuickFixEngineering",
                            lambda: wmi.qfe_hotfixes(self.client, self.request.hotfix_ids))[1] or {}

    def values_of(self, key: str, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], RegistryValue | None]:
        ok, infos = self.attempt(f"the values of {key}", lambda: wmi.enum_values(self.client, key))
        if not ok:
            return {}
        path = wmi.parse_key(key)
        out: dict[tuple[str, str], RegistryValue | None] = {}
        for name, requested in wanted:
            read = partial(wmi.read_listed_value, self.client, path, name, infos)
            read_ok, found = self.attempt(f"{key}\\{name}", read)
            if read_ok:
                out[(registry_key_id(requested), name.casefold())] = found
        return out

    def subkeys_of(self, parent: str, wanted: list[tuple[str, str]]) -> dict[str, bool]:
        ok, names = self.attempt(f"the subkeys of {parent}", lambda: wmi.enum_keys(self.client, parent))
        if not ok:
            return {}
        folded = {n.casefold() for n in names or []}  # a missing parent: none of its children exist
        return {registry_key_id(requested): leaf.casefold() in folded for leaf, requested in wanted}

    def pfro(self) -> RegistryValue | None:
        return wmi.read_value(self.client, wmi.SESSION_MANAGER, wmi.PFRO_VALUE, "multistring")

    # --- putting it together ----------------------------------------------------------------------

    def run(self) -> HostFacts:
        value_plan, pending_keys = wmi.pending_restart_plan(self.os)
        plan = _plan(self.request, pending_keys)
        with ThreadPoolExecutor(max_workers=self.client.max_in_flight) as pool:
            files = pool.submit(self.files) if self.request.files else None
            qfe = pool.submit(self.qfe) if self.request.hotfix_ids else None
            values = [pool.submit(self.values_of, k, wanted) for k, wanted in plan.values.values()]
            keys = [pool.submit(self.subkeys_of, p, wanted) for p, wanted in plan.parents.values()]
            pfro = pool.submit(self.attempt, "PendingFileRenameOperations", self.pfro)
            self._collect(files, qfe, values, keys, plan)
            pfro_ok, pfro_value = pfro.result()
            pending_values = {(registry_key_id(k), n.casefold()): pfro_value for k, n in value_plan if pfro_ok}
        self._reboot(pending_values)
        return self.facts

    def _collect(self, files: Future[dict[str, FileFacts]] | None, qfe: Future[dict[str, Any]] | None,
                 values: list[Future[dict[tuple[str, str], RegistryValue | None]]],
                 keys: list[Future[dict[str, bool]]], plan: _Plan) -> None:
        facts = self.facts
        if files is not None:
            facts.files = files.result()
        for fut in values:
            facts.registry.update(fut.result())
        for fut_keys in keys:
            facts.registry_keys.update(fut_keys.result())
        for root in plan.roots:
            facts.registry_keys[registry_key_id(root)] = True
        sources: dict[str, list[str]] = {}
        for hotfix in qfe.result() if qfe is not None else {}:
            sources.setdefault(hotfix, []).append(SOURCE_QFE)
        self._registry_records(sources)
        facts.hotfixes = frozenset(sources)
        facts.hotfix_sources = {k: tuple(v) for k, v in sources.items()}

    def _registry_records(self, sources: dict[str, list[str]]) -> None:
        """Legacy hotfix records: the engine asks for the era's record key (``...\\Hotfix\\Q253729``,
        ``...\\Updates\\Windows XP\\SP2\\KB828753``); an existing key named after a requested id counts."""
        wanted = {h.strip().upper() for h in self.request.hotfix_ids}
        for key in self.request.registry_keys:
            leaf = wmi.parse_key(key).leaf.upper()
            if leaf in wanted and self.facts.registry_keys.get(registry_key_id(key)):
                sources.setdefault(leaf, []).append(SOURCE_REGISTRY)

    def _reboot(self, pending_values: dict[tuple[str, str], RegistryValue | None]) -> None:
        pending, reasons = wmi.pending_restart_from(pending_values, self.facts.registry_keys)
        self.facts.reboot_pending = pending
        self.facts.reboot_pending_sources = reasons


def gather(client: WinRMClient, os_facts: OsFacts, request: FactRequest) -> HostFacts:
    """Read what ``request`` asks for. Requests run concurrently, bounded by the client's in-flight limit."""
    return _Gatherer(client, os_facts, request).run()
