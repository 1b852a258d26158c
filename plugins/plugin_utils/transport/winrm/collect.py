# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""FactRequest -> HostFacts over WinRM with few requests, sent concurrently.

Requests for one article, when the OS facts are already known:

* one CIM_DataFile WQL query for all files;
* one Win32_QuickFixEngineering WQL query for all hotfix ids. Up to Server 2003 that class *is* a view of
  the legacy record keys (``...\\Updates\\<product>\\SPn\\KB...``, ``...\\Windows NT\\CurrentVersion\\Hotfix\\Q...``),
  so requested record keys of the queried ids are answered by it (EnumKey only if the query fails);
* per requested value whose type the spec gives (``FactRequest.registry_value_types``): one typed Get. Only
  a wrong-type answer costs more (EnumValues, then the Get of the real type, so the engine sees that type);
* per registry key holding requested values of unknown type: one EnumValues, then one typed Get per value
  that exists;
* per parent of other requested keys: one EnumKey (answers every sibling at once);
* pending restart: the indicators the articles' installers leave (``pending_restart_plan(os,
  "article")``): one GetMultiStringValue for PendingFileRenameOperations and, from Vista on, the CBS
  RebootPending key in the EnumKey plan.

Each seed article on its test systems costs at most 5 requests (tests/integration/test_request_budget.py).
A fact that cannot be read (access denied, provider error) stays absent so the engine reports it as unknown;
an unreachable host or rejected credentials fail the whole gather.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ...article.model import FactRequest, FileFacts, HostFacts, OsFacts, RegistryType, RegistryValue, registry_key_id
from ...errors import ArgumentError, AuthenticationError, HostUnreachableError, KbfixError
from ..base import LOG_STEPS, SOURCE_QFE, SOURCE_REGISTRY, RestartScope
from ..indicators import PFRO_VALUE, SESSION_MANAGER, pending_restart_from, pending_restart_plan
from ..registry_path import parse_key
from . import replies, stdregprov, wmi
from .client import WinRMClient

T = TypeVar("T")


QfeResult = dict[str, list[replies.WmiObject]]
KeyGroups = dict[str, tuple[str, list[tuple[str, str]]]]  # id -> (key or parent as sent, [(name, as requested)])
ValueId = tuple[str, str]  # (registry_key_id(key), name.casefold()): how HostFacts.registry is keyed
Values = dict[ValueId, RegistryValue | None]


def _value_id(key: str, name: str) -> ValueId:
    return registry_key_id(key), name.casefold()


@dataclass(frozen=True)
class _TypedRead:
    key: str  # as requested: HostFacts is keyed by the caller's spelling
    name: str
    type: RegistryType


@dataclass
class _Plan:
    typed: list[_TypedRead] = field(default_factory=list)  # values of a known type: one typed Get each
    values: KeyGroups = field(default_factory=dict)  # key -> values of unknown type (EnumValues first)
    parents: KeyGroups = field(default_factory=dict)  # parent -> leaf names of keys whose existence matters
    records: list[tuple[str, wmi.QfeRecord]] = field(default_factory=list)  # record keys QFE answers
    roots: list[str] = field(default_factory=list)  # hive roots: they always exist


def _add(groups: KeyGroups, key: str, name: str, requested: str) -> None:
    groups.setdefault(registry_key_id(key), (key, []))[1].append((name, requested))


def _expected_types(request: FactRequest) -> dict[ValueId, RegistryType]:
    # Keyed by the parsed path so "HKEY_LOCAL_MACHINE\..." and "HKLM\..." find the same entry; when two
    # merged articles disagree the first wins (a wrong guess only costs the wrong-type fallback).
    types: dict[ValueId, RegistryType] = {}
    for key, name, type_ in request.registry_value_types:
        types.setdefault(_value_id(str(parse_key(key)), name), type_)
    return types


def _plan(request: FactRequest, os: OsFacts, pending_keys: tuple[str, ...]) -> _Plan:
    plan = _Plan()
    types = _expected_types(request)
    for key, name in request.registry_values:
        path = str(parse_key(key))
        type_ = types.get(_value_id(path, name))
        if type_ is not None:
            plan.typed.append(_TypedRead(key, name, type_))
        else:
            _add(plan.values, path, name, key)
    ids = {h.strip().upper() for h in request.hotfix_ids}
    for key in request.registry_keys:
        record = wmi.qfe_record(os, key)
        if record is not None and record.hotfix_id in ids:
            plan.records.append((key, record))
        else:
            _plan_key(plan, key)
    for key in pending_keys:
        _plan_key(plan, key)
    return plan


def _plan_key(plan: _Plan, key: str) -> None:
    path = parse_key(key)
    if not path.subkey:
        plan.roots.append(key)
    else:
        _add(plan.parents, str(path.parent), path.leaf, key)


