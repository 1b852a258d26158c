# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an audit reads from an NT 4.0 host: OS facts from the registry, the ``kbfix_*`` facts, and the facts an
article asks for (``FactRequest``: files, values, keys, hotfix records, pending restart)."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypeVar

from ...article.model import Architecture, FactRequest, HostFacts, OsFacts, RegistryType, RegistryValue, registry_key_id
from ...errors import ArgumentError, AuthenticationError, HostUnreachableError, KbfixError, TransportError
from ..base import LOG_STEPS, RestartScope
from ..indicators import PFRO_VALUE, SESSION_MANAGER, pending_restart_from, pending_restart_plan
from ..registry_path import parse_key
from .files import FileJobs
from .restart import RestartJobs
from .values import RegistryJobs, checked_key

T = TypeVar("T")

CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
PRODUCT_OPTIONS = r"HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions"
ENVIRONMENT = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
HOTFIX_ROOT = CURRENT_VERSION + r"\Hotfix"
COMPUTER_NAME = r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"
# Win32_ComputerSystem.SystemType's words for each PROCESSOR_ARCHITECTURE (what kbfix_system_type holds on
# WinRM hosts), so a play reads the same fact on NT 4.0.
SYSTEM_TYPES = {"x86": "X86-based PC", "x64": "x64-based PC", "ia64": "Itanium-based System"}
# kbfix_winrm_version_source on a host reached over SMB: NT 4.0 has no WinRM (and cannot install it).
WINRM_SOURCE_SMB = "smb"
PRODUCT_TYPES = {"winnt": 1, "lanmannt": 2, "servernt": 3}
ARCHITECTURES: dict[str, Architecture] = {"x86": "x86", "amd64": "x64", "ia64": "ia64"}
SOURCE_REGISTRY = "registry"


def service_pack(csd_version: str) -> int:
    """``Service Pack 6`` -> 6 (``Service Pack 6a`` too); no CSDVersion -> 0."""
    match = re.search(r"Service Pack (\d+)", csd_version or "", re.IGNORECASE)
    return int(match.group(1)) if match else 0


