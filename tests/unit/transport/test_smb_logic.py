"""The SMB transport's pure parts: inventory settings, the batch file and its errorlevel ladder, OS facts from
registry values, registry data encoding, paths to shares, the shutdown request, and the ranged PE reader on
real mingw-built PE files."""

from __future__ import annotations

import datetime
import re
import struct

import pytest
from impacket.dcerpc.v5.dtypes import NULL

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts, RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, TransportError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb import command, pe
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.registry import (
    BaseInitiateSystemShutdown,
    decode,
    encode,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.settings import settings_from_vars
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import (
    filetime,
    os_facts_from,
    service_pack,
    share_path,
)
from winsim.pe import pe_bytes

SECRET = "S3cret-Value-77"
BASE = {"inventory_hostname": "nt4", "ansible_user": "Administrator", "ansible_password": SECRET}


# --- settings ---------------------------------------------------------------------------------------

def test_settings_defaults_and_overrides():
    s = settings_from_vars(BASE)
    assert (s.host, s.port, s.netbios_name, s.domain, s.timeout) == ("nt4", 445, "*SMBSERVER", "", 60.0)
    s = settings_from_vars({**BASE, "ansible_host": "10.0.0.4", "ansible_user": "CORP\\admin",
                            "kbfix_smb_port": "139", "kbfix_smb_netbios_name": "NT4TSE", "kbfix_smb_timeout": 5})
    assert (s.host, s.username, s.domain, s.port, s.netbios_name, s.timeout) == (
        "10.0.0.4", "admin", "CORP", 139, "NT4TSE", 5.0)
    assert settings_from_vars({**BASE, "ansible_user": "admin@CORP"}).domain == "CORP"
    # The session kind follows the port unless given: NetBIOS framing on a forwarded port is possible.
    assert (s.session, settings_from_vars(BASE).session) == ("netbios", "direct")
    assert settings_from_vars({**BASE, "kbfix_smb_port": 1139, "kbfix_smb_session": "NetBIOS"}).session == "netbios"
    assert SECRET not in repr(settings_from_vars(BASE))


@pytest.mark.parametrize(("changes", "field"), [
    ({"ansible_user": None}, "ansible_user"),
    ({"ansible_password": None}, "ansible_password"),
    ({"ansible_password": 1234}, "ansible_password"),
    ({"inventory_hostname": None}, "inventory_hostname"),
    ({"kbfix_smb_port": "smb"}, "kbfix_smb_port"),
    ({"kbfix_smb_port": 70000}, "kbfix_smb_port"),
    ({"kbfix_smb_port": 44.5}, "kbfix_smb_port"),
    ({"kbfix_smb_port": True}, "kbfix_smb_port"),
    ({"kbfix_smb_netbios_name": "A-NAME-LONGER-THAN-15"}, "kbfix_smb_netbios_name"),
    ({"kbfix_smb_netbios_name": "bad.name"}, "kbfix_smb_netbios_name"),
    ({"kbfix_smb_timeout": 0}, "kbfix_smb_timeout"),
    ({"kbfix_smb_retries": 1.5}, "kbfix_smb_retries"),
    ({"ansible_user": "CORP\\"}, "ansible_user"),
    ({"kbfix_smb_session": "tcp"}, "kbfix_smb_session"),
    ({"kbfix_smb_port": 139, "kbfix_smb_session": "direct"}, "kbfix_smb_session"),
])
def test_settings_errors_name_the_variable(changes, field):
    with pytest.raises(ArgumentError) as caught:
        settings_from_vars({**BASE, **changes})
    assert caught.value.field == field
    assert SECRET not in str(caught.value)


# --- paths ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "expected"), [
    (r"C:\WINNT\system32\Mpr.dll", ("C$", r"WINNT\system32\Mpr.dll")),
    (r"d:\hotfix\Q253729i.exe", ("D$", r"hotfix\Q253729i.exe")),
    (r"%SystemRoot%\system32\mpr.dll", ("ADMIN$", r"system32\mpr.dll")),
])
def test_share_path(path, expected):
    assert share_path(path) == expected


# --- the batch file ---------------------------------------------------------------------------------