class _Gatherer:
    def __init__(self, client: WinRMClient, os: OsFacts, request: FactRequest,
                 restart_scope: RestartScope) -> None:
        self.client = client
        self.os = os
        self.request = request
        self.restart_scope = restart_scope
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

    def qfe(self) -> QfeResult | None:
        return self.attempt("Win32_QuickFixEngineering",
                            lambda: wmi.qfe_hotfixes(self.client, self.request.hotfix_ids))[1]

    def typed_value(self, read: _TypedRead) -> Values:
        """One typed Get; stdregprov.read_value looks the real type up only when the host says "wrong type"."""
        call = partial(stdregprov.read_value, self.client, read.key, read.name, read.type)
        ok, found = self.attempt(f"{read.key}\\{read.name}", call)
        return {_value_id(read.key, read.name): found} if ok else {}

    def values_of(self, key: str, wanted: list[tuple[str, str]]) -> Values:
        ok, infos = self.attempt(f"the values of {key}", lambda: stdregprov.enum_values(self.client, key))
        if not ok:
            return {}
        path = parse_key(key)
        out: Values = {}
        for name, requested in wanted:
            read = partial(stdregprov.read_listed_value, self.client, path, name, infos)
            read_ok, found = self.attempt(f"{key}\\{name}", read)
            if read_ok:
                out[_value_id(requested, name)] = found
        return out

    def subkeys_of(self, parent: str, wanted: list[tuple[str, str]]) -> dict[str, bool]:
        ok, names = self.attempt(f"the subkeys of {parent}", lambda: stdregprov.enum_keys(self.client, parent))
        if not ok:
            return {}
        folded = {n.casefold() for n in names or []}  # a missing parent: none of its children exist
        return {registry_key_id(requested): leaf.casefold() in folded for leaf, requested in wanted}

    # --- putting it together ----------------------------------------------------------------------

    def run(self) -> HostFacts:
        indicators = pending_restart_plan(self.os, self.restart_scope)
        plan = _plan(self.request, self.os, indicators.keys)
        with ThreadPoolExecutor(max_workers=self.client.settings.max_in_flight) as pool:
            files = pool.submit(self.files) if self.request.files else None
            qfe = pool.submit(self.qfe) if self.request.hotfix_ids else None
            values = [pool.submit(self.typed_value, read) for read in plan.typed]
            values += [pool.submit(self.values_of, k, wanted) for k, wanted in plan.values.values()]
            keys = [pool.submit(self.subkeys_of, p, wanted) for p, wanted in plan.parents.values()]
            pending = [pool.submit(self.typed_value, _TypedRead(k, n, t)) for k, n, t in indicators.values]
            self._collect(files, values, keys, plan)
            self._hotfixes(qfe.result() if qfe is not None else {}, plan)
            pending_values: Values = {}
            for fut in pending:
                pending_values.update(fut.result())  # a failed read is absent: it does not count
        if self.restart_scope != "none":  # "none": the caller knows and sets it
            self._reboot(pending_values)
        return self.facts

    def _collect(self, files: Future[dict[str, FileFacts]] | None, values: list[Future[Values]],
                 keys: list[Future[dict[str, bool]]], plan: _Plan) -> None:
        if files is not None:
            self.facts.files = files.result()
        for fut in values:
            self.facts.registry.update(fut.result())
        for fut_keys in keys:
            self.facts.registry_keys.update(fut_keys.result())
        for root in plan.roots:
            self.facts.registry_keys[registry_key_id(root)] = True

    def _hotfixes(self, qfe: QfeResult | None, plan: _Plan) -> None:
        if plan.records:
            self._record_keys(qfe, plan)
        sources: dict[str, list[str]] = {hotfix: [SOURCE_QFE] for hotfix in qfe or {}}
        # Legacy records: the engine asks for the era's record key (...\Hotfix\Q253729,
        # ...\Updates\Windows XP\SP2\KB828753); an existing key named after a requested id counts.
        wanted = {h.strip().upper() for h in self.request.hotfix_ids}
        for key in self.request.registry_keys:
            leaf = parse_key(key).leaf.upper()
            if leaf in wanted and self.facts.registry_keys.get(registry_key_id(key)):
                sources.setdefault(leaf, []).append(SOURCE_REGISTRY)
        self.facts.hotfixes = frozenset(sources)
        self.facts.hotfix_sources = {k: tuple(v) for k, v in sources.items()}

    def _record_keys(self, qfe: QfeResult | None, plan: _Plan) -> None:
        if qfe is not None:
            for key, record in plan.records:
                self.facts.registry_keys[registry_key_id(key)] = wmi.qfe_has_record(qfe, record)
            return
        # The QFE query failed: read the record keys themselves.
        fallback = _Plan()
        for key, _record in plan.records:
            _plan_key(fallback, key)
        for parent, wanted in fallback.parents.values():
            self.facts.registry_keys.update(self.subkeys_of(parent, wanted))

    def _reboot(self, pending_values: Values) -> None:
        pending, reasons = pending_restart_from(pending_values, self.facts.registry_keys)
        self.facts.reboot_pending = pending
        self.facts.reboot_pending_sources = reasons
        # The entries themselves tell the engine whether the article's own files wait for this restart.
        pfro_id = _value_id(SESSION_MANAGER, PFRO_VALUE)
        if pfro_id in pending_values:
            pfro = pending_values[pfro_id]
            entries = pfro.data if pfro is not None and isinstance(pfro.data, list) else []
            self.facts.pending_renames = tuple(str(e) for e in entries if e)


def gather(client: WinRMClient, os_facts: OsFacts, request: FactRequest, *,
           restart_scope: RestartScope = "article") -> HostFacts:
    """Read what ``request`` asks for. Requests run concurrently, bounded by the client's in-flight limit.

    ``restart_scope``: which pending-restart indicators fill ``reboot_pending`` (see
    ``pending_restart_plan``): by default those the articles' installers leave, at the fewest requests;
    ``"full"`` adds Windows Update's and update.exe's, as the facts and reboot modules report them."""
    return _Gatherer(client, os_facts, request, restart_scope).run()
