# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTLM over HTTP in two HTTP requests per new connection (ntlm_http, issue 13), against winsim: one request of
authentication per connection, whatever the concurrency; every other transport still goes through pywinrm."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from transport_harness import Targets, make_settings, wsman_requests

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import stdregprov
from winsim.testing import Fleet, HostSpec, running_fleet

SOFTWARE = r"HKLM\SOFTWARE"


def test_one_http_request_of_authentication_per_connection(http_targets: Targets) -> None:
    t = http_targets("xp2")
    assert t.client.own_ntlm
    t.endpoint.reset_counters()
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(r is not None for r in pool.map(lambda _: stdregprov.enum_keys(t.client, SOFTWARE), range(8)))
    for _ in range(3):
        stdregprov.enum_keys(t.client, SOFTWARE)
    counters = t.endpoint.counters()
    assert wsman_requests(t.endpoint) == 11
    assert 1 <= t.client.pool.opened <= t.client.settings.max_in_flight
    # The negotiate token's 401 is the only request that is not a WS-Man request.
    assert counters["auth_requests"] == t.client.pool.opened, counters


def test_https_basic_still_uses_pywinrm(targets: Targets) -> None:
    t = targets("xp2")
    assert t.client.own_ntlm is (targets.mode == "http-ntlm")
    assert stdregprov.enum_keys(t.client, SOFTWARE) is not None


@pytest.fixture(scope="module")
def plain_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hosts = [HostSpec("plain", "xp-sp2-x86", {"allow_unencrypted": True})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("plain-http")) as fleet:
        yield fleet


def test_unencrypted_http_and_proxies_still_use_pywinrm(plain_http: Fleet) -> None:
    ep = plain_http.hosts["plain"]
    never = winrm.WinRMClient(make_settings(ep, "http-ntlm", message_encryption="never", allow_unencrypted_http=True))
    assert not never.own_ntlm
    ep.reset_counters()
    assert stdregprov.enum_keys(never, SOFTWARE) is not None
    # pywinrm's way: the anonymous request's 401, then the negotiate token's, then the message in clear.
    assert (ep.counters()["auth_requests"], wsman_requests(ep)) == (2, 1)
    never.close()
    proxied = winrm.WinRMClient(make_settings(ep, "http-ntlm", extra=(("proxy", "http://192.0.2.1:3128"),)))
    assert not proxied.own_ntlm