class CollectJobs(RegistryJobs, FileJobs, RestartJobs):
    """OS facts, host facts and an article's facts."""

    def os_facts(self) -> OsFacts:
        """From the registry: CurrentVersion + CurrentBuildNumber (version), CSDVersion (service pack),
        SystemRoot, ProductOptions (ProductType, ProductSuite: "Terminal Server" goes into the caption, which
        the KB253729 applicability tests) and PROCESSOR_ARCHITECTURE."""
        cv = self.read_values(CURRENT_VERSION, ["CurrentVersion", "CurrentBuildNumber", "CSDVersion", "SystemRoot"])
        po = self.read_values(PRODUCT_OPTIONS, ["ProductType", "ProductSuite"])
        env = self.read_values(ENVIRONMENT, ["PROCESSOR_ARCHITECTURE"])
        facts = os_facts_from(self.host, cv, po, env)
        # The engine weighs a pending restart against the last boot (docs/engine.md); a host whose srvsvc
        # cannot tell it (Samba's) still has OS facts, with the boot unknown.
        boot = self._attempt("boot time", self.boot_time)
        return dataclasses.replace(facts, last_boot=boot)

    def host_facts(self, *, ask_version: bool = True) -> dict[str, object]:
        """Every ``kbfix_*`` fact of ``kbfix.windows.facts``, with the keys the WinRM transport gives. NT 4.0
        has no WMI: the computer name comes from the registry, the domain is not asked (an NT 4.0 member's
        domain is only in LSA policy, which this transport does not read: ``kbfix_domain`` is "" and
        ``kbfix_domain_member`` None, i.e. unknown), and there is no WinRM (``kbfix_winrm_version`` None)."""
        del ask_version  # there is no WinRM service to ask: kbfix_winrm_version is None on SMB hosts
        os = self.os_facts()
        name = self.read_value(COMPUTER_NAME, "ComputerName")
        pending, sources = self.pending_restart(os)
        hostname = _text_of(name) or self.host
        self.log(LOG_STEPS, f"{hostname}: {os.caption} {os.version} SP{os.service_pack} {os.architecture}, "
                            "reached over SMB (no WinRM)")
        return {
            "kbfix_os": os.to_dict(),
            "kbfix_hostname": hostname,
            "kbfix_domain": "",
            "kbfix_domain_member": None,
            "kbfix_system_type": SYSTEM_TYPES[os.architecture],
            "kbfix_last_boot": os.last_boot.isoformat() if os.last_boot else None,
            "kbfix_reboot_pending": pending,
            "kbfix_reboot_pending_sources": list(sources),
            "kbfix_winrm_version": None,
            "kbfix_winrm_version_source": WINRM_SOURCE_SMB,
        }

    def pending_restart(self, os: OsFacts, scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
        plan = pending_restart_plan(os, scope)
        values = {(registry_key_id(k), n.casefold()): self.read_value(k, n, t) for k, n, t in plan.values}
        keys = {registry_key_id(k): self.key_exists(k) for k in plan.keys}
        return pending_restart_from(values, keys)

    def gather(self, os: OsFacts, request: FactRequest, *, restart_scope: RestartScope = "article") -> HostFacts:
        """Same contract as ``collect.gather``: requested facts that cannot be read stay absent (the engine
        answers unknown); an unreachable host or rejected credentials fail the whole gather."""
        if restart_scope not in ("article", "full", "none"):
            raise ArgumentError("restart_scope", f"must be article, full or none, not {restart_scope!r}")
        scope: RestartScope = restart_scope
        for key, name in request.registry_values:
            checked_key(key, name)  # a bad key or name fails before any request
        facts = HostFacts(os=os)
        if request.files:
            facts.files = self._attempt("file facts", lambda: self.file_facts(list(request.files))) or {}
        for key, name in request.registry_values:
            found = self._attempt(f"{key}\\{name}", partial(self._value_fact, key, name, None))
            if found is not None:
                facts.registry[(registry_key_id(key), name.casefold())] = found[0]
        for key in request.registry_key_times:  # restart-bound values: written since the last boot?
            written = self._attempt(f"key {key}", partial(self._key_write_time, key))
            if written is not None:
                facts.key_write_times[registry_key_id(key)] = written
        # NT 4.0's hotfix.exe records an installed hotfix as ...\CurrentVersion\Hotfix\<id>.
        wanted = {h.strip().upper() for h in request.hotfix_ids}
        record_keys = {registry_key_id(k): k for k in request.registry_keys}
        for hotfix in sorted(wanted):
            record_keys.setdefault(registry_key_id(f"{HOTFIX_ROOT}\\{hotfix}"), f"{HOTFIX_ROOT}\\{hotfix}")
        plan = pending_restart_plan(os, scope)
        for key in [*record_keys.values(), *plan.keys]:
            exists = self._attempt(f"key {key}", partial(self.key_exists, key))
            if exists is not None:
                facts.registry_keys[registry_key_id(key)] = exists
        sources: dict[str, list[str]] = {}
        for key in record_keys.values():
            leaf = parse_key(key).leaf.upper()
            if leaf in wanted and facts.registry_keys.get(registry_key_id(key)):
                sources.setdefault(leaf, []).append(SOURCE_REGISTRY)
        facts.hotfixes = frozenset(sources)
        facts.hotfix_sources = {k: tuple(v) for k, v in sources.items()}
        pending_values: dict[tuple[str, str], RegistryValue | None] = {}
        for key, name, type_ in plan.values:
            found = self._attempt(f"{key}\\{name}", partial(self._value_fact, key, name, type_))
            if found is not None:
                pending_values[(registry_key_id(key), name.casefold())] = found[0]
        facts.reboot_pending, facts.reboot_pending_sources = pending_restart_from(
            pending_values, facts.registry_keys)
        # The entries themselves tell the engine whether the article's own files wait for the restart.
        pfro_id = (registry_key_id(SESSION_MANAGER), PFRO_VALUE.casefold())
        if pfro_id in pending_values:
            pfro = pending_values[pfro_id]
            entries = pfro.data if pfro is not None and isinstance(pfro.data, list) else []
            facts.pending_renames = tuple(str(e) for e in entries if e)
        return facts

    def _key_write_time(self, key: str) -> datetime.datetime | None:
        return self.registry.key_write_time(key)

    def _value_fact(self, key: str, name: str, type_: RegistryType | None) -> tuple[RegistryValue | None]:
        # In a tuple so that "the value does not exist" (None inside) differs from "could not be read".
        return (self.read_value(key, name, type_),)

    def _attempt(self, what: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except (HostUnreachableError, AuthenticationError, ArgumentError):
            raise
        except KbfixError as exc:
            self.log(LOG_STEPS, f"{self.host}: could not read {what}: {exc}")
            return None


def _text_of(value: RegistryValue | None) -> str:
    return value.data.strip() if value is not None and isinstance(value.data, str) else ""


def os_facts_from(host: str, current: Mapping[str, RegistryValue | None], options: Mapping[str, RegistryValue | None],
                  environment: Mapping[str, RegistryValue | None]) -> OsFacts:
    """OsFacts from the three registry keys' values (missing values are named in the error)."""
    version, build = _text_of(current.get("CurrentVersion")), _text_of(current.get("CurrentBuildNumber"))
    if not re.fullmatch(r"\d+\.\d+", version):
        raise TransportError(f"{host}: {CURRENT_VERSION}\\CurrentVersion is {version or 'missing'!r}, not major.minor")
    if not build.isdigit():
        # Samba's winreg, for one, synthesises this key with CurrentVersion and SystemRoot only.
        raise TransportError(f"{host}: {CURRENT_VERSION}\\CurrentBuildNumber is {build or 'missing'!r}: the host "
                             f"reports Windows {version} without a build number")
    product = _text_of(options.get("ProductType")).casefold()
    if product not in PRODUCT_TYPES:
        raise TransportError(f"{host}: {PRODUCT_OPTIONS}\\ProductType is {product or 'missing'!r}, not WinNT, "
                             "ServerNT or LanmanNT")
    suite_value = options.get("ProductSuite")
    suites = [s for s in suite_value.data if s] if suite_value and isinstance(suite_value.data, list) else []
    processor = _text_of(environment.get("PROCESSOR_ARCHITECTURE")).casefold()
    if processor not in ARCHITECTURES:
        # NT 4.0 also ran on Alpha, MIPS and PowerPC; specs can name them, but the environment's words for
        # them are not established from a public source here, so such a host is refused, not guessed.
        raise TransportError(f"{host}: {ENVIRONMENT}\\PROCESSOR_ARCHITECTURE is {processor or 'missing'!r}, "
                             "not x86, AMD64 or IA64")
    system_root = _text_of(current.get("SystemRoot"))
    if not system_root:
        raise TransportError(f"{host}: {CURRENT_VERSION}\\SystemRoot is missing")
    csd = _text_of(current.get("CSDVersion"))
    kind = {1: "Workstation", 2: "Server", 3: "Server"}[PRODUCT_TYPES[product]]
    caption = " ".join(p for p in [f"Microsoft Windows NT {kind} {version}", ", ".join(suites),
                                   f"({csd})" if csd else ""] if p)
    return OsFacts(version=f"{version}.{build}", service_pack=service_pack(csd),
                   architecture=ARCHITECTURES[processor], product_type=PRODUCT_TYPES[product], caption=caption,
                   system_root=system_root)
