# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SMB transport's side of issue 15 on winsim's NT 4.0 face: a registry value that cannot be written is
refused before any request (and no key is created for it), and a host that goes down after it answered is
reported as lost (``HostUnreachableError.lost``), which is what lets kb_article wait for it and start again."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    ArgumentError,
    HostUnreachableError,
    TransportError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import resume
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import SMBTransport, open_for
from winsim.testing import Fleet, HostSpec, running_fleet

pytestmark = pytest.mark.slow

KEY = r"HKLM\SOFTWARE\kbfix-limits"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    # Down 20 s: a window that a loaded machine cannot miss between the reboot and the next read.
    hosts = [HostSpec("nt4", "nt4-tse-sp6-x86", {"reboot_seconds": 20})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("smb-lost")) as started:
        yield started


def transport_for(fleet: Fleet, **overrides: Any) -> SMBTransport:
    inventory = yaml.safe_load(fleet.inventory(fleet.state_dir / "inventory.yml").read_text(encoding="utf-8"))
    variables = dict(inventory["all"]["children"]["winsim_nt4_tse_sp6_x86"]["hosts"]["nt4"])
    return open_for({**variables, "kbfix_smb_retries": 0}, lambda level, message: None, **overrides)


@pytest.mark.parametrize(("name", "value", "field", "text"), [
    ("Big", RegistryValue("multistring", ["y" * 1000] * 600), "data", "1048576"),
    ("n" * 16_384, RegistryValue("dword", 1), "name", "16383"),
    ("Wide", RegistryValue("dword", 2 ** 32), "data", "0 to 4294967295"),
    ("Gap", RegistryValue("multistring", ["a", "", "b"]), "data", "empty string"),
])
def test_unwritable_values_are_refused_before_any_request(fleet: Fleet, name: str, value: RegistryValue,
                                                           field: str, text: str) -> None:
    transport = transport_for(fleet)
    ep = fleet.hosts["nt4"]
    ep.reset_counters()
    try:
        with pytest.raises(ArgumentError) as info:
            transport.check_write(KEY, name, value)
        assert info.value.field == field and text in str(info.value)
        with pytest.raises(ArgumentError) as info:
            transport.set_value(KEY, name, value, create=True)
        assert info.value.field == field
        assert transport.request_count == 0
        assert ep.counters()["by_action"] == {}  # the host saw nothing: no logon, no CreateKey
    finally:
        transport.close()
    assert ep.host().registry.open(KEY) is None


def test_a_host_down_from_the_start_is_not_lost(fleet: Fleet) -> None:
    ep = fleet.hosts["nt4"]
    ep.set_faults(port_closed=True)  # its SMB listeners refuse every connection, as a host that is off
    transport = transport_for(fleet)
    try:
        with pytest.raises(HostUnreachableError) as info:
            transport.os_facts()
        assert info.value.lost is False  # never answered in this task: report it at once, do not wait
    finally:
        transport.close()
        ep.set_faults()
        _wait_for_listener(ep.smb_port)


def _wait_for_listener(port: int | None, timeout: float = 20) -> None:
    # The face reopens its listeners at its supervisor's next poll, not when the control call returns.
    assert port is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"port {port} did not open again"
            time.sleep(0.1)


def test_a_host_that_answered_and_went_down_is_lost_and_waited_for(fleet: Fleet) -> None:
    ep = fleet.hosts["nt4"]
    transport = transport_for(fleet)
    try:
        booted = transport.boot_time()
        ep.run_control("reboot")  # down for reboot_seconds: longer than the transport's own retries (none)
        with pytest.raises(HostUnreachableError) as info:
            transport.read_value(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentVersion")
        assert info.value.lost is True

        # tasks/resume.py acts on it: the work is started again once the host answers (a new boot time).
        reasons: list[str] = []
        attempts: list[int] = []

        def work() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                ep.run_control("reboot")
            return str(transport.os_facts().version)

        assert resume.run_resuming(transport, work, timeout=60, on_resume=reasons.append,
                                   poll_interval=0.5) == "4.0.1381"
        assert len(attempts) == 2 and len(reasons) == 1
        assert transport.boot_time() != booted
    finally:
        transport.close()


@pytest.mark.parametrize("kind", ["reset_before", "reset_after"])
@pytest.mark.parametrize("action", ["SMB:TreeConnect", "SMB:NtCreate", "SMB:Write", "SMB:Read"])
def test_a_reset_while_a_pipe_is_opened_is_retried_on_a_new_session(fleet: Fleet, kind: str, action: str) -> None:
    """Found by the fleet campaign: a reset while ``\\pipe\\winreg`` was being opened or bound (IPC$ connected,
    the pipe opened, the bind written or its answer read) escaped as impacket's ``NetBIOSError`` ("Task failed:
    Error occurs while reading from remote(104)") instead of a broken connection that the read retries."""
    ep = fleet.hosts["nt4"]
    ep.set_faults(**{kind: {"action": action, "count": 1}})
    ep.reset_counters()
    transport = transport_for(fleet, retries=1, backoff=0.01)
    try:
        assert transport.os_facts().version == "4.0.1381"
    finally:
        transport.close()
        ep.set_faults()
    counters = ep.counters()
    assert counters["injected"] == {kind: 1}, counters
    assert counters["by_action"]["SMB:SessionSetup"] == 2  # the read was retried on a new session


def test_a_read_broken_after_logon_more_often_than_the_retries_still_answers(fleet: Fleet) -> None:
    """Found by the fleet campaign (10% of RPC calls reset): with two retries a live NT 4.0 host was reported
    unreachable. A connection that breaks after the session logged on is a host that is up: such a read gets
    ``4 x retries`` retries; giving up on it is a failure saying so, not unreachable."""
    ep = fleet.hosts["nt4"]
    transport = transport_for(fleet, retries=1, backoff=0.01)
    try:
        transport.boot_time()  # the host has answered this transport
        ep.set_faults(reset_after={"action": "RPC:winreg.QueryValue", "count": 3})  # more than 1 retry
        ep.reset_counters()
        value = transport.read_value(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentVersion")
        assert value is not None and value.data == "4.0"
        counters = ep.counters()
        assert counters["injected"] == {"reset_after": 3}
        assert counters["by_action"]["RPC:winreg.QueryValue"] == 4  # 1 + 3 retries, at most 1 x 4
        ep.set_faults(reset_after={"action": "RPC:winreg.QueryValue", "count": 5})  # one more than 4 retries
        with pytest.raises(TransportError) as info:
            transport.read_value(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentBuildNumber")
        assert not isinstance(info.value, HostUnreachableError)
        assert "the host is up" in str(info.value) and "after 5 attempts" in str(info.value), str(info.value)
    finally:
        transport.close()
        ep.set_faults()


def test_a_connection_broken_under_create_service_is_a_lost_host(fleet: Fleet) -> None:
    """Found by the fleet campaign: the NT 4.0 host restarting while RCreateServiceW was on its way was reported
    "cannot create the service ... to run the command" (a failure), so kb_article did not wait for it. A broken
    connection there is a lost host, which tasks/resume.py waits for."""
    ep = fleet.hosts["nt4"]
    transport = transport_for(fleet)
    try:
        transport.boot_time()
        ep.set_faults(reset_before={"action": "RPC:svcctl.CreateServiceW", "count": 1})
        with pytest.raises(HostUnreachableError) as info:
            transport.run_command("echo kbfix", timeout=30)
        assert info.value.lost, str(info.value)
        assert "cannot create the service" not in str(info.value)
        assert ep.counters()["injected"].get("reset_before") == 1
    finally:
        transport.close()
        ep.set_faults()
