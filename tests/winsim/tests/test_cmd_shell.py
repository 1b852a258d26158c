"""winsim.cmd: cmd.exe semantics (parsing, expansion, redirection, built-ins, processes and stdin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from winsim.cmd import KILLED, argv, parse_redirections, run_command, split_operators
from winsim.machine import Host

NOT_RECOGNIZED = "'{}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"


@pytest.fixture
def xp(tmp_path: Path) -> Host:
    return Host.create("xpbox", "xp-sp1-x86", tmp_path / "xp.json", share_root=str(tmp_path / "shares"))


@pytest.fixture
def vista(tmp_path: Path) -> Host:
    return Host.create("vistabox", "vista-sp1-x86", tmp_path / "vista.json")


def test_echo_forms(xp: Host) -> None:
    assert run_command(xp, "echo hello   world").out == "hello   world\r\n"
    assert run_command(xp, "echo.").out == "\r\n"
    assert run_command(xp, "echo").out == "ECHO is on.\r\n"
    assert run_command(xp, 'echo "quoted" ^& escaped').out == '"quoted" & escaped\r\n'


def test_redirection_keeps_the_space_before_the_operator(xp: Host) -> None:
    result = run_command(xp, "echo abc > C:\\a.txt & echo def>C:\\b.txt & echo ghi >> C:\\a.txt")
    assert result.exit_code == 0 and result.out == ""
    # Both blanks stay: the one before ">" and the one before "&" (cmd.exe's classic trailing-space gotcha).
    assert xp.fs.read("C:\\a.txt") == b"abc  \r\nghi \r\n"
    assert xp.fs.read("C:\\b.txt") == b"def \r\n"


def test_handle_redirections(xp: Host) -> None:
    result = run_command(xp, "nosuch 2>&1")
    assert result.out == NOT_RECOGNIZED.format("nosuch") and result.err == ""
    result = run_command(xp, "echo to-err 1>&2")
    assert (result.out, result.err) == ("", "to-err \r\n")
    result = run_command(xp, "nosuch 2>nul & echo after")
    assert (result.out, result.err) == ("after\r\n", "")
    result = run_command(xp, "nosuch 2> C:\\err.txt")
    assert xp.fs.read("C:\\err.txt").decode() == NOT_RECOGNIZED.format("nosuch")
    assert run_command(xp, "echo a2>C:\\c.txt").out == ""
    assert xp.fs.read("C:\\c.txt") == b"a2\r\n"  # a digit glued to text is not a handle


def test_variables_expand_once_per_line(xp: Host) -> None:
    assert run_command(xp, "echo %COMPUTERNAME% %windir% %NOPE%").out == "XPBOX C:\\WINDOWS %NOPE%\r\n"
    # %ERRORLEVEL% is expanded before anything on the line runs, as in cmd.exe.
    assert run_command(xp, "nosuch 2>nul & echo %ERRORLEVEL%").out == "0\r\n"
    assert run_command(xp, "set X=1 & echo [%X%]").out == "[%X%]\r\n"
    assert run_command(xp, "cmd /c exit 5 & cmd /c echo %ERRORLEVEL%").out == "0\r\n"


def test_conditional_operators(xp: Host) -> None:
    assert run_command(xp, "echo a&& echo b").out == "a\r\nb\r\n"
    assert run_command(xp, "echo a && echo b").out == "a \r\nb\r\n"
    assert run_command(xp, "nosuch 2>nul && echo b").out == ""
    result = run_command(xp, "nosuch 2>nul || echo recovered")
    assert (result.out, result.exit_code) == ("recovered\r\n", 0)
    assert run_command(xp, "echo a|| echo b").out == "a\r\n"


def test_exit_codes(xp: Host) -> None:
    assert run_command(xp, "exit /b 7").exit_code == 7
    assert run_command(xp, "exit 3").exit_code == 3
    assert run_command(xp, "echo x& exit /b 2 & echo never").out == "x\r\n"
    result = run_command(xp, "nosuch")
    assert (result.exit_code, result.err) == (1, NOT_RECOGNIZED.format("nosuch"))
    assert run_command(xp, "cmd /c exit 9").exit_code == 9


def test_type_and_its_errors(xp: Host) -> None:
    xp.fs.write("C:\\data.bin", b"\x00\x01binary\xff")
    assert run_command(xp, "type C:\\data.bin").stdout == b"\x00\x01binary\xff"
    result = run_command(xp, "type C:\\missing.txt")
    assert (result.exit_code, result.err) == (1, "The system cannot find the file specified.\r\n")
    assert run_command(xp, "type C:\\nodir\\x").err == "The system cannot find the path specified.\r\n"
    assert run_command(xp, "type C:\\WINDOWS").err == "Access is denied.\r\n"


def test_del_mkdir_rmdir_copy_cd(xp: Host) -> None:
    assert run_command(xp, "mkdir C:\\work\\deep\\er && cd C:\\work\\deep && cd").out == "C:\\work\\deep\r\n"
    result = run_command(xp, "md C:\\work")
    assert (result.exit_code, result.err) == (1, "A subdirectory or file C:\\work already exists.\r\n")
    run_command(xp, "echo one> C:\\work\\a.b64 & echo two> C:\\work\\b.b64 & echo three> C:\\work\\c.txt")
    assert run_command(xp, "copy C:\\work\\c.txt C:\\work\\deep").out == "        1 file(s) copied.\r\n"
    assert xp.fs.read("C:\\work\\deep\\c.txt") == b"three\r\n"
    result = run_command(xp, "del /q C:\\work\\*.b64")
    assert result.exit_code == 0 and xp.fs.entry("C:\\work\\a.b64") is None and xp.fs.entry("C:\\work\\c.txt")
    result = run_command(xp, "del C:\\work\\gone.txt")
    assert (result.exit_code, result.err) == (0, "Could Not Find C:\\work\\gone.txt\r\n")
    run_command(xp, "echo x> C:\\work\\deep\\er\\x.txt")
    result = run_command(xp, "del C:\\work\\deep\\er", stdin=b"n\r\n")
    assert result.out == "C:\\work\\deep\\er\\*, Are you sure (Y/N)? \r\n" and xp.fs.exists("C:\\work\\deep\\er\\x.txt")
    run_command(xp, "del C:\\work\\deep\\er", stdin=b"y\r\n")
    assert not xp.fs.exists("C:\\work\\deep\\er\\x.txt") and xp.fs.is_dir("C:\\work\\deep\\er")
    assert run_command(xp, "rd C:\\work").exit_code != 0
    assert run_command(xp, "rd /s /q C:\\work").exit_code == 0 and not xp.fs.exists("C:\\work")


def test_copy_prompts_before_overwriting(xp: Host) -> None:
    run_command(xp, "echo old> C:\\x.txt& echo new> C:\\y.txt")
    result = run_command(xp, "copy C:\\y.txt C:\\x.txt", stdin=b"n\r\n")
    assert "Overwrite C:\\x.txt? (Yes/No/All): " in result.out and xp.fs.read("C:\\x.txt") == b"old\r\n"
    run_command(xp, "copy /y C:\\y.txt C:\\x.txt")
    assert xp.fs.read("C:\\x.txt") == b"new\r\n"


def test_set_and_set_p(xp: Host) -> None:
    assert run_command(xp, "set USERN").out == "USERNAME=Administrator\r\n"
    result = run_command(xp, "set NOTHINGLIKETHIS")
    assert (result.exit_code, result.err) == (1, "Environment variable NOTHINGLIKETHIS not defined\r\n")
    result = run_command(xp, "set /p ANSWER=Name? & cmd /c echo got %ANSWER%", stdin=b"Bob\r\n")
    assert result.out == "Name? got Bob\r\n"


def test_numbered_handles(xp: Host) -> None:
    # "echo 1> f" redirects handle 1 (the file gets "ECHO is on."); handle 3 is not stdout at all.
    assert run_command(xp, "echo 1> C:\\one.txt").out == ""
    assert xp.fs.read("C:\\one.txt") == b"ECHO is on.\r\n"
    assert run_command(xp, "echo 3> C:\\three.txt").out == "ECHO is on.\r\n"
    assert xp.fs.read("C:\\three.txt") == b""


def test_ver_and_banners(xp: Host, vista: Host, tmp_path: Path) -> None:
    assert run_command(xp, "ver").out == "\r\nMicrosoft Windows XP [Version 5.1.2600]\r\n"
    assert run_command(vista, "ver").out == "\r\nMicrosoft Windows [Version 6.0.6001]\r\n"
    nt4 = Host.create("nt4", "nt4-tse-sp6-x86", tmp_path / "nt4.json")
    assert run_command(nt4, "ver").out == "\r\nWindows NT Version 4.0  \r\n"


def test_if(xp: Host) -> None:
    assert run_command(xp, "if exist C:\\WINDOWS\\system32\\cscdll.dll echo yes").out == "yes\r\n"
    assert run_command(xp, "if not exist C:\\nothing echo missing").out == "missing\r\n"
    assert run_command(xp, "nosuch 2>nul & if errorlevel 1 echo failed").out == "failed\r\n"
    assert run_command(xp, "if /i ABC==abc echo same").out == "same\r\n"


def test_dir(xp: Host) -> None:
    assert run_command(xp, "dir /b C:\\WINDOWS\\system32\\drivers").out == "mrxsmb.sys\r\nrdbss.sys\r\n"
    listing = run_command(xp, "dir C:\\WINDOWS\\system32\\drivers").out
    assert " Directory of C:\\WINDOWS\\system32\\drivers" in listing and "410,368 mrxsmb.sys" in listing
    result = run_command(xp, "dir C:\\WINDOWS\\*.none")
    assert (result.exit_code, result.err) == (1, "File Not Found\r\n")


def test_pipes_and_find(xp: Host) -> None:
    key = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"
    result = run_command(xp, f"reg query {key} | find \"Size\"")
    assert result.out == "    Size\tREG_DWORD\t0x1\r\n" and result.exit_code == 0
    assert run_command(xp, "echo abc | find \"zzz\"").exit_code == 1
    assert run_command(xp, "echo Alpha | findstr /i alpha").out == "Alpha \r\n"


def test_line_length_limit(xp: Host, tmp_path: Path) -> None:
    result = run_command(xp, "echo " + "x" * 8200)
    assert (result.exit_code, result.err) == (1, "The input line is too long.\r\n")
    assert run_command(xp, "echo " + "x" * 8000).exit_code == 0
    nt4 = Host.create("nt4", "nt4-tse-sp6-x86", tmp_path / "nt4.json")
    assert run_command(nt4, "echo " + "x" * 3000).err == "The input line is too long.\r\n"


def test_interactive_cmd_reads_stdin(xp: Host) -> None:
    process = xp.start_process("cmd", [], None)
    out, _, code = process.read()
    assert code is None
    assert out.decode().startswith("Microsoft Windows XP [Version 5.1.2600]\r\n(C) Copyright 1985-2001")
    assert out.decode().endswith("C:\\Documents and Settings\\Administrator>")
    process.write_stdin(b"echo one\r\n", False)
    out, _, code = process.read()
    assert code is None and out == b"echo one\r\none\r\n\r\nC:\\Documents and Settings\\Administrator>"
    process.write_stdin(b"exit 4\r\n", True)
    assert process.read()[2] == 4


def test_stdin_split_across_writes(xp: Host) -> None:
    process = xp.start_process("set", ["/p", "V=?", "&", "cmd", "/c", "echo", "[%V%]"], None)
    process.write_stdin(b"hel", False)
    assert process.read() == (b"? ", b"", None)
    process.write_stdin(b"lo\r\n", False)
    out, _, code = process.read()
    assert (out, code) == (b"[hello]\r\n", 0)


def test_cmd_c_as_the_winrs_command(xp: Host) -> None:
    # A client that sends "cmd" with "/c ..." gets a second cmd.exe: the outer one splits on "&" first.
    process = xp.start_process("cmd", ["/c", "echo", "a", "&", "echo", "b"], None)
    assert process.read() == (b"a\r\nb\r\n", b"", 0)
    process = xp.start_process("cmd", ["/c", '"echo a & echo b"'], None)
    assert process.read() == (b"a \r\nb\r\n", b"", 0)


def test_terminate(xp: Host) -> None:
    process = xp.start_process("cmd", [], None)
    process.terminate()
    assert process.read()[2] == KILLED
    process.write_stdin(b"echo late\r\n", True)  # ignored once the process is gone
    assert process.read() == (b"", b"", KILLED)


def test_working_directory(xp: Host) -> None:
    process = xp.start_process("cd", [], "C:\\WINDOWS\\Temp")
    assert process.read()[0] == b"C:\\WINDOWS\\Temp\r\n"
    process = xp.start_process("cd", [], "C:\\does\\not\\exist")
    assert process.read()[0] == b"C:\\Documents and Settings\\Administrator\r\n"


def test_system_programs_by_full_path(xp: Host) -> None:
    assert run_command(xp, "C:\\WINDOWS\\system32\\cmd.exe /c echo hi").out == "hi\r\n"
    assert run_command(xp, '"%SystemRoot%\\system32\\hostname.exe"').out == "xpbox\r\n"
    assert run_command(xp, "%windir%\\System32\\Wbem\\wmic os get BuildNumber").exit_code == 0
    assert "is not recognized" in run_command(xp, "C:\\WINDOWS\\system32\\certutil.exe").err  # not on XP
    assert "is not recognized" in run_command(xp, "C:\\Temp\\hostname.exe").err


def test_unsupported_programs_are_refused_honestly(xp: Host) -> None:
    result = run_command(xp, "C:\\WINDOWS\\system32\\kernel32.dll")
    assert result.exit_code == 1 and result.err.startswith("winsim: cannot run")
    run_command(xp, "echo WScript.Echo 1> C:\\x.vbs")  # batch files run (test_cmd_batch.py), scripts do not
    assert run_command(xp, "C:\\x.vbs").err.startswith("winsim: cannot run")
    assert run_command(xp, "set /a 1+1").err == "winsim: set /a is not simulated\r\n"


@pytest.mark.parametrize(("line", "expected"), [
    ("a & b && c || d", [("", "a "), ("&", " b "), ("&&", " c "), ("||", " d")]),
    ('echo "x & y" ^& z', [("", 'echo "x & y" ^& z')]),
    ("echo x 2>&1 & echo y", [("", "echo x 2>&1 "), ("&", " echo y")]),
])
def test_split_operators(line: str, expected: list[tuple[str, str]]) -> None:
    assert split_operators(line) == expected


def test_parse_redirections_and_argv() -> None:
    assert parse_redirections('echo hi > "C:\\a b.txt" 2>nul') == ("echo hi  ", [("1>", "C:\\a b.txt"), ("2>", "nul")])
    assert argv('a "b c" d\\"e "f\\\\" g') == ["a", "b c", 'd"e', "f\\", "g"]
