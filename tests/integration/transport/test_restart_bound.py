# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restart wait never runs past its timeout, on either transport, also when every restart request's answer is
lost and the request is asked again (transport/retry.py's one deadline).

The host is winsim; the controller's clock is real time plus the pauses the wait asks for, which pass at once,
so the test takes seconds while the clock shows the wait's own length (the probes' real time included)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from transport_harness import Targets

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import RebootTimeoutError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.retry import RESTART_REQUESTS
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.settings import settings_from_vars
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import SMBTransport
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import cmdshell, wmi
from winsim.testing import Fleet, HostSpec, running_fleet

TIMEOUT = 10.0
ASK_AGAIN = 2.0
# The last probe may be under way as the deadline passes: it takes well under a second on this machine.
PROBE_SLACK = 1.5


class ControllerClock:
    """Real time plus every pause asked for, which returns at once."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.skipped += seconds


def test_winrm_restart_wait_never_runs_past_the_timeout_when_requests_are_lost(http_targets: Targets) -> None:
    t = http_targets("xp2")
    before = wmi.last_boot_time(t.client)
    # Every shutdown Command times out on the host before shutdown.exe starts: no restart ever comes, and each
    # request's answer is lost, so the wait asks again while it waits.
    t.endpoint.set_faults(timeout_fault={"action": "Command", "count": 50})
    t.endpoint.reset_counters()
    clock = ControllerClock()
    started = clock.now()
    with pytest.raises(RebootTimeoutError, match=r"no new boot time after 10 seconds"):
        cmdshell.reboot(t.client, timeout=TIMEOUT, poll_interval=0.5, grace=ASK_AGAIN, sleep=clock.sleep,
                        clock=clock.now)
    assert clock.now() - started <= TIMEOUT + PROBE_SLACK
    assert t.endpoint.counters()["by_action"]["Command"] == RESTART_REQUESTS  # asked again, a bounded number
    t.endpoint.set_faults()
    assert wmi.last_boot_time(t.client) == before


@pytest.fixture(scope="module")
def nt4_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet([HostSpec("nt4", "nt4-tse-sp6-x86")], state_dir=tmp_path_factory.mktemp("bound")) as fleet:
        yield fleet


def nt4_vars(fleet: Fleet) -> dict[str, Any]:
    inventory = yaml.safe_load(fleet.inventory(fleet.state_dir / "inventory.yml").read_text(encoding="utf-8"))
    return dict(inventory["all"]["children"]["winsim_nt4_tse_sp6_x86"]["hosts"]["nt4"])


def test_smb_restart_wait_never_runs_past_the_timeout_when_requests_are_lost(nt4_fleet: Fleet) -> None:
    ep = nt4_fleet.hosts["nt4"]
    clock = ControllerClock()
    transport = SMBTransport(settings_from_vars(nt4_vars(nt4_fleet)), sleep=clock.sleep, clock=clock.now)
    try:
        before = transport.boot_time()
        # The connection is reset before each shutdown call is applied: no restart comes, every answer is lost.
        ep.set_faults(reset_before={"action": "RPC:winreg.InitiateSystemShutdown", "count": 50})
        ep.reset_counters()
        started = clock.now()
        with pytest.raises(RebootTimeoutError, match=r"no new boot time after 10 seconds"):
            transport.restart(timeout=TIMEOUT, poll_interval=0.5, ask_again_after=ASK_AGAIN)
        assert clock.now() - started <= TIMEOUT + PROBE_SLACK
        asked = ep.counters()["by_action"]["RPC:winreg.InitiateSystemShutdown"]
        assert asked == RESTART_REQUESTS, asked
        ep.set_faults()
        assert transport.boot_time() == before
    finally:
        ep.set_faults()
        transport.close()
