# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How gather groups a FactRequest into requests (the request budget of one audit)."""

from __future__ import annotations

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    FactRequest,
    OsFacts,
    RegistryValue,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import indicators
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import collect, wmi

XP = OsFacts(version="5.1.2600", service_pack=1, architecture="x86", product_type=1)
W2003 = OsFacts(version="5.2.3790", service_pack=2, architecture="x64", product_type=3, r2=True)
W2008 = OsFacts(version="6.0.6002", service_pack=2, architecture="x64", product_type=3)
NT4 = OsFacts(version="4.0.1381", service_pack=6, architecture="x86", product_type=3, system_root="C:\\WINNT")
LANMAN = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
RECORD = r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753"
PFRO = (indicators.SESSION_MANAGER, indicators.PFRO_VALUE, "multistring")
UPDATE_EXE = (indicators.UPDATE_EXE_VOLATILE, indicators.UPDATE_EXE_FLAGS, "dword")


def test_values_of_a_known_type_are_one_typed_read_each() -> None:
    request = FactRequest(registry_values=((LANMAN, "ReconnectableServers"), (LANMAN, "ReconnectTimeout")),
                          registry_value_types=((LANMAN, "ReconnectableServers", "multistring"),
                                                (LANMAN, "ReconnectTimeout", "dword")))
    plan = collect._plan(request, XP, ())
    assert [(r.key, r.name, r.type) for r in plan.typed] == [
        (LANMAN, "ReconnectableServers", "multistring"), (LANMAN, "ReconnectTimeout", "dword")]
    assert plan.values == {}  # no EnumValues


def test_the_type_is_found_whatever_the_spelling_of_the_key() -> None:
    spelled = LANMAN.replace("HKLM", "HKEY_LOCAL_MACHINE")
    request = FactRequest(registry_values=((spelled, "reconnecttimeout"),),
                          registry_value_types=((LANMAN, "ReconnectTimeout", "dword"),))
    [read] = collect._plan(request, XP, ()).typed
    assert (read.key, read.name, read.type) == (spelled, "reconnecttimeout", "dword")  # keyed as requested


def test_values_without_a_type_share_one_enumvalues_whatever_the_spelling() -> None:
    request = FactRequest(registry_values=((LANMAN, "ReconnectableServers"),
                                           (LANMAN.replace("HKLM", "HKEY_LOCAL_MACHINE").lower(), "ReconnectTimeout")))
    plan = collect._plan(request, XP, ())
    assert plan.typed == []
    assert len(plan.values) == 1
    [(key, wanted)] = plan.values.values()
    assert key == LANMAN
    assert [name for name, _ in wanted] == ["ReconnectableServers", "ReconnectTimeout"]


def test_only_the_untyped_values_of_a_key_are_enumerated() -> None:
    request = FactRequest(registry_values=((LANMAN, "ReconnectableServers"), (LANMAN, "Other")),
                          registry_value_types=((LANMAN, "ReconnectableServers", "multistring"),))
    plan = collect._plan(request, XP, ())
    assert [r.name for r in plan.typed] == ["ReconnectableServers"]
    assert [name for _, wanted in plan.values.values() for name, _ in wanted] == ["Other"]


def test_sibling_keys_share_one_enumkey_and_pending_keys_join_them() -> None:
    services = r"HKLM\SYSTEM\CurrentControlSet\Services"
    request = FactRequest(registry_keys=(services + r"\DFSR", services + r"\LanmanServer", "HKLM"))
    plan = collect._plan(request, W2008, indicators.pending_restart_plan(W2008, "full").keys)
    parents = {key: [leaf for leaf, _ in wanted] for key, wanted in plan.parents.values()}
    assert parents[services] == ["DFSR", "LanmanServer"]
    assert len(parents) == 3  # Services, WindowsUpdate\Auto Update, Component Based Servicing
    assert plan.roots == ["HKLM"]


def test_xp_record_keys_are_answered_by_the_qfe_query() -> None:
    request = FactRequest(registry_keys=(RECORD,), hotfix_ids=("KB828753",))
    plan = collect._plan(request, XP, ())
    assert plan.records == [(RECORD, wmi.QfeRecord("KB828753", "SP2"))]
    assert plan.parents == {}
    # Without the id in the request there is no QFE query to answer it: EnumKey of the parent.
    plan = collect._plan(FactRequest(registry_keys=(RECORD,)), XP, ())
    assert plan.records == [] and len(plan.parents) == 1


# --- pending restart: what an article audit reads, what the facts and reboot modules read -----------------


@pytest.mark.parametrize(("os", "article", "full"), [
    (NT4, ([PFRO], []), ([PFRO], [indicators.WU_REBOOT_REQUIRED])),
    (XP, ([PFRO], []), ([PFRO, UPDATE_EXE], [indicators.WU_REBOOT_REQUIRED])),
    (W2003, ([PFRO], []), ([PFRO, UPDATE_EXE], [indicators.WU_REBOOT_REQUIRED])),
    (W2008, ([PFRO], [indicators.CBS_REBOOT_PENDING]),
     ([PFRO], [indicators.CBS_REBOOT_PENDING, indicators.WU_REBOOT_REQUIRED])),
])
def test_restart_indicators_per_scope(os: OsFacts, article: tuple[list[tuple[str, str, str]], list[str]],
                                      full: tuple[list[tuple[str, str, str]], list[str]]) -> None:
    for scope, (values, keys) in (("article", article), ("full", full)):
        plan = indicators.pending_restart_plan(os, scope)  # type: ignore[arg-type]
        assert (list(plan.values), list(plan.keys)) == (values, keys), scope


def _values(flags: int | None = None, renames: list[str] | None = None,
            ) -> dict[tuple[str, str], RegistryValue | None]:
    return {
        (registry_key_id(indicators.SESSION_MANAGER), indicators.PFRO_VALUE.casefold()):
            None if renames is None else RegistryValue("multistring", renames),
        (registry_key_id(indicators.UPDATE_EXE_VOLATILE), indicators.UPDATE_EXE_FLAGS.casefold()):
            None if flags is None else RegistryValue("dword", flags),
    }


def test_update_exe_volatile_counts_only_with_nonzero_flags() -> None:
    assert indicators.pending_restart_from(_values(flags=1), {}) == (True, (indicators.SOURCE_UPDATE_EXE,))
    assert indicators.pending_restart_from(_values(flags=2), {}) == (True, (indicators.SOURCE_UPDATE_EXE,))
    assert indicators.pending_restart_from(_values(flags=0), {}) == (False, ())
    assert indicators.pending_restart_from(_values(), {}) == (False, ())


def test_every_indicator_is_named_and_an_empty_rename_queue_is_not_pending() -> None:
    keys = {registry_key_id(indicators.CBS_REBOOT_PENDING): True, registry_key_id(indicators.WU_REBOOT_REQUIRED): True}
    pending = indicators.pending_restart_from(_values(flags=1, renames=[r"\??\C:\x.tmp", ""]), keys)
    assert pending == (True, (indicators.SOURCE_PFRO, indicators.SOURCE_CBS, indicators.SOURCE_WU,
                              indicators.SOURCE_UPDATE_EXE))
    assert indicators.pending_restart_from(_values(renames=["", ""]), {}) == (False, ())
