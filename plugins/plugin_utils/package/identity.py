# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a hotfix package says about itself: the KB article, processor architecture, language and product.

* ``.exe`` packages (update.exe, NT 4.0 hotfix.exe): the VERSIONINFO resource's string table, as Explorer's
  Details tab and sigcheck show it: ``KB Article Number``, ``Proc. Architecture``, ``Language``, ``Applies to``.
* ``.msu`` packages: the ``<name>-pkgProperties.txt`` member of the cabinet (UTF-16 ``Key="Value"`` lines):
  ``KB Article Number``, ``Processor Architecture``, ``Applies to``.

The cabinet reader handles uncompressed and MSZIP folders (deflate blocks sharing a 32 KiB window); a folder
compressed otherwise (LZX, Quantum) leaves the properties unknown, which the caller reports.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

try:
    import pefile
except ImportError as exc:  # the import sanity test and ansible-doc run without it
    PEFILE_ERROR: ImportError | None = exc
else:
    PEFILE_ERROR = None

# Windows language ids (LCID) of the file-name suffixes Microsoft's download packages use.
LANGUAGE_SUFFIXES: dict[str, int] = {
    "ENU": 0x0409, "DEU": 0x0407, "FRA": 0x040C, "ESN": 0x0C0A, "ITA": 0x0410, "JPN": 0x0411, "KOR": 0x0412,
    "CHS": 0x0804, "CHT": 0x0404, "PTB": 0x0416, "PTG": 0x0816, "NLD": 0x0413, "SVE": 0x041D, "RUS": 0x0419,
    "PLK": 0x0415, "CSY": 0x0405, "HUN": 0x040E, "TRK": 0x041F, "DAN": 0x0406, "FIN": 0x040B, "NOR": 0x0414,
    "ELL": 0x0408, "ARA": 0x0401, "HEB": 0x040D,
}
ARCHITECTURES = {"x86": "x86", "i386": "x86", "x64": "x64", "amd64": "x64", "ia64": "ia64", "itanium": "ia64"}
MAX_CABINET_HEADER = 1 << 20  # the properties member lies in the first folder; no need to read a whole package
_FLAG_PREV, _FLAG_NEXT, _FLAG_RESERVE = 0x1, 0x2, 0x4
_PROPERTY = re.compile(r'^\s*([^=]+?)\s*=\s*"(.*)"\s*$')


@dataclass(frozen=True)
class PackageIdentity:
    """``source`` says where the facts come from (``VERSIONINFO``, ``pkgProperties``) or why they are absent."""

    source: str
    kb: str | None = None  # digits: "977381"
    architecture: str | None = None  # x86 | x64 | ia64
    language: int | None = None  # LCID, 0x0409
    applies_to: str | None = None

    @property
    def known(self) -> bool:
        return self.kb is not None or self.architecture is not None

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "kb": self.kb, "architecture": self.architecture,
                "language": f"{self.language:#06x}" if self.language is not None else None,
                "applies_to": self.applies_to}


def read_identity(path: str) -> PackageIdentity:
    if path.casefold().endswith(".msu"):
        return _msu_identity(path)
    return _pe_identity(path)


def _architecture(text: str | None) -> str | None:
    return ARCHITECTURES.get(text.strip().casefold()) if text else None


def _kb_digits(text: str | None) -> str | None:
    match = re.search(r"(\d{5,7})", text or "")
    return match.group(1) if match else None


