# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file's version from its PE VERSIONINFO resource, reading only the bytes that lead to it.

NT 4.0 has no WMI, so nothing on the host reports a file's version: the controller reads it over the share,
the way Explorer's Version tab (GetFileVersionInfo) does. Instead of the whole file (a 60 KB Mpr.dll is 60 KB
over a slow link, a driver more) it reads, with ranged reads:

1. the DOS header, PE header, optional header and section table (one read of the first 1 KB, more only when
   the headers are larger);
2. the start of the resource section, where the resource directory tree lives (RT_VERSION = type 16, first
   name, first language, then its data entry);
3. the version block itself (VS_VERSIONINFO), unless it already lay in what step 2 read.

Structures: Microsoft PE/COFF specification (IMAGE_DOS_HEADER.e_lfanew at 0x3C, the resource data directory
is entry 2, IMAGE_RESOURCE_DIRECTORY(_ENTRY), IMAGE_RESOURCE_DATA_ENTRY) and the VS_VERSIONINFO / StringFileInfo
layout of the Win32 "Version Information" reference (docs/transport.md lists the sources).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

ReadAt = Callable[[int, int], bytes]  # (offset, length) -> bytes (fewer at end of file)

_HEADER_READ = 1024
_RSRC_READ = 1024
RT_VERSION = 16
_FIXED_SIGNATURE = 0xFEEF04BD


class PeFormatError(ValueError):
    """The file is not a PE image, or its resources are damaged."""


class _Ranged:
    """Reads through ``read_at`` and remembers what it has, so overlapping requests cost nothing."""

    def __init__(self, read_at: ReadAt) -> None:
        self._read_at = read_at
        self._chunks: list[tuple[int, bytes]] = []

    def get(self, offset: int, length: int, *, at_least: int | None = None) -> bytes:
        for start, data in self._chunks:
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start:offset - start + length]
        data = self._read_at(offset, max(length, at_least or 0))
        self._chunks.append((offset, data))
        if len(data) < length:
            raise PeFormatError(f"the file ends at {offset + len(data)}, inside a structure at {offset}")
        return data[:length]


def _u16(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", data, at)[0])


def _u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def version_block(read_at: ReadAt) -> bytes | None:
    """The raw VS_VERSIONINFO of a PE file, None when it has no version resource."""
    ranged = _Ranged(read_at)
    dos = ranged.get(0, 64, at_least=_HEADER_READ)
    if dos[:2] != b"MZ":
        raise PeFormatError("no MZ signature")
    pe_at = _u32(dos, 0x3C)
    coff = ranged.get(pe_at, 24, at_least=_HEADER_READ)
    if coff[:4] != b"PE\0\0":
        raise PeFormatError("no PE signature")
    sections, optional_size = _u16(coff, 6), _u16(coff, 20)
    optional = ranged.get(pe_at + 24, optional_size)
    magic = _u16(optional, 0)
    if magic == 0x10B:
        directories_at = 96  # PE32
    elif magic == 0x20B:
        directories_at = 112  # PE32+
    else:
        raise PeFormatError(f"unknown optional header magic 0x{magic:x}")
    if _u32(optional, directories_at - 4) <= 2 or optional_size < directories_at + 24:
        return None  # fewer than three data directories: no resource directory
    rsrc_rva, rsrc_size = struct.unpack_from("<II", optional, directories_at + 16)
    if not rsrc_rva or not rsrc_size:
        return None
    table = ranged.get(pe_at + 24 + optional_size, 40 * sections)

    def file_offset(rva: int) -> int:
        for i in range(sections):
            virtual_size, virtual_address, raw_size, raw_at = struct.unpack_from("<IIII", table, 40 * i + 8)
            if virtual_address <= rva < virtual_address + max(virtual_size, raw_size):
                return int(raw_at + rva - virtual_address)
        raise PeFormatError(f"RVA 0x{rva:x} lies in no section")

    base = file_offset(rsrc_rva)

    def directory(at: int) -> list[tuple[int, int]]:
        # IMAGE_RESOURCE_DIRECTORY: 16 bytes, then named and id entries of 8 bytes each.
        header = ranged.get(base + at, 16, at_least=min(_RSRC_READ, rsrc_size))
        count = _u16(header, 12) + _u16(header, 14)
        entries = ranged.get(base + at + 16, 8 * count)
        return [struct.unpack_from("<II", entries, 8 * i) for i in range(count)]

    def subdirectory(entry_target: int) -> int:
        if not entry_target & 0x80000000:
            raise PeFormatError("resource tree: a data entry where a directory was expected")
        return entry_target & 0x7FFFFFFF

    version = [target for name, target in directory(0) if name == RT_VERSION]
    if not version:
        return None
    names = directory(subdirectory(version[0]))
    if not names:
        return None
    languages = directory(subdirectory(names[0][1]))
    if not languages or languages[0][1] & 0x80000000:
        raise PeFormatError("resource tree: the version resource has no data entry")
    data_rva, data_size = struct.unpack_from("<II", ranged.get(base + languages[0][1], 16))
    return ranged.get(file_offset(data_rva), data_size)


def _aligned(at: int) -> int:
    return (at + 3) & ~3


def _block(data: bytes, at: int) -> tuple[int, int, int, str, int]:
    """A version-info block header: (length, value length, type, key, value offset)."""
    length, value_length, type_ = struct.unpack_from("<HHH", data, at)
    key_end = at + 6
    while key_end + 1 < len(data) and data[key_end:key_end + 2] != b"\0\0":
        key_end += 2
    key = data[at + 6:key_end].decode("utf-16-le", "replace")
    return length, value_length, type_, key, _aligned(key_end + 2)


def file_version(block: bytes) -> str | None:
    """The FileVersion string (first string table), as Windows shows it; else the numeric version of
    VS_FIXEDFILEINFO (dwFileVersionMS/LS)."""
    length, value_length, _kind, key, value_at = _block(block, 0)
    if key != "VS_VERSION_INFO":
        raise PeFormatError(f"version resource starts with {key!r}, not VS_VERSION_INFO")
    end = min(length, len(block))
    fixed: str | None = None
    if value_length >= 52 and _u32(block, value_at) == _FIXED_SIGNATURE:
        ms, ls = _u32(block, value_at + 8), _u32(block, value_at + 12)
        fixed = f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    child = _aligned(value_at + value_length)
    while child + 6 <= end:
        child_length, _length, _kind, child_key, child_value = _block(block, child)
        if child_length == 0:
            break
        if child_key == "StringFileInfo":
            found = _string_file_info(block, child_value, min(child + child_length, end))
            if found is not None:
                return found
        child = _aligned(child + child_length)
    return fixed


def _string_file_info(block: bytes, at: int, end: int) -> str | None:
    while at + 6 <= end:  # StringTable blocks (one per language / code page)
        table_length, _length, _kind, _key, string_at = _block(block, at)
        if table_length == 0:
            return None
        table_end = min(at + table_length, end)
        while string_at + 6 <= table_end:
            length, value_length, _kind, key, value_at = _block(block, string_at)
            if length == 0:
                break
            if key == "FileVersion":
                # wValueLength counts WCHARs (the terminating NUL included) for text values.
                raw = block[value_at:value_at + 2 * value_length]
                return raw.decode("utf-16-le", "replace").split("\0", 1)[0].strip()
            string_at = _aligned(string_at + length)
        at = _aligned(at + table_length)
    return None
