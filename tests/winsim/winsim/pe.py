"""Real PE files with a VERSIONINFO resource, built with mingw binutils and read back with pefile.

Windows reports a file's version from its VERSIONINFO resource (``CIM_DataFile.Version``, Explorer's
Details tab), so winsim's system files and hotfix packages are genuine PE images, not stand-ins: pefile,
``i686-w64-mingw32-objdump`` or a Windows host would read the same version.

Build recipe (the one from winrm-notes.md, plus two changes): ``windres`` compiles a generated ``.rc`` with
numeric constants only (no ``winver.h``), ``ld`` links it into an image. ``-s`` and a linker script that keeps
only ``.rsrc`` make the image 1,536 bytes, small enough for the 2,048-byte ``Dfsrress.dll`` of KB977381;
``--no-insert-timestamp`` makes the build reproducible. The image is then padded with an overlay to the exact
size the article states: the loader and pefile ignore bytes past the last section.

Only the i386 emulation of binutils is installed, so every image is a PE32 for machine 0x14c, also for x64
and IA-64 hosts; winsim never executes images, it only reads their resources.

Built files are cached on disk by (version string, size, name, extra strings) in a directory shared by all
hosts and processes (``WINSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/winsim`` or ``~/.cache/winsim``), so a fleet
of 500 hosts builds each distinct file once.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pefile

WINDRES = "i686-w64-mingw32-windres"
LD = "i686-w64-mingw32-ld"
# Bump when the generated .rc or the link changes so stale cache entries are not reused.
_BUILD_FORMAT = "3"

_LINKER_SCRIPT = """SECTIONS
{
  .rsrc __image_base__ + __section_alignment__ : { *(.rsrc) *(SORT(.rsrc$*)) }
  /DISCARD/ : { *(*) }
}
"""

# VS_FIXEDFILEINFO constants (winver.h values written out, the .rc must not include winver.h).
_VOS_NT_WINDOWS32 = 0x40004
_VFT_APP, _VFT_DLL, _VFT_DRV = 1, 2, 3
_VERSION_NUMBERS = re.compile(r"^\s*(\d+)\.(\d+)\.(\d+)\.(\d+)")

_memo_lock = threading.Lock()
_built: dict[str, Path] = {}


class PeBuildError(RuntimeError):
    """windres/ld failed, or the requested size is smaller than the smallest image for that resource."""


@dataclass(frozen=True)
class VersionInfo:
    """What a PE's VERSIONINFO says: the FileVersion string (suffix included), the fixed numeric version and
    every StringFileInfo entry."""

    file_version: str | None
    fixed_version: str | None
    strings: dict[str, str]


def cache_dir() -> Path:
    """The shared build cache (created on first use)."""
    configured = os.environ.get("WINSIM_CACHE_DIR")
    if configured:
        base = Path(configured)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "winsim"
    path = base / "pe"
    path.mkdir(parents=True, exist_ok=True)
    return path


def numeric_version(version: str) -> tuple[int, int, int, int]:
    """``"5.1.2600.1106 (xpsp1.020828-1920)"`` -> ``(5, 1, 2600, 1106)``."""
    match = _VERSION_NUMBERS.match(version)
    if not match:
        raise ValueError(f"not a four-part file version: {version!r}")
    a, b, c, d = (int(part) for part in match.groups())
    if max(a, b, c, d) > 0xFFFF:
        raise ValueError(f"version part above 65535: {version!r}")
    return a, b, c, d


def build_pe(name: str, version: str, size: int | None = None, strings: Mapping[str, str] | None = None) -> Path:
    """Path of a cached PE file named ``name`` whose FileVersion string is ``version``, padded to ``size`` bytes.

    ``strings`` adds or replaces StringFileInfo entries (hotfix packages carry their identity there).
    The returned file is shared: never modify it.
    """
    memo = f"{cache_dir()}\0{name}\0{version}\0{size}\0{sorted((strings or {}).items())}"
    with _memo_lock:
        known = _built.get(memo)
    if known is not None and known.exists():
        return known
    rc_text = _rc_source(name, version, strings or {})
    key = hashlib.sha256(f"{_BUILD_FORMAT}\0{rc_text}\0{size}".encode()).hexdigest()[:40]
    target = cache_dir() / f"{key}.bin"
    if not target.exists():
        image = _link(rc_text, name)
        _write_atomic(target, _pad(image, size, name))
    with _memo_lock:
        _built[memo] = target
    return target


def pe_bytes(name: str, version: str, size: int | None = None, strings: Mapping[str, str] | None = None) -> bytes:
    return build_pe(name, version, size, strings).read_bytes()


def read_version_info(data: bytes) -> VersionInfo | None:
    """The VERSIONINFO of a PE image, or None when ``data`` is not a PE or has no version resource."""
    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    except pefile.PEFormatError:
        return None
    strings: dict[str, str] = {}
    for info_list in getattr(pe, "FileInfo", None) or []:
        for info in info_list:
            for table in getattr(info, "StringTable", []):
                for raw_key, raw_value in table.entries.items():
                    strings[_text(raw_key)] = _text(raw_value)
    fixed = None
    fixed_infos = getattr(pe, "VS_FIXEDFILEINFO", None)
    if fixed_infos:
        ms, ls = fixed_infos[0].FileVersionMS, fixed_infos[0].FileVersionLS
        fixed = f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    if fixed is None and not strings:
        return None
    return VersionInfo(file_version=strings.get("FileVersion"), fixed_version=fixed, strings=strings)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _file_type(name: str) -> tuple[int, str]:
    """(VS_FIXEDFILEINFO.dwFileType, ld --subsystem) by extension: drivers are VFT_DRV, services and packages
    VFT_APP, everything else (dll, mui, cpl) VFT_DLL."""
    lower = name.lower()
    if lower.endswith(".sys"):
        return _VFT_DRV, "native"
    if lower.endswith(".exe"):
        return _VFT_APP, "windows"
    return _VFT_DLL, "windows"


def _rc_string(value: str) -> str:
    out = []
    for char in value:
        code = ord(char)
        if char == '"':
            out.append('""')
        elif char == "\\":
            out.append("\\\\")
        elif 32 <= code < 127:
            out.append(char)
        elif code < 256:
            # windres reads narrow strings as Latin-1; octal keeps (R), (C) and friends intact.
            out.append(f"\\{code:03o}")
        else:
            out.append("?")
    return '"' + "".join(out) + '"'


def _rc_source(name: str, version: str, extra: Mapping[str, str]) -> str:
    a, b, c, d = numeric_version(version)
    file_type, _ = _file_type(name)
    product_version = f"{a}.{b}.{c}.{d}"
    strings: dict[str, str] = {
        "CompanyName": "Microsoft Corporation",
        "FileDescription": name,
        "FileVersion": version,
        "InternalName": name.rsplit(".", 1)[0],
        "LegalCopyright": "\u00a9 Microsoft Corporation. All rights reserved.",
        "OriginalFilename": name,
        "ProductName": "Microsoft\u00ae Windows\u00ae Operating System",
        "ProductVersion": product_version,
    }
    strings.update(extra)
    values = "\n".join(f"      VALUE {_rc_string(k)}, {_rc_string(v)}" for k, v in strings.items())
    return (
        "1 VERSIONINFO\n"
        f"FILEVERSION {a},{b},{c},{d}\n"
        f"PRODUCTVERSION {a},{b},{c},{d}\n"
        "FILEFLAGSMASK 0x3f\nFILEFLAGS 0\n"
        f"FILEOS {_VOS_NT_WINDOWS32:#x}\nFILETYPE {file_type}\nFILESUBTYPE 0\n"
        "BEGIN\n  BLOCK \"StringFileInfo\"\n  BEGIN\n    BLOCK \"040904B0\"\n    BEGIN\n"
        f"{values}\n"
        "    END\n  END\n  BLOCK \"VarFileInfo\"\n  BEGIN\n    VALUE \"Translation\", 0x409, 1200\n  END\nEND\n"
    )


def _link(rc_text: str, name: str) -> bytes:
    _, subsystem = _file_type(name)
    with tempfile.TemporaryDirectory(prefix="winsim-pe-") as work:
        rc, obj, script, out = (Path(work) / n for n in ("v.rc", "v.o", "rsrc.ld", "out.bin"))
        rc.write_text(rc_text, encoding="latin-1")
        script.write_text(_LINKER_SCRIPT)
        dll = ["--dll"] if not name.lower().endswith(".exe") else []
        commands = [
            [WINDRES, "--preprocessor=cpp", "--preprocessor-arg=-xc", str(rc), "-O", "coff", "-o", str(obj)],
            [LD, *dll, "-e", "0", "--subsystem", subsystem, "-s", "--no-insert-timestamp",
             "-T", str(script), "-o", str(out), str(obj)],
        ]
        for command in commands:
            try:
                result = subprocess.run(command, capture_output=True, text=True, check=False)
            except FileNotFoundError as exc:
                raise PeBuildError(f"{command[0]} not found: install binutils-mingw-w64-i686 (make setup)") from exc
            if result.returncode != 0:
                raise PeBuildError(f"{command[0]} failed for {name}: {result.stderr.strip()}")
        return out.read_bytes()


def _pad(image: bytes, size: int | None, name: str) -> bytes:
    if size is None:
        return image
    if size < len(image):
        raise PeBuildError(f"{name}: {size} bytes requested, the smallest image with this resource is {len(image)}")
    return image + b"\0" * (size - len(image))


def _write_atomic(target: Path, data: bytes) -> None:
    # Several processes (pytest-xdist workers, the fleet) may build the same file at once: write aside, rename.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
