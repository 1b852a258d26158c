# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report shows which hosts received a package through the unsigned opt-out."""

from __future__ import annotations

import json

from ansible_collections.kbfix.windows.plugins.plugin_utils.report.json_report import render_json
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport

UNSIGNED = {"file": "WindowsXP-KB828753-x86-ENU.exe", "sha256": "0" * 64, "signature": "unsigned_allowed"}
VERIFIED = {"file": "Windows6.1-KB977381-x64.msu", "sha256": "1" * 64, "signature": "verified"}


def test_unsigned_packages_are_listed_per_host() -> None:
    report = FleetReport()
    # kb_article: the install change entries; hotfix: its install result.
    report.add_unsigned_packages("xp1", {"changes": [{"action": "install_package", "package_check": UNSIGNED},
                                                     {"action": "set_registry"}]})
    report.add_unsigned_packages("xp1", {"install": {"package_check": UNSIGNED}})
    report.add_unsigned_packages("r2008", {"install": {"package_check": VERIFIED}})
    document = json.loads(render_json(report))
    hosts = {h["name"]: h for h in document["hosts"]}
    assert hosts["xp1"]["unsigned_packages"] == ["WindowsXP-KB828753-x86-ENU.exe"]
    assert set(hosts) == {"xp1"}  # a verified package is no news