def _ladder_outcome(batch: str, exit_code: int) -> str:
    """Walk the generated ladder with cmd.exe's rule: ``if errorlevel N`` is true when the code is >= N."""
    lines = batch.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("if errorlevel"))
    labels = {line[1:]: i for i, line in enumerate(lines) if line.startswith(":")}
    i = start
    while True:
        line = lines[i]
        match = re.fullmatch(r"if errorlevel (-?\d+) goto (\w+)", line)
        if match:
            i = labels[match.group(2)] + 1 if exit_code >= int(match.group(1)) else i + 1
            continue
        if line.startswith("goto "):
            i = labels[line[5:]] + 1
            continue
        match = re.fullmatch(r'> "[^"]+" echo (-?\w+)', line)
        assert match, line
        return match.group(1)


def test_batch_file_layout():
    body = command.batch_file('"C:\\x y\\Q253729i.exe" -m -q -z', r"%SystemRoot%\Temp\k.out",
                              r"%SystemRoot%\Temp\k.res", [3010]).decode("ascii")
    lines = body.split("\r\n")
    assert lines[:2] == ["@echo off", '"C:\\x y\\Q253729i.exe" -m -q -z > "%SystemRoot%\\Temp\\k.out" 2>&1']
    assert body.endswith(":end\r\n")


@pytest.mark.parametrize("success_codes", [None, [0], [3010], [1, 2, 3010, 1641]])
def test_ladder_writes_exact_code_only_for_listed_codes(success_codes):
    body = command.batch_file("setup.exe", "o", "r", success_codes).decode("ascii")
    listed = {0, *(success_codes or [])}
    for code in [-1073741819, -1, 0, 1, 2, 3, 1640, 1641, 1642, 3009, 3010, 3011, 2 ** 31 - 1]:
        assert _ladder_outcome(body, code) == (str(code) if code in listed else "other"), code


def test_ladder_identifies_expected_codes_signed_as_cmd_keeps_them():
    # An installer's table may list HRESULTs unsigned (0x80240017) or signed; cmd's errorlevel is signed.
    body = command.batch_file("setup.exe", "o", "r", None, [0x80240017, -2145124329 + 1, 3010]).decode("ascii")
    listed = {0, 3010, -2145124329, -2145124328}
    for code in [-2145124330, *listed, -1, 1, 3011]:
        assert _ladder_outcome(body, code) == (str(code) if code in listed else "other"), code
    with pytest.raises(ArgumentError, match=r"expected_codes\[0\]"):
        command.exit_codes(None, [2 ** 32])


def test_batch_line_escapes_percent_and_rejects_what_it_cannot_keep():
    assert command.batch_line('echo 100% "a%b"') == 'echo 100%% "a%%b"'
    for bad in ["a\r\nformat c:", "a\x00", '"unbalanced', "   "]:
        with pytest.raises(ArgumentError):
            command.batch_line(bad)
    with pytest.raises(ArgumentError, match=r"success_codes\[1\]"):
        command.exit_codes([0, True])
    with pytest.raises(ArgumentError, match="ASCII"):
        command.batch_file("echo é", "o", "r", None)


def test_parse_result():
    assert command.parse_result("3010 \r\n") == command.Finished(3010)
    assert command.parse_result("-2145124329\r\n") == command.Finished(-2145124329)
    assert command.parse_result("other\r\n") == command.Finished(None)  # none of the listed codes
    assert command.parse_result("30") is None  # no line end yet: still being written
    with pytest.raises(ValueError, match="unexpected"):
        command.parse_result("garbage\r\n")


# --- OS facts ---------------------------------------------------------------------------------------

def _s(text: str) -> RegistryValue:
    return RegistryValue("string", text)


NT4_CURRENT = {"CurrentVersion": _s("4.0"), "CurrentBuildNumber": _s("1381"), "CSDVersion": _s("Service Pack 6"),
               "SystemRoot": _s("C:\\WINNT")}
NT4_OPTIONS = {"ProductType": _s("ServerNT"), "ProductSuite": RegistryValue("multistring", ["Terminal Server"])}
X86 = {"PROCESSOR_ARCHITECTURE": _s("x86")}


def test_os_facts_of_nt4_tse():
    assert os_facts_from("nt4", NT4_CURRENT, NT4_OPTIONS, X86) == OsFacts(
        version="4.0.1381", service_pack=6, architecture="x86", product_type=3,
        caption="Microsoft Windows NT Server 4.0 Terminal Server (Service Pack 6)", system_root="C:\\WINNT")


