# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How gather groups a FactRequest into requests (the request budget of one audit)."""

from __future__ import annotations

from ansible_collections.kbfix.windows.plugins.plugin_utils import collect, wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.model import FactRequest, OsFacts

XP = OsFacts(version="5.1.2600", service_pack=1, architecture="x86", product_type=1)
W2008 = OsFacts(version="6.0.6002", service_pack=2, architecture="x64", product_type=3)
LANMAN = r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters"
RECORD = r"HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753"


def test_values_of_one_key_share_one_group_whatever_the_spelling() -> None:
    request = FactRequest(registry_values=((LANMAN, "ReconnectableServers"),
                                           (LANMAN.replace("HKLM", "HKEY_LOCAL_MACHINE").lower(), "ReconnectTimeout")))
    plan = collect._plan(request, XP, ())
    assert len(plan.values) == 1
    [(key, wanted)] = plan.values.values()
    assert key == LANMAN
    assert [name for name, _ in wanted] == ["ReconnectableServers", "ReconnectTimeout"]


def test_sibling_keys_share_one_enumkey_and_pending_keys_join_them() -> None:
    services = r"HKLM\SYSTEM\CurrentControlSet\Services"
    request = FactRequest(registry_keys=(services + r"\DFSR", services + r"\LanmanServer", "HKLM"))
    _, pending = wmi.pending_restart_plan(W2008)
    plan = collect._plan(request, W2008, pending)
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
