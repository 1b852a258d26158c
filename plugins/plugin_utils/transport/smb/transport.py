# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SMB transport: what the WinRM transport offers, for Windows NT 4.0 (no WinRM, no WMI).

* OS facts, registry values and keys, hotfix records, pending restart: the remote registry (``\\pipe\\winreg``);
* files: size and last write time from the share listing, the version from the PE version resource read in a
  few ranged reads (``pe.py``);
* boot time: ``NetrServerStatisticsGet`` level 0 over ``\\pipe\\srvsvc``: ``sts0_start`` is when the Server
  service started collecting statistics, i.e. when it started, which on NT is during boot;
* commands: a batch file on ADMIN$ run by a one-shot service (``\\pipe\\svcctl``, ``command.py``);
* the ``kbfix_*`` facts of ``kbfix.windows.facts``: ``host_facts`` (the remote registry and srvsvc);
* restart: ``BaseInitiateSystemShutdown`` over ``\\pipe\\winreg``, then wait for a new ``sts0_start``.

One session serves every request (serially); ``request_count`` counts the SMB requests sent, RPC calls
included (each is an SMB write and read of the pipe). Reads are retried a bounded number of times on a new
session when the connection breaks; writes never are: a write whose connection broke is read back first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..base import LogFn
from .collect import CURRENT_VERSION, ENVIRONMENT, PRODUCT_OPTIONS, CollectJobs, os_facts_from, service_pack
from .files import filetime, share_path
from .impacket_lib import IMPACKET
from .restart import RestartJobs
from .services import ServiceJobs
from .settings import settings_from_vars

# What callers and tests know from this module.
__all__ = ["CURRENT_VERSION", "ENVIRONMENT", "PRODUCT_OPTIONS", "SMBTransport", "filetime", "open_for",
           "os_facts_from", "require_packages", "service_pack", "share_path"]

T = TypeVar("T")


def require_packages() -> None:
    """``MissingRequirementError`` unless impacket imported. Called where SMB use starts (``SMBTransport()``),
    before any request."""
    IMPACKET.require()


class SMBTransport(CollectJobs, ServiceJobs, RestartJobs):
    """The ``Transport`` for NT 4.0 hosts: the jobs of ``collect``, ``values``, ``files``, ``restart`` and
    ``services`` over one ``host.SmbHost``, plus the interface's bookkeeping."""

    def __repr__(self) -> str:
        return f"SMBTransport({self.host}:{self.settings.port}, user={self.settings.username!r})"

    @property
    def kind(self) -> str:
        return "smb"

    @property
    def max_in_flight(self) -> int:
        # One SMB session, and impacket's connection is not thread-safe: one request at a time.
        return 1

    def run_concurrently(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Serially, in order (``max_in_flight`` is 1)."""
        return [call() for call in calls]


def open_for(task_vars: Mapping[str, Any], log: LogFn, *, connection: Any = None, **overrides: Any) -> SMBTransport:
    """The transport ``transport.select`` opens for a host with ``kbfix_transport: smb``: settings from its
    variables (checked before any packet, errors name the variable), not yet connected. ``overrides`` replace
    settings fields (``timeout``, ``retries``) for one task. The task's Ansible ``connection`` plays no part:
    NT 4.0 hosts have no connection plugin of their own."""
    del connection
    settings = settings_from_vars(task_vars)
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    return SMBTransport(settings, log)
