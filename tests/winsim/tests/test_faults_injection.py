"""Injected faults (Endpoint.set_faults): each one as a client experiences it, and what it did to the machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WinRMTransportError
from winrm.exceptions import WSManFaultError as WinrmFault

from winsim.testing import ControlError, HostSpec

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
STDREGPROV = WMI + "root/default/StdRegProv"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"


KEY = "HKLM\\SOFTWARE\\winsim"


def set_dword(name: str, value: int) -> tuple[str, str, str]:
    body = (f'<p:SetDWORDValue_INPUT xmlns:p="{STDREGPROV}"><p:hDefKey>2147483650</p:hDefKey>'
            f"<p:sSubKeyName>SOFTWARE\\winsim</p:sSubKeyName><p:sValueName>{name}</p:sValueName>"
            f"<p:uValue>{value}</p:uValue></p:SetDWORDValue_INPUT>")
    return STDREGPROV + "/SetDWORDValue", STDREGPROV, body


def get_service(name: str = "LanmanServer") -> tuple[str, str, str, dict[str, str]]:
    return GET, WMI + "root/cimv2/Win32_Service", "", {"Name": name}


def dword(host: Any, name: str) -> int | None:
    value = host.registry.get(KEY, name)
    return None if value is None else int(value.data)


@pytest.fixture
def setup(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> Any:
    fleet = make_fleet([HostSpec("h1", "2008-sp2-x64", {"reboot_seconds": 0.5})], https=True)
    host = fleet.machines["h1"]
    host.registry.create(KEY)
    return host, fleet.hosts["h1"], raw_client(fleet.hosts["h1"])


def send_get(client: Any) -> Any:
    action, uri, body, selectors = get_service()
    return client.send(action, uri, body, selectors=selectors)


def test_latency_is_added_to_every_request(setup: Any) -> None:
    _, ep, client = setup
    start = time.monotonic()
    send_get(client)
    fast = time.monotonic() - start
    ep.set_faults(latency_ms=300)
    start = time.monotonic()
    assert send_get(client).status == 200
    assert time.monotonic() - start >= 0.3 > fast


def test_reset_after_applies_the_change_the_client_never_hears_of(setup: Any) -> None:
    host, ep, client = setup
    # "reset the 2nd SetDWORDValue after applying it"
    ep.set_faults(reset_after={"action": "Invoke:SetDWORDValue", "skip": 1})
    assert client.send(*set_dword("First", 1)).status == 200
    assert send_get(client).status == 200  # other actions do not count
    with pytest.raises(requests.ConnectionError):
        client.send(*set_dword("Second", 2))
    assert dword(host, "Second") == 2  # applied
    assert client.send(*set_dword("Third", 3)).status == 200  # count exhausted
    assert ep.counters()["by_action"]["Invoke:SetDWORDValue"] == 3


def test_reset_before_drops_the_request_unapplied(setup: Any) -> None:
    host, ep, client = setup
    ep.set_faults(reset_before={"action": "Invoke", "count": 2})
    for name in ("A", "B"):
        with pytest.raises(requests.ConnectionError):
            client.send(*set_dword(name, 1))
    assert (dword(host, "A"), dword(host, "B")) == (None, None)
    assert client.send(*set_dword("C", 1)).status == 200
    assert dword(host, "C") == 1


def test_http_500_quota_and_timeout_faults(setup: Any) -> None:
    _, ep, client = setup
    # Each rule counts every matching request itself: the 1st Get gets the 500, the 2nd the quota fault...
    ep.set_faults(http_500=1, quota_fault={"action": "Get", "skip": 1}, timeout_fault={"action": "Get", "skip": 2})
    reply = send_get(client)
    assert (reply.status, reply.content) == (500, b"")
    reply = send_get(client)
    assert reply.status == 500 and b'Code="2150859174"' in reply.content
    reply = send_get(client)
    assert reply.status == 500 and b'Code="2150858793"' in reply.content
    assert send_get(client).status == 200
    assert ep.counters()["by_action"] == {"Get": 4}


def test_probability_rules_fire_on_a_share_of_requests_and_replay_with_their_seed(setup: Any) -> None:
    _, ep, client = setup
    plan = {"quota_fault": {"action": "Get", "probability": 0.3, "seed": 7}}
    outcomes = []
    for _ in range(2):
        ep.set_faults(**plan)
        ep.reset_counters()
        outcomes.append([send_get(client).status for _ in range(60)])
    assert outcomes[0] == outcomes[1], "the same seed must fault the same requests"
    faulted = outcomes[0].count(500)
    assert 8 <= faulted <= 30  # 30% of 60, with room for the draw
    assert ep.counters()["injected"] == {"quota_fault": faulted}
    assert ep.run_control("get_faults")["quota_fault"] == {
        "action": "Get", "count": None, "skip": 0, "probability": 0.3, "seed": 7}
    ep.set_faults(quota_fault={"action": "Get", "probability": 1.0, "count": 2})
    assert [send_get(client).status for _ in range(3)] == [500, 500, 200]  # count caps a probability rule


def test_injected_faults_are_counted_by_the_kind_that_took_effect(setup: Any) -> None:
    _, ep, client = setup
    ep.set_faults(reset_before={"action": "Get", "count": 1}, quota_fault={"action": "Get", "count": 2},
                  timeout_fault={"action": "Get", "skip": 3})
    with pytest.raises(requests.ConnectionError):
        send_get(client)  # reset_before and quota_fault both fire: the earlier stage wins
    assert send_get(client).status == 500  # the quota rule's second firing
    assert send_get(client).status == 200
    assert b'Code="2150858793"' in send_get(client).content
    assert ep.counters()["injected"] == {"reset_before": 1, "quota_fault": 1, "timeout_fault": 1}


def test_a_probability_outside_zero_to_one_is_refused(setup: Any) -> None:
    _, ep, _ = setup
    with pytest.raises(ControlError, match="probability"):
        ep.set_faults(reset_after={"probability": 1.5})


def test_quota_fault_as_a_wmi_error(setup: Any) -> None:
    _, ep, client = setup
    ep.set_faults(quota_wmi_fault={"action": "Get", "count": 1})
    reply = send_get(client)
    assert reply.status == 500
    assert b"<p:error_Code xsi:type=\"cim:cimUnsignedInt\">2150859174</p:error_Code>" in reply.content
    assert b"w:InternalError" in reply.content and b"f:WSManFault" not in reply.content
    assert send_get(client).status == 200
    assert ep.run_control("get_faults") == {"quota_wmi_fault": {"action": "Get", "count": 0, "skip": 0}}


def test_faults_through_pywinrm(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    session = winrm.Session(ep.url, auth=(ep.username, ep.password), transport="ntlm")
    ep.set_faults(timeout_fault={"action": "Create"})
    with pytest.raises(WinRMOperationTimeoutError):
        session.run_cmd("echo", ["x"])
    ep.set_faults(quota_fault={"action": "Create"})
    with pytest.raises(WinrmFault) as caught:
        session.run_cmd("echo", ["x"])
    assert caught.value.wsman_fault_code == 2150859174
    ep.set_faults(http_500={"action": "Command"})
    with pytest.raises(WinRMTransportError) as transport:
        winrm.Session(ep.url, auth=(ep.username, ep.password), transport="ntlm").run_cmd("echo", ["x"])
    assert transport.value.code == 500
    assert session.run_cmd("echo", ["ok"]).std_out == b"ok\r\n"


def test_auth_fail_rejects_valid_credentials(setup: Any) -> None:
    _, ep, client = setup
    ep.set_faults(auth_fail=2)
    assert send_get(client).status == 401
    assert send_get(client).status == 401
    assert send_get(client).status == 200
    ep.set_faults(auth_fail=True)
    assert [send_get(client).status for _ in range(3)] == [401, 401, 401]
    ep.set_faults()
    assert send_get(client).status == 200
    assert ep.counters()["auth_requests"] == 5


def test_auth_fail_with_ntlm(make_fleet: Callable[..., Any]) -> None:
    ep = make_fleet().hosts["h1"]
    ep.set_faults(auth_fail=True)
    with pytest.raises(InvalidCredentialsError):
        winrm.Session(ep.url, auth=(ep.username, ep.password), transport="ntlm").run_cmd("echo", ["x"])


def test_reboot_after_requests(setup: Any) -> None:
    host, ep, client = setup
    ep.set_faults(reboot_after_requests=2)
    assert send_get(client).status == 200
    assert send_get(client).status == 200  # answered, then the host goes down
    with pytest.raises(requests.ConnectionError):
        send_get(client)
    assert ep.run_control("is_up") == {"up": False}
    assert ep.counters()["injected"] == {"reboot": 1}
    deadline = time.monotonic() + 5
    while not ep.run_control("is_up")["up"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert host.boot_id == 2  # a real restart: a new boot
    assert send_get(client).status == 200


def test_unknown_faults_are_refused(setup: Any) -> None:
    _, ep, _ = setup
    with pytest.raises(ControlError, match="unknown fault"):
        ep.set_faults(explode=True)
    with pytest.raises(ControlError, match="unknown fault rule keys"):
        ep.set_faults(reset_after={"actoin": "Get"})


def test_faults_from_host_overrides(make_fleet: Callable[..., Any], raw_client: Callable[..., Any]) -> None:
    fleet = make_fleet([HostSpec("h1", "xp-sp2-x86", {"faults": {"http_500": 1}})], https=True)
    client = raw_client(fleet.hosts["h1"])
    assert send_get(client).status == 500
    assert send_get(client).status == 200
