"""Fixtures for the SMB transport's integration tests: real Samba hosts (tests/smbhost) standing in for NT 4.0.

The hosts are started once per module (smbd takes a second to start and the machine is shared); tests that
change a host's state use values and keys of their own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from smbhost import SambaHost, running_samba

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.settings import settings_from_vars
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import SMBTransport


def _require_samba() -> None:
    # Not a skip: the Makefile installs samba (DEB_PACKAGES); a missing smbd is a broken setup to report.
    if shutil.which("smbd") is None and not os.path.exists("/usr/sbin/smbd"):
        pytest.fail("smbd is not installed: run `make system-deps` (the Makefile's DEB_PACKAGES: samba, "
                    "samba-common-bin; `make test` runs it first)")


@pytest.fixture(scope="module")
def fixed_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaHost]:
    _require_samba()
    with running_samba(tmp_path_factory.mktemp("smb-fixed"), fixed=True) as host:
        yield host


@pytest.fixture(scope="module")
def unfixed_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaHost]:
    _require_samba()
    with running_samba(tmp_path_factory.mktemp("smb-unfixed"), fixed=False) as host:
        yield host


@pytest.fixture
def connect() -> Iterator[Callable[..., SMBTransport]]:
    """``connect(host, log=None, **inventory overrides)`` -> a transport, closed after the test."""
    opened: list[SMBTransport] = []

    def make(host: SambaHost, log: Callable[[int, str], None] | None = None, **overrides: Any) -> SMBTransport:
        transport = SMBTransport(settings_from_vars(host.inventory_vars(**overrides)), log=log)
        opened.append(transport)
        return transport

    yield make
    for transport in opened:
        transport.close()
