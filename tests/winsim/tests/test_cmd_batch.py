"""Batch files in winsim's cmd, as NT 4.0's cmd runs them (what the SMB transport's service runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from winsim.cmd import run_command
from winsim.machine import Host

TEMP = "C:\\WINNT\\Temp"
LADDER = (b"@echo off\r\n"
          b"%1 %2\r\n"
          b"if errorlevel 2 goto two\r\n"
          b"if errorlevel 1 goto one\r\n"
          b"echo rc=0> %SystemRoot%\\Temp\\out.txt\r\n"
          b"goto end\r\n"
          b":two\r\n"
          b"echo rc=2> %SystemRoot%\\Temp\\out.txt\r\n"
          b"goto end\r\n"
          b":ONE\r\n"
          b"echo rc=1> %SystemRoot%\\Temp\\out.txt\r\n"
          b":end\r\n")


@pytest.fixture
def nt4(tmp_path: Path) -> Host:
    host = Host.create("nt4", "nt4-tse-sp6-x86", tmp_path / "nt4.json")
    host.fs.mkdir(TEMP)
    return host


def batch(host: Host, text: bytes, name: str = "x.bat") -> str:
    path = f"{TEMP}\\{name}"
    host.fs.write(path, text)
    return path


@pytest.mark.parametrize(("program", "expected"), [
    ("hostname", b"rc=0\r\n"),  # exit 0
    ("find", b"rc=2\r\n"),  # FIND without a string: exit 2
    ("nosuchprogram", b"rc=1\r\n"),  # not recognized: exit 1
])
def test_errorlevel_ladder_records_the_exit_code(nt4: Host, program: str, expected: bytes) -> None:
    path = batch(nt4, LADDER)
    result = run_command(nt4, f"%COMSPEC% /C {path} {program}")
    assert nt4.fs.read(f"{TEMP}\\out.txt") == expected
    assert result.stdout == (b"nt4\r\n" if program == "hostname" else b"")  # @echo off: no command echo


def test_echo_on_shows_each_command_and_at_hides_one(nt4: Host) -> None:
    path = batch(nt4, b"echo first\r\n@echo second\r\n")
    out = run_command(nt4, path).out
    assert f"{nt4.user_profile}>echo first\r\nfirst\r\n" in out
    assert "second\r\n" in out and ">@echo second" not in out and ">echo second" not in out


def test_output_redirection_and_2_to_1(nt4: Host) -> None:
    path = batch(nt4, b"@echo off\r\necho one> C:\\WINNT\\Temp\\r.txt\r\n"
                      b"nosuchprogram >> C:\\WINNT\\Temp\\r.txt 2>&1\r\ndel C:\\WINNT\\Temp\\gone.txt\r\n")
    nt4.fs.write(f"{TEMP}\\gone.txt", b"x")
    run_command(nt4, path)
    text = nt4.fs.read(f"{TEMP}\\r.txt").decode("cp437")
    assert text.startswith("one\r\n'nosuchprogram' is not recognized")
    assert nt4.fs.entry(f"{TEMP}\\gone.txt") is None


def test_exit_ends_cmd_with_its_code(nt4: Host) -> None:
    path = batch(nt4, b"@echo off\r\nexit 7\r\necho never> C:\\WINNT\\Temp\\never.txt\r\n")
    assert run_command(nt4, f"cmd /c {path}").exit_code == 7
    assert nt4.fs.entry(f"{TEMP}\\never.txt") is None


def test_missing_label_ends_the_batch(nt4: Host) -> None:
    path = batch(nt4, b"@echo off\r\ngoto nowhere\r\necho after> C:\\WINNT\\Temp\\after.txt\r\n")
    result = run_command(nt4, path)
    assert result.err == "The system cannot find the batch label specified - nowhere\r\n"
    assert nt4.fs.entry(f"{TEMP}\\after.txt") is None


def test_no_delayed_expansion_and_percent_escapes(nt4: Host) -> None:
    path = batch(nt4, b"@echo off\r\nset X=1\r\necho %X% !X! 100%% %0> C:\\WINNT\\Temp\\v.txt\r\n")
    run_command(nt4, path)
    assert nt4.fs.read(f"{TEMP}\\v.txt") == f"1 !X! 100% {path}\r\n".encode()


def test_goto_outside_a_batch_does_nothing(nt4: Host) -> None:
    result = run_command(nt4, "goto somewhere")
    assert (result.exit_code, result.err) == (0, "")