def _pe_identity(path: str) -> PackageIdentity:
    if PEFILE_ERROR is not None:
        return PackageIdentity(f"unread: the Python package pefile is missing ({PEFILE_ERROR})")
    try:
        # Read into memory rather than mapped: nothing to close afterwards, and PE.close() runs a full garbage
        # collection, which in a controller process holding many hosts' state costs more than the parse.
        image = pefile.PE(data=Path(path).read_bytes(), fast_load=True)
        image.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    except (pefile.PEFormatError, OSError) as exc:
        return PackageIdentity(f"unread: not a PE image ({exc})")
    strings: dict[str, str] = {}
    language: int | None = None
    for info in getattr(image, "FileInfo", None) or []:
        for entry in info:
            for table in getattr(entry, "StringTable", []) or []:
                if language is None and len(table.LangID) >= 4:
                    language = int(table.LangID[:4], 16)
                for key, value in table.entries.items():
                    strings[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    if not strings:
        return PackageIdentity("unread: the file has no VERSIONINFO strings")
    # Update.exe packages state the language as "0x0409"; the string table's own language id is the fallback.
    stated = strings.get("Language", "")
    if re.fullmatch(r"0x[0-9A-Fa-f]{1,4}", stated.strip()):
        language = int(stated.strip(), 16)
    return PackageIdentity(
        "VERSIONINFO", kb=_kb_digits(strings.get("KB Article Number")),
        architecture=_architecture(strings.get("Proc. Architecture") or strings.get("Processor Architecture")),
        language=language, applies_to=strings.get("Applies to"))


def _msu_identity(path: str) -> PackageIdentity:
    with open(path, "rb") as handle:
        head = handle.read(MAX_CABINET_HEADER)
    try:
        properties = _cabinet_properties(head)
    except (struct.error, zlib.error, ValueError, IndexError) as exc:
        return PackageIdentity(f"unread: damaged cabinet ({exc})")
    if properties is None:
        return PackageIdentity("unread: the cabinet has no readable -pkgProperties.txt")
    return PackageIdentity(
        "pkgProperties", kb=_kb_digits(properties.get("KB Article Number")),
        architecture=_architecture(properties.get("Processor Architecture")),
        applies_to=properties.get("Applies to") or properties.get("ApplicabilityInfo"))


def _cabinet_properties(data: bytes) -> dict[str, str] | None:
    """The ``-pkgProperties.txt`` member of an MS-CAB cabinet (MS-CAB format: CFHEADER, CFFOLDER, CFFILE,
    CFDATA), or None when it has none or its folder is compressed with something other than MSZIP."""
    if data[:4] != b"MSCF":
        raise ValueError("no MSCF signature")
    files_offset, = struct.unpack_from("<I", data, 16)
    folders, files, flags = struct.unpack_from("<HHH", data, 26)
    pos, folder_reserve, data_reserve = 36, 0, 0
    if flags & _FLAG_RESERVE:
        header_reserve, folder_reserve, data_reserve = struct.unpack_from("<HBB", data, 36)
        pos = 40 + header_reserve
    for flag in (_FLAG_PREV, _FLAG_NEXT):
        if flags & flag:  # two NUL-terminated strings: cabinet and disk names
            for _name in ("cabinet", "disk"):
                pos = data.index(b"\0", pos) + 1
    folder_table = []
    for _folder in range(folders):
        folder_table.append(struct.unpack_from("<IHH", data, pos))
        pos += 8 + folder_reserve
    pos = files_offset
    for _file in range(files):
        size, offset, folder = struct.unpack_from("<IIH", data, pos)
        end = data.index(b"\0", pos + 16)
        name = data[pos + 16:end].decode("utf-8", "replace")
        pos = end + 1
        if name.casefold().endswith("-pkgproperties.txt") and folder < len(folder_table):
            stream = _folder_stream(data, folder_table[folder], data_reserve, offset + size)
            if stream is None:
                return None
            return _properties(stream[offset:offset + size])
    return None


def _folder_stream(data: bytes, folder: tuple[int, int, int], data_reserve: int, wanted: int) -> bytes | None:
    start, blocks, compression = folder
    kind = compression & 0x0F
    if kind not in (0, 1):
        return None
    out = bytearray()
    pos = start
    window = b""
    for _block in range(blocks):
        _checksum, packed, _unpacked = struct.unpack_from("<IHH", data, pos)
        pos += 8 + data_reserve
        block = data[pos:pos + packed]
        if len(block) != packed:
            raise ValueError("truncated data block")
        pos += packed
        if kind == 0:
            out += block
        else:
            if block[:2] != b"CK":
                raise ValueError("MSZIP block without its CK signature")
            # Each MSZIP block is a raw deflate stream whose window continues the previous block's output.
            inflater = zlib.decompressobj(-15, zdict=window) if window else zlib.decompressobj(-15)
            chunk = inflater.decompress(block[2:]) + inflater.flush()
            out += chunk
            window = bytes(out[-32768:])
        if len(out) >= wanted:
            break
    return bytes(out)


def _properties(raw: bytes) -> dict[str, str]:
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8", "replace")
    found = {}
    for line in text.splitlines():
        match = _PROPERTY.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def file_name_language(filename: str) -> int | None:
    """The language of a package named like ``WindowsXP-KB828753-x86-ENU.exe``; None when the name has none."""
    stem = Path(filename).stem
    suffix = stem.rsplit("-", 1)[-1].upper() if "-" in stem else ""
    return LANGUAGE_SUFFIXES.get(suffix)


def file_name_architecture(filename: str) -> str | None:
    """``-x86-``, ``-x64-``, ``-ia64-`` in Microsoft's package names."""
    for part in re.split(r"[-_.]", Path(filename).stem.casefold()):
        if part in ARCHITECTURES and part not in ("i386",):
            return ARCHITECTURES[part]
    return None
