# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection-level behaviour against winsim: credentials, unreachable hosts, the in-flight bound, logging."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import certifi
import pytest
from transport_harness import Targets, make_settings

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    AuthenticationError,
    HostUnreachableError,
    QuotaExceededError,
    TransportError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import replies, stdregprov, wmi, wsman
from winsim.testing import Fleet


def test_wrong_password(targets: Targets) -> None:
    t = targets("xp2", password="not-the-password")
    with pytest.raises(AuthenticationError) as info:
        wmi.os_facts(t.client)
    assert "not-the-password" not in str(info.value)
    assert t.endpoint.username in str(info.value)


def test_rejected_valid_credentials(targets: Targets) -> None:
    t = targets("xp2")
    t.endpoint.set_faults(auth_fail=True)
    with pytest.raises(AuthenticationError):
        wmi.last_boot_time(t.client)


def test_next_transport_after_401(http_targets: Targets) -> None:
    # Basic is refused over HTTP (AllowUnencrypted=false), NTLM works: like Ansible, try them in order. The
    # client refuses Basic over HTTP itself unless opted in; opted in, the host's 401 moves it on.
    logged: list[str] = []
    t = http_targets("xp2", transports=("basic", "ntlm"), allow_basic_over_http=True,
                     log=lambda level, msg: logged.append(msg))
    assert wmi.last_boot_time(t.client) is not None
    assert t.client.transport == "ntlm"
    assert any("trying transport ntlm" in m for m in logged)


def test_untrusted_certificate_is_a_transport_error(fleets: dict[str, Fleet]) -> None:
    ep = fleets["https-basic"].hosts["xp2"]
    client = winrm.WinRMClient(make_settings(ep, "https-basic", ca_trust_path=certifi.where()))
    with pytest.raises(TransportError, match="TLS failed") as info:
        wmi.last_boot_time(client)
    assert not isinstance(info.value, HostUnreachableError)
    assert client.request_count == 1  # not retried: configuration, not reachability


def test_unreachable_host(targets: Targets) -> None:
    ep = targets.fleet.hosts["xp2"]
    settings = make_settings(ep, targets.mode, port=1, retries=2)  # nothing listens on port 1
    client = winrm.WinRMClient(settings, sleep=lambda _: None)
    with pytest.raises(HostUnreachableError):
        wmi.last_boot_time(client)
    assert client.request_count == 3


def test_in_flight_bound_keeps_below_the_quota(http_targets: Targets) -> None:
    """50 concurrent callers, 150 ms per request: the client lets 5 through at a time, so WinRM 2.0's 15
    operations per user are never reached (no quota fault, no retry: exactly 50 requests), and the host
    sees them 5 at a time (50 x 150 ms / 5 = 1.5 s at least; unbounded it would take about 0.15 s)."""
    t = http_targets("xp2", retries=0)
    assert t.endpoint.winrm_version == "2.0"
    stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE")  # authenticate first
    t.endpoint.set_faults(latency_ms=150)
    t.endpoint.reset_counters()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE"), range(50)))
    elapsed = time.monotonic() - started
    assert all(r is not None for r in results)
    assert t.client.pool.peak_in_flight == 5
    assert t.endpoint.counters()["requests"] == 50
    assert elapsed >= 1.4


def test_quota_fault_from_open_enumerations(http_targets: Targets) -> None:
    """Windows counts enumerations left open against MaxConcurrentOperationsPerUser (15 on 2.0): a real
    quota fault, retried with backoff, then raised as QuotaExceededError. A quota fault is an answer, so a read
    of a host that answers with it gets twice the retries (docs/transport.md, "Retry policy")."""
    t = http_targets("xp2", retries=2, backoff=0.01, backoff_max=0.02)
    uri = wsman.wmi_resource("root/cimv2", "Win32_Service")
    contexts = []
    try:
        for _ in range(15):
            page = replies.enumeration_page(t.client.send(wsman.enumerate_request(uri, optimize=False),
                                                        idempotent=True))
            assert page.context is not None
            contexts.append(page.context)
        t.endpoint.reset_counters()
        with pytest.raises(QuotaExceededError) as info:
            stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE")
        assert info.value.code == 2150859174
        assert t.endpoint.counters()["requests"] == 5  # 1 + 2 retries x 2
        assert "gave up on Invoke:EnumKey after 5 attempts" in str(info.value)
        assert "quota fault 2150859174 x5" in str(info.value)
    finally:
        for context in contexts:
            t.client.send(wsman.release_request(uri, context), idempotent=True)
    assert stdregprov.enum_keys(t.client, r"HKLM\SOFTWARE") is not None  # released: the quota is free again


