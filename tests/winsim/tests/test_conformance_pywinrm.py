"""pywinrm (an independent WinRM client) against winsim: HTTP + NTLM with message encryption, HTTPS + Basic."""

from __future__ import annotations

import base64
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import winrm
import xmltodict
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError
from winrm.protocol import Protocol

WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
CIMV2_ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"


@pytest.fixture
def http_fleet(make_fleet: Callable[..., Any]) -> Any:
    return make_fleet()


@pytest.fixture
def http_ep(http_fleet: Any) -> Any:
    return http_fleet.hosts["h1"]


@pytest.fixture
def https_ep(make_fleet: Callable[..., Any]) -> Any:
    return make_fleet(https=True).hosts["h1"]


def session(ep: Any, transport: str, url: str | None = None) -> winrm.Session:
    return winrm.Session(url or ep.url, auth=(ep.username, ep.password), transport=transport,
                         server_cert_validation="ignore")


def test_run_cmd_over_http_with_ntlm_is_sealed_on_the_wire(http_ep: Any, wire_tap: Callable[[int], Any]) -> None:
    tap = wire_tap(http_ep.port)
    result = session(http_ep, "ntlm", f"http://127.0.0.1:{tap.port}/wsman").run_cmd("echo", ["sealed"])
    assert (result.status_code, result.std_out, result.std_err) == (0, b"sealed\r\n", b"")
    wire = bytes(tap.sent)
    assert b"multipart/encrypted" in wire
    assert b"application/HTTP-SPNEGO-session-encrypted" in wire
    assert b"Envelope" not in wire and b"sealed" not in wire  # no SOAP in clear text
    counters = http_ep.counters()
    assert counters["by_action"] == {"Create": 1, "Command": 1, "Receive": 1, "Signal": 1, "Delete": 1}
    assert counters["auth_requests"] >= 2  # the 401 legs and the empty POST are not WS-Man requests
    assert counters["shells_open"] == 0


def test_run_cmd_over_https_with_basic(https_ep: Any) -> None:
    result = session(https_ep, "basic").run_cmd("exit /b 7")
    assert result.status_code == 7
    result = session(https_ep, "basic").run_cmd("nosuchtool")
    assert result.status_code == 1
    assert b"is not recognized as an internal or external command" in result.std_err


def test_ntlm_over_https_needs_no_message_encryption(https_ep: Any) -> None:
    # What the inventory's default (ansible_winrm_transport: ntlm) does against an HTTPS fleet.
    result = session(https_ep, "ntlm").run_cmd("hostname")
    assert (result.status_code, result.std_out) == (0, b"h1\r\n")


def test_stdin_reaches_the_process(http_ep: Any) -> None:
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password)
    shell_id = protocol.open_shell(working_directory="C:\\Windows\\Temp")
    command_id = protocol.run_command(shell_id, "cmd")  # without /c, cmd reads its commands from stdin
    protocol.send_command_input(shell_id, command_id, b"echo line one\r\n")
    protocol.send_command_input(shell_id, command_id, b"exit 4\r\n", end=True)
    stdout, stderr, code = protocol.get_command_output(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert (code, stderr) == (4, b"")
    assert b"\r\nline one\r\n" in stdout
    assert b"C:\\Windows\\Temp>" in stdout  # the prompt shows the shell's working directory
    assert http_ep.counters()["by_action"]["Send"] == 2


def test_a_program_reading_stdin_to_the_end_gets_every_send_and_ends_at_end(http_fleet: Any, http_ep: Any) -> None:
    """findstr without a file reads its stdin until the pipe closes: input in several Sends (the way an upload
    streams a file) reaches it whole, and it ends only after the Send with End="true"."""
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password,
                        operation_timeout_sec=1, read_timeout_sec=5)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "findstr", ["/c:keep"])
    lines = [f"keep {i}\r\n".encode() if i % 2 else f"drop {i}\r\n".encode() for i in range(2000)]
    text = b"".join(lines)
    for start in range(0, len(text), 7000):
        protocol.send_command_input(shell_id, command_id, text[start:start + 7000])
    # Not ended yet: findstr is still waiting for input, so the Receive long-polls into the timeout fault.
    with pytest.raises(WinRMOperationTimeoutError):
        protocol._raw_get_command_output(shell_id, command_id)  # pylint: disable=protected-access
    protocol.send_command_input(shell_id, command_id, b"keep last", end=True)
    stdout, _, code = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert code == 0
    assert stdout == b"".join(line for line in lines if line.startswith(b"keep")) + b"keep last\r\n"
    assert http_ep.counters()["by_action"]["Send"] == -(-len(text) // 7000) + 1


def test_a_script_reading_stdin_decodes_what_the_client_sends(http_fleet: Any, http_ep: Any) -> None:
    """An XP-era upload without certutil: cscript runs a script that decodes WScript.StdIn with MSXML's
    bin.base64 and saves it with ADODB.Stream; the base64 arrives through pywinrm's send_command_input."""
    machine = http_fleet.machines["h1"]
    script = "\r\n".join([
        'Set xml = CreateObject("Microsoft.XMLDOM")',
        'Set el = xml.createElement("data")',
        'el.dataType = "bin.base64"',
        "el.text = WScript.StdIn.ReadAll()",
        'Set out = CreateObject("ADODB.Stream")',
        "out.Type = 1 ' adTypeBinary",
        "out.Open",
        "out.Write el.nodeTypedValue",
        "out.SaveToFile WScript.Arguments(0), 2 ' adSaveCreateOverWrite",
    ]).encode()
    machine.fs.write(r"C:\Windows\Temp\fromstdin.vbs", script)
    data = bytes(range(256)) * 400
    encoded = base64.encodebytes(data)
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "cscript", ["//nologo", r"C:\Windows\Temp\fromstdin.vbs",
                                                            r"C:\Windows\Temp\fromstdin.bin"])
    half = len(encoded) // 2
    protocol.send_command_input(shell_id, command_id, encoded[:half])
    protocol.send_command_input(shell_id, command_id, encoded[half:], end=True)
    _, stderr, code = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert (code, stderr) == (0, b"")
    assert machine.fs.read(r"C:\Windows\Temp\fromstdin.bin") == data


