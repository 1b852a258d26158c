# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where Windows records that a restart is pending, per version: registry facts every transport reads the same
way (WinRM through StdRegProv, NT 4.0 through the remote registry). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..article.model import OsFacts, RegistryType, RegistryValue, registry_key_id
from .base import RestartScope

SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
PFRO_VALUE = "PendingFileRenameOperations"
CBS_REBOOT_PENDING = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
WU_REBOOT_REQUIRED = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
UPDATE_EXE_VOLATILE = r"HKLM\SOFTWARE\Microsoft\Updates\UpdateExeVolatile"
UPDATE_EXE_FLAGS = "Flags"
SOURCE_PFRO = "PendingFileRenameOperations"
SOURCE_CBS = "CBS RebootPending"
SOURCE_WU = "WindowsUpdate RebootRequired"
SOURCE_UPDATE_EXE = "UpdateExeVolatile"


# What the "article" scope looks at: the indicators the seed articles' installers leave.
ARTICLE_SOURCES = (SOURCE_PFRO, SOURCE_CBS)


@dataclass(frozen=True)
class RestartIndicators:
    values: tuple[tuple[str, str, RegistryType], ...]  # (key, name, type): each read with one typed Get
    keys: tuple[str, ...]  # keys whose existence means "restart pending"


def _version(os: OsFacts) -> tuple[int, int]:
    major, minor = os.version.split(".")[:2]
    return int(major), int(minor)


def pending_restart_plan(os: OsFacts, scope: RestartScope = "full") -> RestartIndicators:
    r"""The registry values and keys that tell a pending restart on this OS.

    Every Windows queues replaced in-use files in PendingFileRenameOperations; from Vista (6.0) on CBS also
    creates ``...\Component Based Servicing\RebootPending``. The full scope adds Windows Update's
    ``RebootRequired`` key and, on XP / Server 2003 (5.1, 5.2), update.exe's ``UpdateExeVolatile`` key, whose
    ``Flags`` is non-zero until the restart (the key is volatile: a boot removes it)."""
    if scope == "none":
        return RestartIndicators((), ())
    values: list[tuple[str, str, RegistryType]] = [(SESSION_MANAGER, PFRO_VALUE, "multistring")]
    keys: list[str] = []
    version = _version(os)
    if version >= (6, 0):
        keys.append(CBS_REBOOT_PENDING)
    if scope == "full":
        keys.append(WU_REBOOT_REQUIRED)
        if (5, 1) <= version < (6, 0):
            values.append((UPDATE_EXE_VOLATILE, UPDATE_EXE_FLAGS, "dword"))
    return RestartIndicators(tuple(values), tuple(keys))


def pending_restart_from(values: Mapping[tuple[str, str], RegistryValue | None],
                         keys: Mapping[str, bool]) -> tuple[bool, tuple[str, ...]]:
    """Decide from values keyed ``(registry_key_id(key), name.casefold())`` and keys keyed
    ``registry_key_id(key)``; facts that were not read do not count."""
    sources = []
    pfro = values.get((registry_key_id(SESSION_MANAGER), PFRO_VALUE.casefold()))
    if pfro is not None and isinstance(pfro.data, list) and any(s for s in pfro.data):
        sources.append(SOURCE_PFRO)
    if keys.get(registry_key_id(CBS_REBOOT_PENDING)):
        sources.append(SOURCE_CBS)
    if keys.get(registry_key_id(WU_REBOOT_REQUIRED)):
        sources.append(SOURCE_WU)
    flags = values.get((registry_key_id(UPDATE_EXE_VOLATILE), UPDATE_EXE_FLAGS.casefold()))
    if flags is not None and isinstance(flags.data, int) and flags.data != 0:
        sources.append(SOURCE_UPDATE_EXE)
    return bool(sources), tuple(sources)


def article_scope(sources: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """A full-scope answer (what kbfix.windows.facts reports) narrowed to the "article" scope: what an article
    audit would have read itself, so reusing the facts does not change a verdict."""
    kept = tuple(s for s in sources if s in ARTICLE_SOURCES)
    return bool(kept), kept
