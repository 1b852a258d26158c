"""One fleet process serves many hosts to many concurrent clients without being the bottleneck.

The full-size run (500 hosts, 50 clients) is in tests/winsim/README.md; this test keeps the same shape small
enough for the suite: 200 hosts, 50 concurrent pywinrm clients over HTTP + NTLM with sealed messages.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import xmltodict
from winrm.protocol import Protocol

from winsim.testing import HostSpec, running_fleet

PROFILES = ["xp-sp2-x86", "2003r2-sp2-x86", "2008-sp2-x64", "2008r2-rtm-x64", "vista-sp1-x86"]
CLIENTS = 50
REQUESTS_PER_CLIENT = 8
WQL = "SELECT Name, State FROM Win32_Service WHERE State = 'Running'"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.slow
def test_fifty_clients_against_two_hundred_hosts(tmp_path: Path) -> None:
    specs = [HostSpec(f"s{i:03d}", PROFILES[i % len(PROFILES)]) for i in range(200)]
    with running_fleet(specs, state_dir=tmp_path) as fleet:
        pid = fleet.run_control("ping")["pid"]
        endpoints = list(fleet.hosts.values())
        errors: list[str] = []
        done: list[float] = []

        def client(index: int) -> None:
            ep = endpoints[(index * 4) % len(endpoints)]
            protocol = Protocol(ep.url, transport="ntlm", username=ep.username, password=ep.password)
            request = {"env:Envelope": protocol.build_wsman_header(
                "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*")}
            request["env:Envelope"]["env:Body"] = {"n:Enumerate": {
                "w:OptimizeEnumeration": None, "w:MaxElements": "100",
                "w:Filter": {"@Dialect": "http://schemas.microsoft.com/wbem/wsman/1/WQL", "#text": WQL}}}
            message = xmltodict.unparse(request)
            for _ in range(REQUESTS_PER_CLIENT):
                started = time.perf_counter()
                try:
                    reply = protocol.send_message(message)
                except Exception as exc:  # every failure counts, whatever its type
                    errors.append(f"{ep.name}: {exc!r}")
                    continue
                assert b"<Name>LanmanServer</Name>" in reply
                done.append(time.perf_counter() - started)

        cpu_before, wall_start = cpu_seconds(pid), time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall_start
        server_cpu = cpu_seconds(pid) - cpu_before
        per_host = [fleet.hosts[f"s{(i * 4) % 200:03d}"].counters()["by_action"] for i in range(0, CLIENTS, 10)]

    assert errors == []
    assert len(done) == CLIENTS * REQUESTS_PER_CLIENT
    assert all(actions == {"Enumerate": REQUESTS_PER_CLIENT} for actions in per_host)
    # The clients, not the fleet, set the pace: the fleet process never needed a whole core.
    assert server_cpu / wall < 0.9, f"fleet used {server_cpu:.2f}s CPU in {wall:.2f}s"
