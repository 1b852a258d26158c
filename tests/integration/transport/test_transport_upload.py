# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uploads through the cmd shell against winsim: the stdin path (WS-Man Send), the echo fallback, what is
verified, and faults in the middle of an upload."""

from __future__ import annotations

import base64
import hashlib
import math
import random

import pytest
from transport_harness import Targets

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import HostUnreachableError, WriteVerificationError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.base import LOG_PAYLOADS
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import upload

MB = 1024 * 1024


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def sends_for(client: upload.WinRMClient, data: bytes) -> int:
    return math.ceil(len(upload.stdin_text(data)) / upload.send_chunk_size(client))


def leftovers(targets_host: object, path: str) -> list[str]:
    fs = targets_host.fs  # type: ignore[attr-defined]
    return [p for p in (path + ".b64", path + ".kbfix.vbs", path + ".decode.vbs") if fs.exists(p)]


@pytest.mark.parametrize("name", ["w2008", "w8r2"])
def test_stdin_upload_with_certutil_is_checked_by_sha1(targets: Targets, name: str) -> None:
    t = targets(name)
    data = payload(MB)
    path = r"C:\Windows\Temp\kbfix-stdin.bin"
    t.endpoint.reset_counters()
    result = upload.upload(t.client, data, path)
    assert (result.method, result.decoder, result.size) == ("stdin", "certutil", len(data))
    assert result.sha1 == hashlib.sha1(data).hexdigest()  # noqa: S324 - what certutil -hashfile prints
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    actions = t.endpoint.counters()["by_action"]
    # One reading process fed by Sends filled to the 150 KB envelope, one decode-and-hash line.
    assert actions["Send"] == sends_for(t.client, data) == 13
    assert actions["Command"] == 2 and actions["Create"] == actions["Delete"] == 1
    assert sum(actions.values()) <= 20  # WS-Man requests for a megabyte (the echo path needed about 450)


def test_payload_log_of_an_upload_leaves_the_file_out(targets: Targets) -> None:
    """At -vvvvv a Send's stream is named by its length, not logged: the rest of the envelope still is."""
    logged: list[tuple[int, str]] = []
    t = targets("w2008", log=lambda level, msg: logged.append((level, msg)))
    data = payload(300_000, seed=5)
    upload.upload(t.client, data, r"C:\Windows\Temp\logged.bin")
    sends = [m for level, m in logged if level == LOG_PAYLOADS and "<rsp:Send>" in m]
    assert len(sends) == sends_for(t.client, data) == 4
    assert all("characters of base64 left out]</rsp:Stream>" in m and "CommandId=" in m for m in sends)
    chunk = base64.b64encode(upload.stdin_text(data)[:3000]).decode()
    assert all(chunk[:200] not in m for _, m in logged)
    assert max(len(m) for m in sends) < 4096


def test_stdin_upload_on_2003_is_checked_by_size(targets: Targets) -> None:
    """Server 2003's certutil decodes but has no -hashfile: the size certutil reports is the check."""
    t = targets("r2")
    data = payload(200_000, seed=3)
    result = upload.upload(t.client, data, r"C:\WINDOWS\Temp\r2.bin")
    assert (result.method, result.decoder, result.sha1) == ("stdin", "certutil", None)
    assert t.endpoint.host().fs.read(r"C:\WINDOWS\Temp\r2.bin") == data


def test_stdin_upload_on_xp_decodes_stdin_with_vbscript(targets: Targets) -> None:
    t = targets("xp2")
    data = b"MZ" + payload(300_000, seed=5)
    path = r"C:\WINDOWS\Temp\xp-stdin.bin"
    t.endpoint.reset_counters()
    result = upload.upload(t.client, data, path, certutil=False)
    assert (result.method, result.decoder, result.size) == ("stdin", "vbscript", len(data))
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    actions = t.endpoint.counters()["by_action"]
    assert actions["Command"] == 1  # the decoding reader, which removes its script; the size comes through WMI
    assert actions["Enumerate"] == 1


def test_xp_not_known_as_xp_falls_back_to_the_file_decoder(targets: Targets) -> None:
    t = targets("xp2")
    data = payload(20_000, seed=9)
    path = r"C:\WINDOWS\Temp\xp-unknown.bin"
    result = upload.upload(t.client, data, path)
    assert (result.method, result.decoder) == ("stdin", "vbscript")
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)


def test_a_host_that_cannot_run_the_stdin_reader_gets_the_echo_path(targets: Targets) -> None:
    logged: list[str] = []
    t = targets("nowsh", log=lambda level, msg: logged.append(msg))
    data = payload(30_000, seed=11)
    path = r"C:\Windows\Temp\nowsh.bin"
    result = upload.upload(t.client, data, path)
    assert (result.method, result.decoder) == ("echo", "certutil")
    assert result.sha1 == hashlib.sha1(data).hexdigest()  # noqa: S324
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    assert any("Windows Script Host access is disabled" in m and "uploading with echo" in m for m in logged)
    with pytest.raises(upload.StdinPathError, match="stdin reader exited with 1"):
        upload.upload(t.client, data, path, method="stdin")


