# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM transport's settings, built by the transport itself from what Ansible already knows of the host.

Settings come from Ansible's own ``winrm`` connection plugin (``settings_from_connection``) so an inventory
written for Ansible works unchanged, without ever opening the PowerShell-bound shell that plugin opens; the
collection's own host variables (the security opt-ins, the inventory name) are added by ``settings_for_host``.
Bad values raise ``ArgumentError`` naming the field before anything is sent.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...booleans import parse_bool
from ...errors import ArgumentError
from . import ntlm_http

TRANSPORTS = ("basic", "plaintext", "ssl", "ntlm", "kerberos", "credssp", "certificate")
# WinRM 2.0's default MaxConcurrentOperationsPerUser is 15; stay well below it so one controller never
# trips the quota on its own, and leave room for a person's session on the same account.
DEFAULT_MAX_IN_FLIGHT = 5
WINRM2_MAX_OPERATIONS = 15


@dataclass(frozen=True)
class WinRMSettings:
    """Everything needed to talk to one host. ``password`` never appears in ``repr``."""

    host: str
    port: int = 5985
    scheme: str = "http"
    path: str = "/wsman"
    transports: tuple[str, ...] = ("ntlm",)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cert_validation: str = "validate"  # "validate" | "ignore"
    ca_trust_path: str | None = None
    message_encryption: str = "auto"  # "auto" | "always" | "never"
    read_timeout: int = 30
    operation_timeout: int = 20
    connection_timeout: float = 10.0  # TCP connect only; a dead host fails fast during reboot waits
    kerberos_delegation: bool = False
    kerberos_hostname_override: str | None = None
    service: str = "HTTP"
    cert_pem: str | None = None
    cert_key_pem: str | None = field(default=None, repr=False)
    extra: tuple[tuple[str, Any], ...] = ()  # further pywinrm Protocol keywords (proxy, send_cbt, ...)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 8.0
    max_elements: int = 32000
    # Opt-ins for weakening the security defaults (see ``_validate_security``); inventory variables
    # ``kbfix_allow_basic_over_http`` and ``kbfix_allow_unencrypted_http`` set them.
    allow_basic_over_http: bool = False
    allow_unencrypted_http: bool = False
    # The inventory name, for messages: in a fleet behind one address (NAT, a jump host, a simulator) the
    # address alone does not say which host failed.
    name: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"{self.scheme}://{host}:{self.port}{path}"


def _validate(s: WinRMSettings) -> None:
    if not s.host:
        raise ArgumentError("host", "a host name or address is required")
    if s.scheme not in ("http", "https"):
        raise ArgumentError("scheme", f"must be http or https, not {s.scheme!r}")
    if not 0 < s.port < 65536:
        raise ArgumentError("port", f"{s.port} is not a TCP port")
    if not s.transports or any(t not in TRANSPORTS for t in s.transports):
        raise ArgumentError("transport", f"each transport must be one of {', '.join(TRANSPORTS)}: {s.transports}")
    if s.cert_validation not in ("validate", "ignore"):
        raise ArgumentError("server_cert_validation", "must be validate or ignore")
    if s.message_encryption not in ("auto", "always", "never"):
        raise ArgumentError("message_encryption", "must be auto, always or never")
    if not 0 < s.operation_timeout < s.read_timeout:
        # pywinrm's rule too: the service may hold a request for the whole operation timeout.
        raise ArgumentError("read_timeout", "must be greater than operation_timeout, both positive")
    if not 1 <= s.max_in_flight < WINRM2_MAX_OPERATIONS:
        raise ArgumentError("max_in_flight", f"must be between 1 and {WINRM2_MAX_OPERATIONS - 1}")
    if s.retries < 0 or s.backoff < 0:
        raise ArgumentError("retries", "retries and backoff cannot be negative")
    _validate_security(s)


# Transports that send the password itself in the Authorization header (Base64 is not encryption):
# pywinrm's "plaintext" and "ssl" are Basic too, "ssl" adding only a client certificate.
BASIC_TRANSPORTS = frozenset({"basic", "plaintext", "ssl"})
# Transports pywinrm can seal messages with over HTTP (message_encryption auto/always).
SEALING_TRANSPORTS = frozenset({"ntlm", "kerberos", "credssp"})
ALLOW_BASIC_VARIABLE = "kbfix_allow_basic_over_http"
ALLOW_UNENCRYPTED_VARIABLE = "kbfix_allow_unencrypted_http"


def _validate_security(s: WinRMSettings) -> None:
    """Refuse, before anything is sent, settings that would put credentials or data on the wire in clear.

    Checked as a pair (scheme and transport together), because each is harmless alone: Basic is fine over
    HTTPS, HTTP is fine with a sealing transport. The errors say which variable opts in."""
    if s.scheme != "http":
        return
    basic = sorted(BASIC_TRANSPORTS.intersection(s.transports))
    if basic and not s.allow_basic_over_http:
        raise ArgumentError(
            "ansible_winrm_transport",
            f"{'/'.join(basic)} sends the password in clear over HTTP; use ansible_winrm_scheme: https, or "
            f"ntlm/kerberos (which encrypt every message), or set {ALLOW_BASIC_VARIABLE}: true for this host "
            "to accept the risk (the listener must also have AllowUnencrypted=true)")
    if s.message_encryption == "never" and not s.allow_unencrypted_http:
        raise ArgumentError(
            "ansible_winrm_message_encryption",
            f"'never' over HTTP sends every message in clear; use auto or always (or HTTPS), or set "
            f"{ALLOW_UNENCRYPTED_VARIABLE}: true for this host to accept the risk")