def test_os_facts_of_workstation_without_service_pack():
    current = {**NT4_CURRENT, "CSDVersion": None}
    facts = os_facts_from("ws", current, {"ProductType": _s("WinNT"), "ProductSuite": None}, X86)
    assert (facts.product_type, facts.service_pack, facts.caption) == (1, 0, "Microsoft Windows NT Workstation 4.0")
    assert os_facts_from("dc", NT4_CURRENT, {"ProductType": _s("LanmanNT")}, X86).product_type == 2


@pytest.mark.parametrize(("current", "options", "env", "message"), [
    ({**NT4_CURRENT, "CurrentBuildNumber": None}, NT4_OPTIONS, X86, "CurrentBuildNumber is 'missing'"),
    ({**NT4_CURRENT, "CurrentVersion": _s("6.1"), "CurrentBuildNumber": None}, NT4_OPTIONS, X86, "Windows 6.1"),
    ({**NT4_CURRENT, "CurrentVersion": None}, NT4_OPTIONS, X86, "CurrentVersion is 'missing'"),
    (NT4_CURRENT, {"ProductType": None}, X86, "ProductType"),
    (NT4_CURRENT, NT4_OPTIONS, {"PROCESSOR_ARCHITECTURE": None}, "PROCESSOR_ARCHITECTURE"),
    (NT4_CURRENT, NT4_OPTIONS, {"PROCESSOR_ARCHITECTURE": _s("ALPHA")}, "PROCESSOR_ARCHITECTURE"),
    ({**NT4_CURRENT, "SystemRoot": None}, NT4_OPTIONS, X86, "SystemRoot"),
])
def test_os_facts_name_what_is_missing(current, options, env, message):
    with pytest.raises(TransportError, match=message):
        os_facts_from("nt4", current, options, env)


def test_service_pack_and_filetime():
    assert [service_pack(t) for t in ["Service Pack 6", "Service Pack 6a", "", "Beta"]] == [6, 6, 0, 0]
    when = datetime.datetime(2000, 2, 8, 19, 27, 0, 123456, tzinfo=datetime.UTC)
    # FILETIME: 100 ns units since 1601-01-01 (11,644,473,600 s before the Unix epoch); no float rounding.
    ticks = (int(when.timestamp()) + 11644473600) * 10**7 + 1234567
    assert filetime(ticks) == when


# --- registry data ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    RegistryValue("string", "Hello"), RegistryValue("expandstring", "%SystemRoot%\\x"),
    RegistryValue("multistring", ["a", "b"]), RegistryValue("multistring", []), RegistryValue("dword", 2 ** 32 - 1),
    RegistryValue("qword", 2 ** 64 - 1), RegistryValue("binary", b"\0\xff"), RegistryValue("none", None),
])
def test_encode_decode_round_trip(value):
    code, raw = encode(value)
    assert decode(code, raw, "v") == value


def test_decode_tolerates_missing_terminators_and_rejects_unknown_types():
    assert decode(1, "abc".encode("utf-16-le"), "v") == _s("abc")
    assert decode(7, "a\0b".encode("utf-16-le"), "v") == RegistryValue("multistring", ["a", "b"])
    with pytest.raises(Exception, match="registry type 8"):
        decode(8, b"", r"HKLM\X\v")


def test_shutdown_request_encoding():
    request = BaseInitiateSystemShutdown()
    request["ServerName"] = NULL
    request["lpMessage"] = "restart\0"
    request["dwTimeout"] = 30
    request["bForceAppsClosed"] = 1
    request["bRebootAfterShutdown"] = 1
    data = request.getData()
    assert request.opnum == 24
    assert "restart".encode("utf-16-le") in data
    assert data.endswith(struct.pack("<IBB", 30, 1, 1))


# --- the PE reader ----------------------------------------------------------------------------------

class _Reads:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset:offset + length]


@pytest.mark.parametrize(("version", "size"), [("4.0.1381.33418", 60176), ("5.1.2600.1276 (xpsp2.030422-1633)", 0)])
def test_version_from_a_real_pe_with_few_small_reads(version, size):
    data = pe_bytes("Mpr.dll", version, size or None)
    reads = _Reads(data)
    block = pe.version_block(reads)
    assert block is not None and pe.file_version(block) == version
    assert len(reads.reads) <= 3 and sum(n for _, n in reads.reads) <= 3072


def test_not_a_pe():
    with pytest.raises(pe.PeFormatError, match="MZ"):
        pe.version_block(_Reads(b"plain text" * 10))
    with pytest.raises(pe.PeFormatError):
        pe.version_block(_Reads(b"MZ" + b"\0" * 58 + struct.pack("<I", 4000)))
