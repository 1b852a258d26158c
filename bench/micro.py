"""Where the controller's CPU goes: the collection's WinRM library alone, in this process, against winsim.

The fleet runs in its own process, so ``time.process_time()`` here is the client's work only (all threads):

* ``new_connection``: a new client, one small WQL enumeration, close -- TCP connect, the NTLM handshake
  (three HTTP requests), sealing and unsealing one message;
* ``request``: one more enumeration on an authenticated connection (sealing, XML building and parsing);
* ``audit_4``: ``article_runner.run`` of the four seed articles on one host with known OS facts and pending
  restart (as after kbfix.windows.facts), on a new client -- what the kb_article task does apart from
  Ansible's own work (worker process, templating, result handling);
* ``specs_4_cold`` / ``specs_4_cached``: ``article_runner.prepare`` of the four specs, parsed and validated,
  and found in the cache by file hash (what a worker forked after ``spec.preload`` does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.kbfix.windows.plugins.plugin_utils.article import spec
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm.transport import WinRMTransport
from winsim.testing import Endpoint

_OS_QUERY = wmi.Query("Win32_OperatingSystem", ("Version",))


def _client(ep: Endpoint) -> winrm.WinRMClient:
    settings = winrm.WinRMSettings(host=ep.address, port=ep.port, scheme=ep.scheme, username=ep.username,
                                   password=ep.password)
    return winrm.WinRMClient(settings)


def _cpu_ms(action: Callable[[], Any], times: int) -> float:
    start = time.process_time()
    for _ in range(times):
        action()
    return (time.process_time() - start) * 1000 / times


def measure(ep: Endpoint, requests: list[article_runner.ArticleRequest], os_facts: OsFacts,
            times: int = 20) -> dict[str, float]:
    articles = article_runner.prepare(requests, {})

    def cold() -> None:
        spec._LOADED.clear()  # measuring what the cache saves: every call parses again
        article_runner.prepare(requests, {})

    def fresh() -> None:
        client = _client(ep)
        try:
            wmi.query(client, _OS_QUERY)
        finally:
            client.close()

    def audit() -> None:
        client = _client(ep)
        try:
            article_runner.run(WinRMTransport(client), articles, os_facts, article_runner.Options(), known_restart=())
        finally:
            client.close()

    warm = _client(ep)
    try:
        wmi.query(warm, _OS_QUERY)  # authenticate once
        request = _cpu_ms(lambda: wmi.query(warm, _OS_QUERY), times * 2)
    finally:
        warm.close()
    ep.reset_counters()
    audit_ms = _cpu_ms(audit, times)
    counters = ep.counters()
    cold_ms = _cpu_ms(cold, times)
    cached_ms = _cpu_ms(lambda: article_runner.prepare(requests, {}), times)
    return {"new_connection_ms": _cpu_ms(fresh, times), "request_ms": request, "audit_4_ms": audit_ms,
            "audit_4_requests": counters["requests"] / times,
            "audit_4_auth_requests": counters["auth_requests"] / times,
            "specs_4_cold_ms": cold_ms, "specs_4_cached_ms": cached_ms}
