# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that decides how a host is reached.

A host's inventory says it in Ansible's terms: ``ansible_connection: winrm`` (with the usual ``ansible_winrm_*``
variables) selects WinRM, which is the default; ``kbfix_transport: smb`` selects the SMB transport (NT 4.0, no
WinRM). Everything above this module receives a ``Transport`` and never asks which one it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError
from . import connection_checks
from .base import LogFn, Transport

TRANSPORT_VARIABLE = "kbfix_transport"
TRANSPORTS = ("winrm", "smb")
# A WinRM host whose file sharing is open may opt in to package copies over SMB (ADMIN$) instead of the cmd
# shell's stdin (winrm/transport.py reads it); it then needs the SMB settings (kbfix_smb_*) too.
UPLOAD_SMB_VARIABLE = "kbfix_upload_smb"
# The collection's own host variables read here (templated by the caller: action plugins get them raw).
HOST_VARIABLES = (TRANSPORT_VARIABLE, "kbfix_allow_basic_over_http", "kbfix_allow_unencrypted_http",
                  UPLOAD_SMB_VARIABLE)
# The SMB transport's own settings (``smb.settings.settings_from_vars``: kbfix_smb_port, kbfix_smb_session, ...)
# and the Ansible variables it reads itself (WinRM's come templated through the connection plugin's options).
SMB_VARIABLE_PREFIX = "kbfix_smb_"
ANSIBLE_VARIABLES = ("ansible_host", "ansible_user", "ansible_password", "inventory_hostname")


def reads_variable(name: str) -> bool:
    """Whether ``open_transport`` reads this host variable itself (so the caller must template it first).
    Only these: templating every ``kbfix_*`` variable would render a play's article catalogue (dozens of
    Jinja templates) in every task of every host (docs/performance.md)."""
    return name in HOST_VARIABLES or name in ANSIBLE_VARIABLES or name.startswith(SMB_VARIABLE_PREFIX)


def import_implementations() -> None:
    """Import the transports most hosts use (WinRM: pywinrm, requests, pyspnego, cryptography) now, so that
    a process that forks workers afterwards pays for them once (docs/performance.md). The SMB transport's
    impacket stays lazy: few hosts need it."""
    from .winrm import transport  # noqa: F401


def transport_name(task_vars: Mapping[str, Any]) -> str:
    """``kbfix_transport`` from the host's variables, ``winrm`` when unset."""
    value = task_vars.get(TRANSPORT_VARIABLE)
    if value is None or value == "":
        return "winrm"
    if not isinstance(value, str) or value.strip().lower() not in TRANSPORTS:
        raise ArgumentError(TRANSPORT_VARIABLE, f"must be one of {', '.join(TRANSPORTS)}, got {value!r}")
    return value.strip().lower()


def open_transport(connection: Any, task_vars: Mapping[str, Any], log: LogFn, **overrides: Any) -> Transport:
    """The transport for this host: built from its settings by the transport itself (each checks its own
    variables, errors naming them, before anything is sent), not yet connected (the first request connects).

    ``connection`` is the task's Ansible connection object (the WinRM transport reads its options only, never
    opening its PowerShell-bound shell). ``overrides`` change transport settings (timeouts) for this task."""
    name = transport_name(task_vars)
    connection_checks.check(name, connection, task_vars)  # host, port, path, user, password: before connecting
    opened: Transport
    if name == "smb":
        from .smb import transport as smb  # impacket is loaded only for hosts that need it

        opened = smb.open_for(task_vars, log, connection=connection, **overrides)
    else:
        from .winrm import transport as winrm

        opened = winrm.open_for(task_vars, log, connection=connection, **overrides)
    return opened
