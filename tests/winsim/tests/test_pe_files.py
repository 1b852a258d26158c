"""winsim.pe: real PE files whose VERSIONINFO pefile reads back, at the exact sizes the articles give."""

from __future__ import annotations

from pathlib import Path

import pefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winsim import pe


def _pefile_version(data: bytes) -> str:
    parsed = pefile.PE(data=data)
    for info_list in parsed.FileInfo:
        for info in info_list:
            for table in getattr(info, "StringTable", []):
                value = table.entries.get(b"FileVersion")
                if value is not None:
                    return str(value.decode())
    raise AssertionError("no FileVersion string")


@pytest.mark.parametrize(("name", "version", "size"), [
    ("Cscdll.dll", "5.1.2600.1276 (xpsp2.030926-1738)", 92160),
    ("Mrxsmb.sys", "5.1.2600.1276 (xpsp2.030926-1738)", 414976),
    ("Dfsrress.dll", "6.0.6001.22565 (vistasp1_ldr.091117-0945)", 2048),  # the smallest file in the seeds
    ("Dfsrs.exe", "6.1.7600.20578 (win7_ldr.091118-1759)", 4503040),
    ("Mpr.dll", "4.0.1381.33418", 60176),
])
def test_exact_size_and_version_read_back_by_pefile(name: str, version: str, size: int) -> None:
    data = pe.pe_bytes(name, version, size)
    assert len(data) == size
    assert data[:2] == b"MZ"
    assert _pefile_version(data) == version
    info = pe.read_version_info(data)
    assert info is not None
    assert info.file_version == version
    assert info.fixed_version == version.split(" ")[0]
    assert info.strings["OriginalFilename"] == name


def test_file_type_follows_the_extension() -> None:
    def file_type(name: str) -> int:
        parsed = pefile.PE(data=pe.pe_bytes(name, "6.0.6000.16386"))
        return int(parsed.VS_FIXEDFILEINFO[0].FileType)

    assert (file_type("srv2.sys"), file_type("dfsrs.exe"), file_type("dfsrress.dll")) == (3, 1, 2)


def test_extra_strings_and_latin1_text_survive() -> None:
    data = pe.pe_bytes("pkg.exe", "6.3.4.1", None, {"Installer Engine": "Update.exe", "Note": "caf\u00e9 \u00a9"})
    info = pe.read_version_info(data)
    assert info is not None
    assert info.strings["Installer Engine"] == "Update.exe"
    assert info.strings["Note"] == "caf\u00e9 \u00a9"
    assert info.strings["LegalCopyright"].startswith("\u00a9 Microsoft")


def test_size_below_the_smallest_image_is_refused() -> None:
    with pytest.raises(pe.PeBuildError, match="smallest image"):
        pe.build_pe("tiny.dll", "1.0.0.1", 512)


def test_cache_reuses_a_built_file_and_keys_on_size() -> None:
    first = pe.build_pe("cachetest.dll", "6.0.6002.18005 (lh_sp2rtm.090410-1830)", 4096)
    stamp = first.stat().st_mtime_ns
    again = pe.build_pe("cachetest.dll", "6.0.6002.18005 (lh_sp2rtm.090410-1830)", 4096)
    other = pe.build_pe("cachetest.dll", "6.0.6002.18005 (lh_sp2rtm.090410-1830)", 8192)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert other != first and other.stat().st_size == 8192


def test_builds_are_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = pe.pe_bytes("repro.dll", "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)", 43520)
    monkeypatch.setenv("WINSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pe, "_built", {})
    rebuilt = pe.pe_bytes("repro.dll", "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)", 43520)
    assert rebuilt == cached


@pytest.mark.parametrize("data", [b"", b"MZ" + b"\0" * 100, b"plain text file\r\n" * 50])
def test_non_pe_data_has_no_version(data: bytes) -> None:
    assert pe.read_version_info(data) is None


def test_numeric_version_rejects_non_versions() -> None:
    assert pe.numeric_version("5.1.2600.1106 (xpsp1.020828-1920)") == (5, 1, 2600, 1106)
    for bad in ("5.1.2600", "x.1.2.3", "1.2.3.70000"):
        with pytest.raises(ValueError):
            pe.numeric_version(bad)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(*[st.integers(0, 65535)] * 4), st.sampled_from(["", " (win7_rtm.090713-1255)", " (xpsp1qfe.x)"]))
def test_any_version_round_trips(parts: tuple[int, int, int, int], suffix: str) -> None:
    version = ".".join(map(str, parts)) + suffix
    info = pe.read_version_info(pe.pe_bytes("any.sys", version, 2048))
    assert info is not None
    assert info.file_version == version
    assert info.fixed_version == ".".join(map(str, parts))
