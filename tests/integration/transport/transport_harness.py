# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the transport integration tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from winsim.testing import Endpoint, Fleet, HostSpec

HOSTS: list[HostSpec] = [
    HostSpec("xp1", "xp-sp1-x86"),
    HostSpec("xp2", "xp-sp2-x86"),
    HostSpec("r2", "2003r2-sp2-x86"),
    HostSpec("r2hw", "2003r2-sp2-x64", {"winrm_version": "1.0"}),
    HostSpec("w2008", "2008-sp2-x64"),
    HostSpec("w8r2", "2008r2-rtm-x64"),
    HostSpec("vista", "vista-sp1-x64"),
    HostSpec("inst", "xp-sp1-x86", {"reboot_seconds": 1}),  # installs and reboots happen here
    HostSpec("slow", "xp-sp2-x86", {"reboot_seconds": 600}),  # never comes back in time
    HostSpec("vpend", "vista-rtm-x64", {"pending": ["KB938475"]}),  # installed, restart outstanding
    HostSpec("xppend", "xp-sp1-x86", {"pending": ["KB828753"]}),
    HostSpec("nowsh", "2008-sp2-x64", {"features": {"wsh_enabled": False}}),  # scripts disabled by policy
    HostSpec("upl", "2008-sp2-x64", {"reboot_seconds": 0.2}),  # restarts in the middle of uploads
    HostSpec("upl2", "2008-sp2-x64", {"reboot_seconds": 2}),
]

MODES = ("http-ntlm", "https-basic")
SHARE = r"\\fs1\packages"  # host "unc" (Vista RTM x86) maps it to a directory holding SHARED_PACKAGE
SHARED_PACKAGE = "Windows6.0-KB938475-x86.msu"


@dataclass
class Target:
    mode: str
    endpoint: Endpoint
    client: winrm.WinRMClient

    @property
    def name(self) -> str:
        return self.endpoint.name


_unique = itertools.count()


def unique_key(test_name: str) -> str:
    """A registry key no other test uses (the fleet lives for the whole session)."""
    safe = "".join(c if c.isalnum() else "_" for c in test_name)
    return rf"HKLM\SOFTWARE\kbfix-test\{safe}-{next(_unique)}"


def make_settings(ep: Endpoint, mode: str, **overrides: Any) -> winrm.WinRMSettings:
    transport = "ntlm" if mode == "http-ntlm" else "basic"
    values: dict[str, Any] = {
        "host": ep.address, "port": ep.port, "scheme": ep.scheme, "path": ep.path, "transports": (transport,),
        "username": ep.username, "password": ep.password, "backoff": 0.01, "backoff_max": 0.05,
        "read_timeout": 30, "operation_timeout": 20,
    }
    if ep.scheme == "https":
        # winsim's self-signed certificate names 127.0.0.1: validate it against itself.
        values["ca_trust_path"] = str(ep.cert_path)
    values.update(overrides)
    return winrm.WinRMSettings(**values)


class Targets:
    """Builds clients for hosts of the fleet of one mode, and clears the faults they set."""

    def __init__(self, mode: str, fleet: Fleet) -> None:
        self.mode = mode
        self.fleet = fleet
        self.touched: list[Endpoint] = []
        self.clients: list[winrm.WinRMClient] = []

    def __call__(self, name: str, *, log: winrm.LogFn | None = None, **settings: Any) -> Target:
        ep = self.fleet.hosts[name]
        client = winrm.WinRMClient(make_settings(ep, self.mode, **settings), log)
        self.touched.append(ep)
        self.clients.append(client)
        ep.set_faults()
        return Target(self.mode, ep, client)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for ep in self.touched:
            ep.set_faults()


def wsman_requests(ep: Endpoint) -> int:
    """WS-Man requests the host served (authentication round trips are counted apart by winsim)."""
    return int(ep.counters()["requests"])
