"""Fixtures for integration tests: simulated Windows hosts (winsim) and real ansible-playbook runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from winsim.testing import Fleet, HostSpec, running_fleet


@pytest.fixture
def start_fleet(tmp_path: Path) -> Iterator[object]:
    """Call with a list of (name, profile[, overrides]) tuples; returns (fleet, inventory_path).
    Every fleet started by the test is stopped when the test ends."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        def start(hosts: list[tuple], *, https: bool = False, transport: str = "ntlm",
                  latency_ms: float = 0) -> tuple[Fleet, Path]:
            specs = [HostSpec(h[0], h[1], h[2] if len(h) > 2 else {}) for h in hosts]
            state_dir = tmp_path / f"fleet{len(list(tmp_path.glob('fleet*')))}"
            fleet = stack.enter_context(running_fleet(specs, state_dir=state_dir, https=https, latency_ms=latency_ms))
            inventory = fleet.inventory(state_dir / "inventory.yml", transport=transport)
            return fleet, inventory
        yield start
