# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings of the SMB transport, read from a host's inventory variables.

Everything is validated here, before any packet is sent, and every error names the inventory variable the
user has to fix (``ArgumentError.field``). The password never appears in ``repr`` or in an error text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ArgumentError

DIRECT_PORT = 445  # SMB directly over TCP (Windows 2000 and later; NT 4.0 only with a third-party stack)
NETBIOS_PORT = 139  # NetBIOS session service: what NT 4.0 listens on
SESSIONS = ("direct", "netbios")
SessionKind = Literal["direct", "netbios"]
DEFAULT_NETBIOS_NAME = "*SMBSERVER"  # the wildcard called name every Windows SMB server accepts on port 139
DEFAULT_TIMEOUT = 60.0  # per socket operation; StartService alone may block 30 s on the host's SCM
# A NetBIOS name is at most 15 characters (the 16th byte is the suffix) and cannot hold these.
_NETBIOS_BAD = re.compile(r'[\\/:*?"<>|.\x00-\x1f]')


@dataclass(frozen=True)
class SMBSettings:
    host: str
    username: str
    password: str = field(repr=False)
    port: int = DIRECT_PORT
    # "netbios": a NetBIOS session request (RFC 1002) naming the host before any SMB, as port 139 needs;
    # "direct": SMB right away (port 445). Port 139 implies netbios, any other port direct, unless set.
    session: SessionKind = "direct"
    domain: str = ""
    netbios_name: str = DEFAULT_NETBIOS_NAME
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 2  # reads only: a write is never repeated blindly
    backoff: float = 0.5


def _text(task_vars: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """The variable as a string; "" when it is absent and optional."""
    value = task_vars.get(name)
    if value is None or value == "":
        if required:
            raise ArgumentError(name, "is required for the SMB transport")
        return ""
    if not isinstance(value, str):
        raise ArgumentError(name, f"must be a string, not {type(value).__name__}")
    return value


def _number(task_vars: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = task_vars.get(name, default)
    if isinstance(value, bool):
        raise ArgumentError(name, "must be a number, not a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ArgumentError(name, f"{value!r} is not a number") from None
    if not low <= number <= high:
        raise ArgumentError(name, f"must be between {low:g} and {high:g}, not {number:g}")
    return number


def settings_from_vars(task_vars: Mapping[str, Any]) -> SMBSettings:
    """``ansible_host`` (else ``inventory_hostname``), ``ansible_user`` (``DOMAIN\\user`` or ``user@DOMAIN``
    set the domain), ``ansible_password``, ``kbfix_smb_port`` (445, or 139 for NetBIOS), ``kbfix_smb_session``
    (``direct`` or ``netbios``; default from the port), ``kbfix_smb_netbios_name``, ``kbfix_smb_timeout``
    (seconds), ``kbfix_smb_retries``."""
    host = _text(task_vars, "ansible_host", required=False) or _text(task_vars, "inventory_hostname")
    user = _text(task_vars, "ansible_user")
    password = task_vars.get("ansible_password")
    if password is None:
        raise ArgumentError("ansible_password", "is required for the SMB transport")
    if not isinstance(password, str):
        raise ArgumentError("ansible_password", "must be a string")  # never echo the value
    domain = ""
    if "\\" in user:
        domain, _sep, user = user.partition("\\")
    elif "@" in user:
        user, _sep, domain = user.partition("@")
    if not user:
        raise ArgumentError("ansible_user", "has no user name")
    port_value = _number(task_vars, "kbfix_smb_port", DIRECT_PORT, 1, 65535)
    if port_value != int(port_value):
        raise ArgumentError("kbfix_smb_port", f"{port_value:g} is not a TCP port")
    port = int(port_value)
    session = _text(task_vars, "kbfix_smb_session", required=False).strip().lower() or (
        "netbios" if port == NETBIOS_PORT else "direct")
    if session not in SESSIONS:
        raise ArgumentError("kbfix_smb_session", f"must be direct or netbios, not {session!r}")
    if session == "direct" and port == NETBIOS_PORT:
        raise ArgumentError("kbfix_smb_session", "port 139 is the NetBIOS session service: direct SMB needs "
                                                 "another port (445)")
    name = _text(task_vars, "kbfix_smb_netbios_name", required=False) or DEFAULT_NETBIOS_NAME
    if name != DEFAULT_NETBIOS_NAME and (len(name) > 15 or _NETBIOS_BAD.search(name)):
        raise ArgumentError("kbfix_smb_netbios_name",
                            f"{name!r} is not a NetBIOS name (at most 15 characters, no \\/:*?\"<>|.)")
    timeout = _number(task_vars, "kbfix_smb_timeout", DEFAULT_TIMEOUT, 1, 3600)
    retries = _number(task_vars, "kbfix_smb_retries", 2, 0, 10)
    if retries != int(retries):
        raise ArgumentError("kbfix_smb_retries", f"{retries:g} is not a whole number")
    return SMBSettings(host=host, username=user, password=password, port=port,
                       session="netbios" if session == "netbios" else "direct", domain=domain, netbios_name=name,
                       timeout=timeout, retries=int(retries))
