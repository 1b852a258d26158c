# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of a host's connection settings, checked before the first connection, for both transports.

Left unchecked, a setting only fails where it is used: a CR LF in ``ansible_winrm_path`` ends as an HTTP
library's "URL can't contain control characters" after a dozen connection attempts, a NUL in ``ansible_user``
travels through every NTLM exchange and comes back as "connection reset". Here each one is an
``ArgumentError`` naming the inventory variable. Passwords are judged by shape only and never quoted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError
from ..windows_text import windows_string

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters that cannot be part of a host name or an address: they would end the authority of the URL
# (WinRM) or name something else than a host (SMB).
_NOT_IN_HOST = re.compile(r"[\s/\\?#@\"'<>|%,;]")
# Windows' limits (LM20_UNLEN and the 1,024-character UPN; PWLEN): longer values cannot name an account.
MAX_USER = 1024
MAX_PASSWORD = 256
MAX_HOST = 255  # a DNS name

# The option of ansible.builtin.winrm -> the inventory variable users set it with.
WINRM_OPTIONS = {"remote_addr": "ansible_host", "port": "ansible_port", "path": "ansible_winrm_path",
                 "remote_user": "ansible_user", "remote_password": "ansible_password"}


def check(transport_name: str, connection: Any, task_vars: Mapping[str, Any]) -> None:
    """Raise ``ArgumentError`` naming the variable when a connection setting cannot be what it claims to be.
    WinRM settings are read from the connection plugin's options (what it would use: aliases and templates
    resolved); the SMB transport reads the host's variables itself."""
    if transport_name == "smb":
        host_field = "ansible_host" if task_vars.get("ansible_host") not in (None, "") else "inventory_hostname"
        values = {host_field: task_vars.get(host_field), "ansible_user": task_vars.get("ansible_user"),
                  "ansible_password": task_vars.get("ansible_password")}
    else:
        values = {variable: _option(connection, option) for option, variable in WINRM_OPTIONS.items()}
    for variable, value in values.items():
        if value is not None:
            _CHECKS[variable.replace("inventory_hostname", "ansible_host")](value, variable)


def _option(connection: Any, name: str) -> Any:
    try:
        return connection.get_option(name)
    except (AttributeError, KeyError):
        return None  # not a WinRM connection: select refuses it, naming ansible_connection


def check_host(value: Any, variable: str = "ansible_host") -> None:
    host = windows_string(value, variable, limit=MAX_HOST, what="a host name or address")
    match = _CONTROL.search(host) or _NOT_IN_HOST.search(host.strip("[]"))
    if not host.strip() or match:
        found = f" ({match.group()!r} at position {match.start()})" if match else ""
        raise ArgumentError(variable, f"{host!r} is not a host name or an address{found}")


def check_port(value: Any, variable: str = "ansible_port") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ArgumentError(variable, f"must be a TCP port number, not a {type(value).__name__}")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ArgumentError(variable, f"{value!r} is not a TCP port (1 to 65535)")


def check_path(value: Any, variable: str = "ansible_winrm_path") -> None:
    path = windows_string(value, variable, limit=2048, what="a URL path")
    match = _CONTROL.search(path) or re.search(r"[\s?#]", path)
    if not path.startswith("/") or match:
        found = f": {match.group()!r} at position {match.start()}" if match else ""
        raise ArgumentError(variable, f"{path!r} is not a URL path such as /wsman{found}")


def check_user(value: Any, variable: str = "ansible_user") -> None:
    user = windows_string(value, variable, limit=MAX_USER, what="a user name")
    match = _CONTROL.search(user)
    if not user.strip() or match:
        raise ArgumentError(variable, f"{user!r} is not a user name"
                                      + (f" (control character {match.group()!r})" if match else ""))


def check_password(value: Any, variable: str = "ansible_password") -> None:
    # Never the value, not even its type's repr of it: a list would print its items.
    if not isinstance(value, str):
        raise ArgumentError(variable, f"must be a string, not a {type(value).__name__} (its value is not shown)")
    if "\x00" in value or "\r" in value or "\n" in value:
        raise ArgumentError(variable, "contains a NUL, CR or LF character, which no Windows password can carry")
    if len(value) > MAX_PASSWORD:
        raise ArgumentError(variable, f"is longer than {MAX_PASSWORD} characters, Windows' limit for a password")


_CHECKS = {"ansible_host": check_host, "ansible_port": check_port, "ansible_winrm_path": check_path,
           "ansible_user": check_user, "ansible_password": check_password}