def test_verbosity_levels_and_no_password(http_targets: Targets) -> None:
    logged: list[tuple[int, str]] = []
    t = http_targets("xp1", log=lambda level, msg: logged.append((level, msg)))
    stdregprov.read_value(t.client, r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentVersion", "string")
    assert any(level == winrm.LOG_OPERATIONS and "Invoke:GetStringValue" in m for level, m in logged)
    payloads = [m for level, m in logged if level == winrm.LOG_PAYLOADS]
    assert any("GetStringValue_INPUT" in m for m in payloads)
    assert any("GetStringValue_OUTPUT" in m for m in payloads)
    assert all(t.endpoint.password not in m for _, m in logged)


FAST = {"backoff": 0.01, "backoff_max": 0.02}


def test_five_faults_in_a_row_on_one_read_of_a_live_host(http_targets: Targets) -> None:
    """The 200-host campaign's c126: five faults in a row (a reset after sending, quota faults, an operation
    timeout, a reset before the request was applied) on one Enumerate of a host that had answered, one more
    than the four retries. The host answered between the resets, so it is up: the read is retried further and
    succeeds, and the host is not reported unreachable."""
    t = http_targets("xp2", **FAST)  # the default 4 retries
    assert wmi.last_boot_time(t.client) is not None  # the host has answered this client
    t.endpoint.set_faults(
        reset_after={"action": "Enumerate", "count": 1},
        quota_fault={"action": "Enumerate", "skip": 1, "count": 2},
        timeout_fault={"action": "Enumerate", "skip": 3, "count": 1},
        reset_before={"action": "Enumerate", "skip": 4, "count": 1})
    t.endpoint.reset_counters()
    assert wmi.last_boot_time(t.client) is not None
    counters = t.endpoint.counters()
    assert counters["injected"] == {"reset_after": 1, "quota_fault": 2, "timeout_fault": 1, "reset_before": 1}
    assert counters["by_action"]["Enumerate"] == 6  # five faults, then the answer


def test_a_live_host_that_never_completes_a_read_is_given_up_with_what_happened(http_targets: Targets) -> None:
    """The bound: 2 x retries retries for a read of a live host. Giving up says what each attempt met and is a
    failure, not ``unreachable`` (the host answered throughout), even when the last attempt was a reset."""
    t = http_targets("xp2", retries=2, **FAST)
    assert wmi.last_boot_time(t.client) is not None
    t.endpoint.set_faults(quota_fault={"action": "Enumerate", "count": 2},
                          reset_after={"action": "Enumerate", "skip": 2, "count": 1},
                          timeout_fault={"action": "Enumerate", "skip": 3, "count": 1},
                          reset_before={"action": "Enumerate", "skip": 4, "count": 1})
    t.endpoint.reset_counters()
    with pytest.raises(TransportError) as info:
        wmi.last_boot_time(t.client)
    assert not isinstance(info.value, HostUnreachableError)
    message = str(info.value)
    assert "gave up on Enumerate after 5 attempts" in message and "the host is up" in message, message
    assert "quota fault 2150859174 x2" in message and "operation timeout fault 2150858793 x1" in message, message
    assert "connection lost after sending" in message, message
    assert t.endpoint.counters()["by_action"]["Enumerate"] == 5  # 1 + 2 retries x 2


def test_resets_in_a_row_without_an_answer_are_a_lost_host(http_targets: Targets) -> None:
    """What a restart looks like (winsim resets every connection while it is down): failures in a row with no
    answer between them keep the configured retries and end as a lost host, which kb_article waits for
    (tasks/resume.py), even though the host had answered before."""
    t = http_targets("xp2", retries=2, **FAST)
    assert wmi.last_boot_time(t.client) is not None
    t.endpoint.set_faults(reset_after={"action": "Enumerate", "count": 3})
    t.endpoint.reset_counters()
    with pytest.raises(HostUnreachableError) as info:
        wmi.last_boot_time(t.client)
    assert info.value.lost
    assert t.endpoint.counters()["by_action"]["Enumerate"] == 3  # 1 + 2 retries, not more


def test_writes_keep_the_configured_retries_for_quota_faults(http_targets: Targets, test_key: str) -> None:
    """The extra retries are for reads: a quota fault refuses a write before doing anything, so it is retried,
    but only ``retries`` times."""
    t = http_targets("xp2", retries=2, **FAST)
    assert wmi.last_boot_time(t.client) is not None
    t.endpoint.set_faults(quota_fault={"action": "Invoke:CreateKey", "count": 5})
    t.endpoint.reset_counters()
    with pytest.raises(QuotaExceededError):
        stdregprov.create_key(t.client, test_key)
    assert t.endpoint.counters()["by_action"]["Invoke:CreateKey"] == 3  # 1 + 2 retries
