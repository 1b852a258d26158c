"""File facts over the admin shares of a real Samba host: size, last write time and the PE version, the
version read with a few ranged reads (counted bytes), never the whole file."""

from __future__ import annotations

import pytest
from smbhost import MPR_FIXED, MPR_SP6

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, NotFoundError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.base import PackageSource

MPR = r"C:\WINNT\system32\Mpr.dll"


@pytest.mark.parametrize(("which", "expected"), [("fixed_host", MPR_FIXED), ("unfixed_host", MPR_SP6)])
def test_mpr_size_date_and_version(request, connect, which, expected):
    host = request.getfixturevalue(which)
    transport = connect(host)
    facts = transport.file_facts([MPR])[MPR.casefold()]
    assert facts.exists
    assert (facts.size, facts.modified, facts.version) == (expected.size, expected.modified, expected.version)


def test_version_is_read_with_ranged_reads(fixed_host, connect):
    transport = connect(fixed_host)
    transport.file_facts([MPR])
    # Headers, resource directory and version block: a small fraction of the 60,176-byte file.
    assert 0 < transport.bytes_read <= 4096 < MPR_FIXED.size
    by_name = transport.requests_by_name()
    assert by_name["SMB_COM_READ_ANDX"] <= 3
    assert by_name["SMB_COM_NT_CREATE_ANDX"] == 1 and by_name["SMB_COM_CLOSE"] == 1


def test_system_root_path_goes_through_admin_share(fixed_host, connect):
    transport = connect(fixed_host)
    path = r"%SystemRoot%\system32\mpr.dll"
    facts = transport.file_facts([path])[path.casefold()]
    assert (facts.exists, facts.size) == (True, MPR_FIXED.size)


def test_missing_file_and_directory_do_not_exist(fixed_host, connect):
    transport = connect(fixed_host)
    paths = [r"C:\WINNT\system32\nothere.dll", r"C:\WINNT\nodir\x.dll", r"C:\WINNT\system32"]
    facts = transport.file_facts(paths)
    assert [facts[p.casefold()].exists for p in paths] == [False, False, False]


def test_file_without_version_resource(fixed_host, connect):
    (fixed_host.system_root / "readme.txt").write_bytes(b"MZ but not a PE file" + b"\0" * 200)
    (fixed_host.system_root / "notes.txt").write_bytes(b"plain text")
    transport = connect(fixed_host)
    facts = transport.file_facts([r"C:\WINNT\readme.txt", r"C:\WINNT\notes.txt"])
    assert facts[r"c:\winnt\readme.txt"].exists and facts[r"c:\winnt\readme.txt"].version is None
    assert facts[r"c:\winnt\notes.txt"].size == 10 and facts[r"c:\winnt\notes.txt"].version is None


def test_missing_share_is_not_found(fixed_host, connect):
    transport = connect(fixed_host)
    with pytest.raises(NotFoundError, match="share") as caught:
        transport.file_facts([r"D:\WINNT\system32\Mpr.dll"])
    assert fixed_host.host in str(caught.value)


@pytest.mark.parametrize("path", ["mpr.dll", r"\\server\share\mpr.dll", r"C:\WINNT\..\x.dll", "C:\\a*b"])
def test_bad_path_fails_before_any_request(fixed_host, connect, path):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError, match=r"files\[0\]"):
        transport.file_facts([path])
    assert transport.request_count == 0


def test_stage_package_from_bytes_and_from_a_file(fixed_host, connect, tmp_path):
    transport = connect(fixed_host)
    package = bytes(range(256)) * 300  # 76,800 bytes: several SMB writes
    staged = transport.stage_package(PackageSource(data=package), r"C:\WINNT\Temp\Q253729i.exe")
    assert (staged.path, staged.method, staged.size, staged.uploaded) == (
        r"C:\WINNT\Temp\Q253729i.exe", "smb", len(package), True)
    assert (fixed_host.system_root / "Temp" / "Q253729i.exe").read_bytes() == package
    small = b"MZ" + b"\0" * 100
    transport.stage_package(PackageSource(data=small), r"%SystemRoot%\Temp\other.exe")
    assert (fixed_host.system_root / "Temp" / "other.exe").read_bytes() == small
    # A package already on the host is checked, not copied; a UNC path is run as it is.
    assert transport.stage_package(PackageSource(host_path=r"C:\WINNT\Temp\other.exe"), "").path == (
        r"C:\WINNT\Temp\other.exe")
    assert transport.stage_package(PackageSource(unc_path=r"\\fs01\hotfixes\Q253729i.exe"), "").path == (
        r"\\fs01\hotfixes\Q253729i.exe")
    # delete_file removes what was staged; a file already gone is no error.
    for name in ("Q253729i.exe", "other.exe"):
        transport.delete_file(f"%SystemRoot%\\Temp\\{name}")
        transport.delete_file(f"%SystemRoot%\\Temp\\{name}")
        assert not (fixed_host.system_root / "Temp" / name).exists()


def test_stage_package_errors(fixed_host, connect):
    transport = connect(fixed_host)
    with pytest.raises(ArgumentError, match="destination"):
        transport.stage_package(PackageSource(data=b"x"), "Temp\\x.exe")
    with pytest.raises(ArgumentError, match="source"):
        transport.stage_package(PackageSource(unc_path="fs01\\x.exe"), "")
    with pytest.raises(ArgumentError, match="source"):
        transport.stage_package(PackageSource(), r"C:\WINNT\Temp\x.exe")
    assert transport.request_count == 0
    with pytest.raises(NotFoundError, match="share"):
        transport.stage_package(PackageSource(data=b"x"), r"E:\x.exe")
    with pytest.raises(NotFoundError, match="does not exist"):
        transport.stage_package(PackageSource(data=b"x"), r"C:\WINNT\nodir\x.exe")
    with pytest.raises(NotFoundError, match="does not exist on the host"):
        transport.stage_package(PackageSource(host_path=r"C:\WINNT\Temp\absent.exe"), "")
