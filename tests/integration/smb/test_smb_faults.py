"""Faults of the SMB transport against real servers: rejected credentials, a closed port, a connection reset,
the password kept out of every message, and run_command / restart error handling against Samba (which can
neither create services nor report a boot time)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from smbhost import PASSWORD, free_port

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    ArgumentError,
    AuthenticationError,
    HostUnreachableError,
    TransportError,
)


def test_wrong_password_names_host_and_user_not_password(fixed_host, connect):
    lines: list[str] = []
    wrong = "Not-The-Password-42"
    transport = connect(fixed_host, log=lambda level, msg: lines.append(msg), ansible_password=wrong)
    with pytest.raises(AuthenticationError) as caught:
        transport.os_facts()
    text = str(caught.value)
    assert fixed_host.host in text and "Administrator" in text and "LOGON_FAILURE" in text
    assert wrong not in text and wrong not in repr(transport) and all(wrong not in line for line in lines)


def test_unknown_user_is_an_authentication_error(fixed_host, connect):
    with pytest.raises(AuthenticationError, match=fixed_host.host):
        connect(fixed_host, ansible_user="nobody").key_exists("HKLM\\SOFTWARE")


def test_password_never_logged_at_any_level(fixed_host, connect):
    lines: list[tuple[int, str]] = []
    transport = connect(fixed_host, log=lambda level, msg: lines.append((level, msg)))
    transport.file_facts([r"C:\WINNT\system32\Mpr.dll"])
    transport.read_value(r"HKLM\SOFTWARE\kbfix-test", "Text")
    assert {level for level, _ in lines} >= {2, 4, 5}
    assert all(PASSWORD not in msg for _, msg in lines)


def test_closed_port_is_unreachable_after_bounded_retries(fixed_host, connect):
    port = free_port()  # nothing listens there
    transport = connect(fixed_host, kbfix_smb_port=port, kbfix_smb_retries=1)
    sleeps: list[float] = []
    transport._sleep = sleeps.append  # the backoff between attempts, recorded instead of waited
    with pytest.raises(HostUnreachableError, match=f"127.0.0.1:{port}.*refused"):
        transport.read_value(r"HKLM\SOFTWARE\kbfix-test", "Text")
    assert sleeps == [0.5]


@pytest.fixture
def resetting_server() -> Iterator[int]:
    """A TCP server that accepts and resets every connection (SO_LINGER 0)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_connection_reset_is_unreachable(fixed_host, connect, resetting_server):
    transport = connect(fixed_host, kbfix_smb_port=resetting_server, kbfix_smb_retries=0)
    with pytest.raises(HostUnreachableError, match=r"127\.0\.0\.1"):
        transport.key_exists("HKLM\\SOFTWARE")


def test_run_command_fails_clearly_and_leaves_nothing_behind(fixed_host, connect):
    transport = connect(fixed_host)
    with pytest.raises(TransportError, match="service") as caught:
        transport.run_command("Q253729i.exe -m -q -z", timeout=30, success_codes=[0])
    assert fixed_host.host in str(caught.value)
    assert list((fixed_host.system_root / "Temp").iterdir()) == []  # the batch file was removed again


def test_restart_is_not_started_without_a_boot_time(fixed_host, connect):
    transport = connect(fixed_host)
    with pytest.raises(TransportError, match="NetrServerStatisticsGet"):
        transport.restart(timeout=5, delay=0, message="kbfix")
    assert not fixed_host.shutdown_log.exists()  # no shutdown was requested


def test_shutdown_request_reaches_the_host(unfixed_host, connect):
    transport = connect(unfixed_host)
    transport.initiate_restart(delay=30, message="kbfix installing Q253729")
    # Samba hands BaseInitiateSystemShutdown to its shutdown script as %z (the message, spaces made "_"),
    # %r and %f (reboot and force flags). Its %t would be the timeout but smb.conf's own %t (the current
    # time) wins, so the delay cannot be checked here (unit tests check the request's encoding).
    message, _, reboot, force = unfixed_host.shutdown_log.read_text().split("\n")[0].split(" ")
    assert (message, reboot, force) == ("kbfix_installing_Q253729", "-r", "-f")


def test_netbios_session_service_on_port_139(tmp_path, connect):
    """NT 4.0 listens on 139 only: the session starts with a NetBIOS session request to the called name.
    Port 139 is fixed by the protocol, so a busy 139 on this machine fails the test with the reason."""
    from smbhost import running_samba

    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 139))
    except OSError as exc:
        pytest.fail(f"127.0.0.1:139 is not free for the NetBIOS test: {exc}")
    finally:
        probe.close()
    with running_samba(tmp_path / "nbt", fixed=False, address="127.0.0.1", port=139) as host:
        transport = connect(host)
        assert transport.settings.port == 139
        assert transport.key_exists(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix")
        assert transport.requests_by_name()["NetBIOS session request"] == 1


@pytest.mark.parametrize(("line", "kwargs", "field"), [
    ("setup.exe\r\nformat c:", {}, "command"),
    ('"unbalanced', {}, "command"),
    ("setup.exe", {"success_codes": [0, 2 ** 32]}, "success_codes[1]"),
    ("setup.exe", {"expected_codes": [True]}, "expected_codes[0]"),
    ("setup.exe", {"timeout": 0}, "timeout"),
])
def test_run_command_bad_input_fails_before_any_request(fixed_host, connect, line, kwargs, field):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError) as caught:
        transport.run_command(line, **{"timeout": 30, "success_codes": None, **kwargs})
    assert caught.value.field == field and transport.request_count == 0