def test_receive_long_poll_times_out_and_the_client_retries(http_ep: Any) -> None:
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password,
                        operation_timeout_sec=1, read_timeout_sec=5)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "set", ["/p", "ANSWER="])  # waits for a line of stdin
    # A second client (its own connection and security context) answers after the first Receive timed out.
    other = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password)
    timer = threading.Timer(1.6, other.send_command_input, (shell_id, command_id, b"42\r\n", True))
    timer.start()
    try:
        _, _, code = protocol.get_command_output(shell_id, command_id)
    finally:
        timer.join()
    protocol.close_shell(shell_id)
    assert code == 0
    assert http_ep.counters()["by_action"]["Receive"] >= 2  # the first one ended in fault 2150858793


def test_any_envelope_travels_sealed_through_send_message(http_ep: Any) -> None:
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password)
    request = {"env:Envelope": protocol.build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", CIMV2_ALL)}
    request["env:Envelope"]["env:Body"] = {"n:Enumerate": {
        "w:OptimizeEnumeration": None, "w:MaxElements": "32000",
        "w:Filter": {"@Dialect": WQL, "#text": "SELECT Name FROM Win32_Service WHERE Name LIKE 'lanman%'"}}}
    reply = ET.fromstring(protocol.send_message(xmltodict.unparse(request)))
    names = [el.text for el in reply.iter("Name")]
    assert names == ["LanmanServer", "LanmanWorkstation"]
    assert reply.find(".//{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}EndOfSequence") is not None


def test_wrong_password_is_401(http_ep: Any) -> None:
    bad = winrm.Session(http_ep.url, auth=(http_ep.username, "wrong"), transport="ntlm")
    with pytest.raises(InvalidCredentialsError):
        bad.run_cmd("echo", ["x"])
    assert http_ep.counters()["requests"] == 0


@pytest.mark.parametrize(("codepage", "encoding"), [(437, "cp437"), (65001, "utf-8")])
def test_output_follows_the_shell_code_page(http_ep: Any, codepage: int, encoding: str) -> None:
    # Ansible's winrm connection opens its shells with WINRS_CODEPAGE=65001; pywinrm defaults to 437.
    protocol = Protocol(http_ep.url, transport="ntlm", username=http_ep.username, password=http_ep.password)
    shell_id = protocol.open_shell(codepage=codepage)
    command_id = protocol.run_command(shell_id, "echo", ["Grüße"])
    stdout, _, code = protocol.get_command_output(shell_id, command_id)
    command_id = protocol.run_command(shell_id, "cmd")
    protocol.send_command_input(shell_id, command_id, "echo Käse\r\nexit\r\n".encode(encoding), end=True)
    echoed, _, _ = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)
    assert (code, stdout) == (0, "Grüße\r\n".encode(encoding))
    assert "\r\nKäse\r\n".encode(encoding) in echoed
