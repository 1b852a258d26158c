# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from report_fleet import build_fleet

from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport


@pytest.fixture
def fleet() -> FleetReport:
    return build_fleet()