def test_a_file_that_arrives_changed_is_deleted_before_anything_runs_it(targets: Targets) -> None:
    t = targets("w2008")
    data = payload(400_000, seed=13)
    path = r"C:\Windows\Temp\corrupt.bin"
    t.endpoint.set_faults(corrupt_stdin={"action": "Send", "skip": 1, "count": 1})
    try:
        with pytest.raises(WriteVerificationError) as info:
            upload.upload(t.client, data, path)
    finally:
        t.endpoint.set_faults()
    assert f"its SHA-1 on the host is {hashlib.sha1(data).hexdigest()}" not in str(info.value)  # noqa: S324
    assert f"the package's is {hashlib.sha1(data).hexdigest()}" in str(info.value)  # noqa: S324
    assert "the file was deleted and nothing was installed" in str(info.value)
    host = t.endpoint.host()
    assert not host.fs.exists(path) and not leftovers(host, path)
    assert t.endpoint.counters()["injected"].get("corrupt_stdin") == 1


@pytest.mark.parametrize("fault,action,fresh_starts", [
    ("reset_before", "Send", 1),  # not applied, but the client cannot know: ambiguous
    ("reset_after", "Send", 1),  # applied: resending would write the chunk twice
    ("timeout_fault", "Send", 1),
    ("quota_fault", "Send", 0),  # refused before anything was done: the same Send again
    ("reset_after", "Receive", 1),  # the reader's exit code is handed out once
    ("reset_after", "Command", 1),  # the reader may be running, waiting for stdin nobody sends
])
def test_faults_in_the_middle_of_an_upload(targets: Targets, fault: str, action: str, fresh_starts: int) -> None:
    logged: list[str] = []
    t = targets("w2008", log=lambda level, msg: logged.append(msg))
    data = payload(MB // 2, seed=17)
    path = rf"C:\Windows\Temp\fault-{fault}-{action}.bin"
    t.endpoint.reset_counters()
    t.endpoint.set_faults(**{fault: {"action": action, "skip": 2 if action == "Send" else 0, "count": 1}})
    try:
        result = upload.upload(t.client, data, path)
    finally:
        t.endpoint.set_faults()
    assert result.method == "stdin" and result.sha1 == hashlib.sha1(data).hexdigest()  # noqa: S324
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    actions = t.endpoint.counters()["by_action"]
    assert actions["Create"] == 1 + fresh_starts
    assert sum("starting again from a fresh file" in m for m in logged) == fresh_starts
    if fault == "quota_fault":
        assert actions["Send"] == sends_for(t.client, data) + 1


def test_a_host_back_from_a_restart_in_the_middle_of_an_upload_gets_it_again_on_a_fresh_shell(
        targets: Targets) -> None:
    """The shell dies with the restart: once WinRM answers again the old shell id is unknown (InvalidSelectors,
    "shell not found"); the upload starts again in a new shell and completes."""
    logged: list[str] = []
    # Retries that outlast the host's 0.2 s restart: the client reaches it again within one request's retries.
    t = targets("upl", log=lambda level, msg: logged.append(msg), retries=8, backoff=0.05,
                backoff_max=0.4)
    data = payload(MB // 2, seed=19)
    path = r"C:\Windows\Temp\restart.bin"
    boot = t.endpoint.host().boot_id
    t.endpoint.reset_counters()
    t.endpoint.set_faults(reboot_after_requests=4)  # Create, Command, two Sends: then the host restarts
    try:
        result = upload.upload(t.client, data, path)
    finally:
        t.endpoint.set_faults()
    host = t.endpoint.host()
    assert host.boot_id == boot + 1
    assert result.method == "stdin" and host.fs.read(path) == data and not leftovers(host, path)
    assert any("starting again from a fresh file in a fresh shell" in m for m in logged)


def test_a_host_still_down_after_the_retries_is_left_to_the_task_level_wait(targets: Targets) -> None:
    """Restarting takes longer than a request's retries: the upload ends as a host lost during the task
    (``lost``), which kb_article's resume rule waits for before starting again (test_restart_during_upload)."""
    t = targets("upl2")
    t.endpoint.set_faults(reboot_after_requests=4)
    try:
        with pytest.raises(HostUnreachableError) as info:
            upload.upload(t.client, payload(MB // 2, seed=23), r"C:\Windows\Temp\down.bin")
    finally:
        t.endpoint.set_faults()
    assert info.value.lost


@pytest.mark.parametrize("fault", ["reset_before", "reset_after", "timeout_fault"])
def test_echo_upload_survives_a_reset_around_an_append(targets: Targets, fault: str) -> None:
    logged: list[str] = []
    t = targets("r2", log=lambda level, msg: logged.append(msg))
    data = bytes(range(256)) * 50  # 17,068 base64 characters: 5 echo commands of 4,000
    t.endpoint.reset_counters()
    t.endpoint.set_faults(**{fault: {"action": "Command", "skip": 1, "count": 1}})
    result = upload.upload(t.client, data, rf"C:\WINDOWS\Temp\{fault}.bin", method="echo", echo_line=4000)
    assert result.method == "echo"
    assert t.endpoint.host().fs.read(rf"C:\WINDOWS\Temp\{fault}.bin") == data
    assert any("bytes (4002 before this line)" in m for m in logged)
    # 5 echo + the decode line; the line hit by reset_before (or by the service's operation timeout, which
    # leaves it unapplied) arrives twice, the one hit by reset_after once.
    assert t.endpoint.counters()["by_action"]["Command"] == (6 if fault == "reset_after" else 7)


@pytest.mark.parametrize("fault", ["reset_before", "reset_after", "timeout_fault"])
def test_the_decode_line_lost_twice_is_settled_by_looking_at_the_host(targets: Targets, fault: str) -> None:
    """A decode line lost with the connection is run again only while its input is still there (reset_before,
    the operation timeout: never ran); when it ran (reset_after) the file it wrote is hashed and measured
    instead of failing the upload (the campaign's resets found it)."""
    t = targets("r2")
    data = bytes(range(256)) * 20  # 6,828 base64 characters: 2 echo commands of 4,000
    path = rf"C:\WINDOWS\Temp\repeat-{fault}.bin"
    t.endpoint.reset_counters()
    t.endpoint.set_faults(**{fault: {"action": "Command", "skip": 2, "count": 2}})  # the decode line, twice
    upload.upload(t.client, data, path, method="echo", echo_line=4000)
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    commands = t.endpoint.counters()["by_action"]["Command"]
    # echo x2; the decode line x3 (lost, lost again, done), or, when it ran: once, then the hash on its own,
    # itself lost once (the second fault) and run again
    assert commands == (2 + 1 + 2 if fault == "reset_after" else 2 + 3)


def test_a_decode_repeated_twice_by_the_client_is_settled_by_looking_at_the_host(targets: Targets) -> None:
    """The decode line is lost before it ran (its text still there), so it is sent again as repeatable; that
    run's answer is lost after it ran, and the client's own resend finds no text left to decode. The file it
    wrote is measured and hashed instead of failing the upload (the 200-host campaign found it)."""
    t = targets("w2008")  # a certutil with -hashfile: the settled file is checked by its hash
    data = bytes(range(256)) * 20  # 2 echo commands of 4,000 characters
    path = r"C:\Windows\Temp\repeat-twice.bin"
    t.endpoint.reset_counters()
    t.endpoint.set_faults(reset_before={"action": "Command", "skip": 2, "count": 1},
                          reset_after={"action": "Command", "skip": 3, "count": 1})
    done = upload.upload(t.client, data, path, method="echo", echo_line=4000)
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
    assert done.sha1 == hashlib.sha1(data).hexdigest()  # noqa: S324 - checked by hash, not by size alone
    # echo x2; the decode line lost unrun, sent again (lost after it ran), resent by the client (no text
    # left); then the clean-up line and the hash on its own
    assert t.endpoint.counters()["by_action"]["Command"] == 2 + 3 + 2


def test_a_lost_receive_makes_the_decode_ambiguous_not_failed(targets: Targets) -> None:
    """The Receive carrying certutil's report is reset after the host answered it: its output is gone for good
    (a Receive hands it out once), so the decode is run again rather than reported failed (the campaign found
    "certutil -decode failed with 1" on a decode that had worked)."""
    t = targets("r2")
    data = bytes(range(256)) * 20  # 2 echo commands of 4,000 characters
    t.endpoint.reset_counters()
    t.endpoint.set_faults(reset_after={"action": "Receive", "skip": 2, "count": 1})  # the decode line's Receive
    upload.upload(t.client, data, r"C:\WINDOWS\Temp\lost-receive.bin", method="echo", echo_line=4000)
    assert t.endpoint.host().fs.read(r"C:\WINDOWS\Temp\lost-receive.bin") == data
    assert t.endpoint.counters()["by_action"]["Command"] == 2 + 1 + 1  # echo x2, the decode line, the hash


def test_echo_upload_on_xp_uses_the_vbscript_decoder(targets: Targets) -> None:
    t = targets("xp2")
    data = b"MZ" + bytes(range(256)) * 30
    path = r"C:\WINDOWS\Temp\xp.bin"
    result = upload.upload(t.client, data, path, method="echo", echo_line=2000)
    assert (result.method, result.decoder) == ("echo", "vbscript")
    host = t.endpoint.host()
    assert host.fs.read(path) == data and not leftovers(host, path)
