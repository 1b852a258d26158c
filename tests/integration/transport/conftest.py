# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two simulated fleets for the transport tests: HTTP + NTLM with message encryption, and HTTPS + Basic.

Each fleet starts once per test session (per xdist worker). Tests that change state use their own registry
keys or their own hosts, and every test leaves its hosts without faults.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from transport_harness import HOSTS, MODES, SHARE, SHARED_PACKAGE, Targets, unique_key

from winsim.packages import write_package
from winsim.testing import Fleet, HostSpec, running_fleet


@pytest.fixture(scope="session")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Fleet]]:
    base = tmp_path_factory.mktemp("transport-fleets")
    share = base / "share"
    share.mkdir()
    write_package(SHARED_PACKAGE, share)
    hosts = [*HOSTS, HostSpec("unc", "vista-rtm-x86", {"shares": {SHARE: str(share)}})]
    with running_fleet(hosts, state_dir=base / "http") as http, \
            running_fleet(hosts, state_dir=base / "https", https=True) as https:
        yield {"http-ntlm": http, "https-basic": https}


@pytest.fixture(params=MODES)
def targets(request: pytest.FixtureRequest, fleets: dict[str, Fleet]) -> Iterator[Targets]:
    t = Targets(request.param, fleets[request.param])
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def http_targets(fleets: dict[str, Fleet]) -> Iterator[Targets]:
    """HTTP + NTLM only: for tests about connection-level behaviour that does not depend on the scheme."""
    t = Targets("http-ntlm", fleets["http-ntlm"])
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def test_key(request: pytest.FixtureRequest) -> str:
    """A registry key no other test uses (the fleet lives for the whole session)."""
    return unique_key(request.node.name)