def use_own_ntlm(s: WinRMSettings, transport: str) -> bool:
    """Whether ``transport`` goes through ``ntlm_http`` (two HTTP requests per new connection) instead of
    pywinrm: NTLM with a password over plain HTTP with every message sealed, and no proxy in the way (a
    configured one, or one pywinrm's default ``legacy_requests`` would take from the environment).
    HTTPS, Kerberos, CredSSP, Basic, certificates, ``message_encryption: never`` keep pywinrm."""
    if transport != "ntlm" or s.scheme != "http" or effective_encryption(s, transport) != "always":
        return False
    if not (s.username and s.password) or not ntlm_http.PYSPNEGO.available:
        return False  # no password: pywinrm's path (SSPI-style credentials) and its errors stay
    proxy = dict(s.extra).get("proxy", "legacy_requests")
    if proxy == "legacy_requests":
        return "http" not in urllib.request.getproxies_environment() or bool(
            urllib.request.proxy_bypass(s.host))
    return proxy is None


def effective_encryption(s: WinRMSettings, transport: str) -> str:
    """The message_encryption value handed to pywinrm for one transport.

    Over HTTP a sealing transport gets ``always``: pywinrm then raises instead of silently sending in
    clear should it be unable to seal. Everything else keeps the inventory's value (Basic over HTTP only
    gets here with its opt-in, and cannot be sealed)."""
    if s.scheme == "http" and transport in SEALING_TRANSPORTS and s.message_encryption == "auto":
        return "always"
    return s.message_encryption


# ---------------------------------------------------------------------------------------------------
# Settings from Ansible's winrm connection plugin

_KNOWN_KWARGS = {
    "server_cert_validation", "ca_trust_path", "message_encryption", "read_timeout_sec",
    "operation_timeout_sec", "kerberos_delegation", "kerberos_hostname_override", "service",
    "cert_pem", "cert_key_pem", "username", "password",
}


def settings_from_connection(connection: Any, **overrides: Any) -> WinRMSettings:
    """Settings from an ``ansible.plugins.connection.winrm.Connection`` whose options are set.

    Calls only ``_build_winrm_kwargs()`` (pure option processing) and reads the private attributes it
    fills; never ``_connect()`` or ``exec_command()``, which open a shell and wrap everything in
    PowerShell. The attribute names are pinned by a unit test against the installed ansible-core. The caller
    checks first that pywinrm imported (``client.require_packages``): ``_build_winrm_kwargs`` itself fails with
    a NameError without it."""
    connection._build_winrm_kwargs()
    kwargs: dict[str, Any] = dict(connection._winrm_kwargs)
    values: dict[str, Any] = {
        "host": str(connection._winrm_host),
        "port": int(connection._winrm_port),
        "scheme": str(connection._winrm_scheme),
        "path": str(connection._winrm_path),
        "transports": tuple(str(t) for t in connection._winrm_transport),
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "cert_validation": str(kwargs.get("server_cert_validation") or "validate"),
        "message_encryption": str(kwargs.get("message_encryption") or "auto"),
        "kerberos_delegation": parse_bool(kwargs.get("kerberos_delegation", False),
                                          "ansible_winrm_kerberos_delegation"),
        "kerberos_hostname_override": kwargs.get("kerberos_hostname_override"),
        "service": str(kwargs.get("service") or "HTTP"),
        "cert_pem": kwargs.get("cert_pem"),
        "cert_key_pem": kwargs.get("cert_key_pem"),
        "ca_trust_path": kwargs.get("ca_trust_path"),
        "extra": tuple(sorted((k, v) for k, v in kwargs.items() if k not in _KNOWN_KWARGS)),
    }
    timeout = connection._winrm_connection_timeout
    if timeout:
        # Same mapping as the connection plugin's _winrm_connect.
        values["operation_timeout"] = int(timeout)
        values["read_timeout"] = int(timeout) + 10
    else:
        if "operation_timeout_sec" in kwargs:
            values["operation_timeout"] = int(kwargs["operation_timeout_sec"])
        if "read_timeout_sec" in kwargs:
            values["read_timeout"] = int(kwargs["read_timeout_sec"])
    values.update(overrides)
    return WinRMSettings(**values)


def settings_for_host(connection: Any, task_vars: Mapping[str, Any], **overrides: Any) -> WinRMSettings:
    """The settings of one host: the task's Ansible connection (only its option processing runs), the security
    opt-ins and the inventory name from its variables, ``overrides`` (timeouts) for this task."""
    if not hasattr(connection, "_build_winrm_kwargs"):
        kind = getattr(connection, "ansible_name", None) or getattr(connection, "transport", "?")
        raise ArgumentError("ansible_connection", "kbfix.windows talks to the host over WinRM itself and needs "
                                                  "ansible_connection=winrm (or kbfix_transport=smb for NT 4.0 "
                                                  f"hosts), not {kind}")
    # A security opt-in: only a real boolean (or Ansible's usual true/false words) counts, so a typo never
    # weakens a default silently.
    opt_ins = {name: parse_bool(task_vars.get(variable, False), variable, blank_is_false=True) for name, variable in (
        ("allow_basic_over_http", ALLOW_BASIC_VARIABLE), ("allow_unencrypted_http", ALLOW_UNENCRYPTED_VARIABLE))}
    inventory_name = task_vars.get("inventory_hostname")
    return settings_from_connection(
        connection, **{"name": str(inventory_name) if inventory_name else None, **opt_ins, **overrides})
