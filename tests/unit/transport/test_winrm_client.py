# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WinRMSettings, reading Ansible's winrm connection plugin, and the client's offline behaviour."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, HostUnreachableError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import wmi, wsman

PASSWORD = "S3cret!pw-do-not-log"


def ansible_connection(variables: dict[str, Any]) -> Any:
    """A winrm connection plugin with its options set the way TaskExecutor sets them."""
    conn = connection_loader.get("winrm", PlayContext(), new_stdin=None)
    templar = Templar(loader=DataLoader(), variables=variables)
    conn.set_options(var_options=conn._resolve_option_variables(variables, templar))
    return conn


def test_private_attributes_of_installed_ansible_core_are_what_we_read() -> None:
    conn = ansible_connection({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p"})
    conn._build_winrm_kwargs()
    for name in ("_winrm_host", "_winrm_port", "_winrm_scheme", "_winrm_path", "_winrm_transport",
                 "_winrm_kwargs", "_winrm_connection_timeout"):
        assert hasattr(conn, name), f"ansible-core no longer sets {name}: update settings_from_connection"
    assert isinstance(conn._winrm_transport, list)
    assert isinstance(conn._winrm_kwargs, dict)


def test_settings_from_connection() -> None:
    conn = ansible_connection({
        "ansible_host": "10.0.0.7", "ansible_user": "Administrator", "ansible_password": PASSWORD,
        "ansible_port": 5986, "ansible_winrm_transport": "ntlm,basic",
        "ansible_winrm_server_cert_validation": "ignore", "ansible_winrm_connection_timeout": 25,
        "ansible_winrm_message_encryption": "never", "ansible_winrm_path": "/custom",
        "ansible_winrm_proxy": "http://proxy:3128", "ansible_winrm_kerberos_delegation": "yes",
    })
    s = winrm.settings_from_connection(conn, max_in_flight=3)
    assert (s.host, s.port, s.scheme, s.path) == ("10.0.0.7", 5986, "https", "/custom")
    assert s.transports == ("ntlm", "basic")
    assert (s.username, s.password) == ("Administrator", PASSWORD)
    assert s.cert_validation == "ignore"
    assert s.message_encryption == "never"
    assert (s.operation_timeout, s.read_timeout) == (25, 35)  # the plugin's own mapping
    assert s.kerberos_delegation is True
    assert dict(s.extra) == {"proxy": "http://proxy:3128"}
    assert s.max_in_flight == 3
    assert s.endpoint == "https://10.0.0.7:5986/custom"
    # Reading settings must not connect: no protocol, no (PowerShell-bound) shell.
    assert conn.protocol is None and conn.shell_id is None


def test_settings_from_connection_defaults() -> None:
    conn = ansible_connection({"ansible_host": "xp1", "ansible_user": "admin@EXAMPLE.COM", "ansible_password": "x"})
    s = winrm.settings_from_connection(conn)
    assert (s.port, s.scheme, s.path) == (5986, "https", "/wsman")
    assert s.transports == ("kerberos",)  # a UPN means a domain account: Ansible picks Kerberos
    conn = ansible_connection({"ansible_host": "xp1", "ansible_port": 5985, "ansible_user": "a",
                               "ansible_password": "x"})
    # Ansible's default for port 5985 is Basic ("plaintext") over HTTP: refused unless opted in.
    with pytest.raises(ArgumentError, match="kbfix_allow_basic_over_http"):
        winrm.settings_from_connection(conn)
    s = winrm.settings_from_connection(conn, allow_basic_over_http=True)
    assert (s.scheme, s.transports) == ("http", ("plaintext",))


def test_password_never_in_repr() -> None:
    s = winrm.WinRMSettings(host="h", username="u", password=PASSWORD, cert_key_pem="/k.pem")
    client = winrm.WinRMClient(s)
    for text in (repr(s), str(s), repr(client)):
        assert PASSWORD not in text
        assert "/k.pem" not in text


@pytest.mark.parametrize("bad", [
    {"scheme": "ftp"}, {"port": 0}, {"transports": ("telnet",)}, {"transports": ()},
    {"read_timeout": 20, "operation_timeout": 20}, {"max_in_flight": 15}, {"max_in_flight": 0},
    {"message_encryption": "sometimes"}, {"cert_validation": "maybe"}, {"host": ""},
])
def test_invalid_settings(bad: dict[str, Any]) -> None:
    values: dict[str, Any] = {"host": "h"} | bad
    with pytest.raises(ArgumentError):
        winrm.WinRMSettings(**values)


def test_messages_name_the_inventory_host_and_its_address() -> None:
    """A fleet behind one address (NAT, a jump host, winsim) needs the inventory name in every message."""
    port = free_port()
    named = winrm.WinRMClient(winrm.WinRMSettings(host="127.0.0.1", port=port, name="c013", retries=0,
                                                          username="u", password=PASSWORD))
    assert named.host == "c013 (127.0.0.1)"
    with pytest.raises(HostUnreachableError, match=r"^c013 \(127\.0\.0\.1\): cannot connect"):
        wmi.last_boot_time(named)
    assert winrm.WinRMClient(winrm.WinRMSettings(host="xp1", name="xp1")).host == "xp1"
    assert winrm.WinRMClient(winrm.WinRMSettings(host="xp1")).host == "xp1"


def test_ipv6_endpoint() -> None:
    assert winrm.WinRMSettings(host="::1", port=5985).endpoint == "http://[::1]:5985/wsman"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_connection_is_retried_with_backoff_then_unreachable() -> None:
    delays: list[float] = []
    settings = winrm.WinRMSettings(host="127.0.0.1", port=free_port(), transports=("ntlm",), username="u",
                                   password=PASSWORD, retries=3, backoff=0.2, backoff_max=0.5)
    client = winrm.WinRMClient(settings, sleep=delays.append)
    with pytest.raises(HostUnreachableError) as info:
        wmi.os_facts(client)
    assert PASSWORD not in str(info.value)
    assert "connection refused" in str(info.value)
    assert len(delays) == 3 * 2  # two concurrent queries, three retries each
    assert all(0.1 <= d <= 0.5 for d in delays)
    assert client.request_count == 4 * 2  # every attempt counted


def test_dns_failure_is_unreachable() -> None:
    settings = winrm.WinRMSettings(host="no-such-host.invalid", transports=("ntlm",), username="u",
                                   password="p", retries=0)
    client = winrm.WinRMClient(settings, sleep=lambda _: None)
    with pytest.raises(HostUnreachableError):
        client.enumerate(wsman.wmi_resource("root/cimv2", "Win32_OperatingSystem"))


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    client = winrm.WinRMClient(winrm.WinRMSettings(host="h", backoff=0.5, backoff_max=4))
    for attempt, ceiling in enumerate([0.5, 1, 2, 4, 4, 4]):
        samples = [client._backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert len(set(samples)) > 1  # jitter


def test_one_client_per_settings() -> None:
    a = winrm.WinRMSettings(host="h1", username="u", password="p")
    try:
        assert winrm.client_for(a) is winrm.client_for(winrm.WinRMSettings(host="h1", username="u", password="p"))
        assert winrm.client_for(a) is not winrm.client_for(winrm.WinRMSettings(host="h2", username="u", password="p"))
    finally:
        winrm.close_all()
