"""Hotfix packages: winsim's own catalogue, the package files, and what installing one does to a host.

The catalogue is written from the four articles (their text: ``tests/unit/engine/articles/``) and
docs/sources.md, never from the collection's specs: a shared mistake would pass every test. Where the articles
are silent winsim makes a choice, marked *inferred* below, that a real host could plausibly show.

Package files are real formats:

* ``.exe`` (update.exe and NT4 hotfix.exe families): a PE image whose VERSIONINFO names the installer engine,
  the KB article and the platform, followed (as in a self-extractor) by an uncompressed MS-CAB cabinet that
  holds ``winsim-package.json``, the package manifest (target OS/SP/architecture, files, hotfix record).
* ``.msu``: an MS-CAB cabinet (``MSCF``, CFDATA checksums) with the ``-pkgProperties.txt`` and unattend
  ``.xml`` a real MSU carries, plus ``winsim-package.json``.

The installers read the manifest from the file; a truncated or altered file fails its cabinet checksums and
is reported as corrupt. Packages do not embed the fixed binaries (it keeps uploads in tests fast); the
installer builds them from the manifest through the shared PE cache, with the exact versions, sizes, dates.
``build_package(name, size)`` (with ``real_size(name)``: 0.5 to 3 MB) pads the cabinet with a ``payload.bin``
member of incompressible bytes, so that uploads in benchmarks, the demo and the tests that ask for it cost
what a real package's do.

Installer behaviour (switches case-insensitive, ``/`` or ``-``):

=====================  ==============================  ======================  ============================
case                   update.exe                      hotfix.exe (NT 4.0)     wusa.exe (.msu)
=====================  ==============================  ======================  ============================
installed              0, or 3010 when files wait      0 (no 3010 in that      0, or 3010 (CBS stages every
                       for the reboot (in use)          installer generation)   file for the reboot)
already installed      2359302 (hotfix record present)  2359302                 2359302 (CBS package present)
not applicable         -2145124329: SP contains the fix, product/component (DFSR) missing, files newer
                       (msu only; update.exe then just records the hotfix and returns 0)
wrong OS or platform   1 (logged)                      1                       -2145124329 (wusa says so)
corrupt file           1392 ERROR_FILE_CORRUPT         1392                    -2147023504 (0x80070570)
no UI switch           never ends (the wizard waits    never ends              never ends (the dialog waits)
                       on a desktop nobody sees)
=====================  ==============================  ======================  ============================

Unattended switches: update.exe ``/quiet /q /passive /u``; hotfix.exe ``-m -q``; wusa ``/quiet``.
Without ``/norestart`` (update.exe, wusa) or ``-z`` (hotfix.exe) an unattended install that needs a restart
restarts the host itself one second after it exits; ``/forcerestart`` always does.
Files in use are queued in ``PendingFileRenameOperations`` (update.exe, hotfix.exe) and the rest replaced at
once, with a backup in ``%SystemRoot%\\$NtUninstall<KB>$`` unless ``/n``; CBS stages every file in WinSxS and
queues it in ``%SystemRoot%\\winsxs\\pending.xml`` with the ``RebootPending`` key.
Hotfix records: ``HKLM\\SOFTWARE\\Microsoft\\Updates\\<product>\\<SPn>\\<KB>`` (+ ``UpdateExeVolatile`` while a
reboot is pending), ``HKLM\\...\\Windows NT\\CurrentVersion\\Hotfix\\Q253729`` on NT 4.0, CBS package keys
(``CurrentState`` 0x60 until the reboot, then 0x70) and ``%SystemRoot%\\servicing\\Packages\\*.mum`` on 6.x.

Removing a hotfix, per era: ``spuninst.exe /quiet /norestart`` from ``$NtUninstall<KB>$\\spuninst`` (the path in
the record's ``UninstallCommand``; absent after an install with ``/n``) restores the backups and deletes the
records, 0 or 3010; ``hotfix.exe -y -m -z`` (NT 4.0, from ``$NtUninstallQ...$`` or the package), 0;
``wusa /uninstall /kb:N /quiet /norestart`` (6.1 and later; older wusa shows its usage dialog), 3010 or
2359303 (0x00240007) when nothing is installed; ``pkgmgr /up:<package> /quiet /norestart`` (6.x), 3010 or
-2146498555 (0x800F0805) for a package that is not installed. CBS packages wait in ``CurrentState`` 0x05 until
the reboot restores the previous component versions (kept in WinSxS at install time) and drops the package.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ntpath
import random
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pe
from .machine import CBS_UNINSTALL_PENDING, normalize_path

if TYPE_CHECKING:
    from .machine import Host

EXIT_OK = 0
EXIT_RESTART = 3010
EXIT_ALREADY_INSTALLED = 2359302  # 0x00240006 WU_S_ALREADY_INSTALLED
EXIT_NOT_APPLICABLE = -2145124329  # 0x80240017 WU_E_NOT_APPLICABLE
EXIT_WRONG_PLATFORM = 1
EXIT_CORRUPT = 1392  # ERROR_FILE_CORRUPT
EXIT_CORRUPT_MSU = -2147023504  # 0x80070570, the same error as an HRESULT
EXIT_FILE_NOT_FOUND_MSU = -2147024894  # 0x80070002
EXIT_INVALID_SWITCH = 87  # ERROR_INVALID_PARAMETER
EXIT_ALREADY_UNINSTALLED = 2359303  # 0x00240007 WU_S_ALREADY_UNINSTALLED
EXIT_PACKAGE_NOT_INSTALLED = -2146498555  # 0x800F0805 CBS_E_INVALID_PACKAGE: pkgmgr /up of an absent package
EXIT_NO_UNINSTALL_DATA = 2  # ERROR_FILE_NOT_FOUND: the $NtUninstall folder or its INF is gone
MANIFEST_NAME = "winsim-package.json"
CBS_ARCH = {"x86": "x86", "x64": "amd64", "ia64": "ia64"}
RESTART_DELAY_SECONDS = 1.0


class CorruptPackageError(Exception):
    """The file is not a readable package (bad cabinet, checksum mismatch, no manifest)."""


# --- catalogue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFix:
    path: str  # "%SystemRoot%\\system32\\drivers\\mrxsmb.sys"
    version: str | None  # FileVersion string with its build tag; None for files without VERSIONINFO
    size: int
    modified: str  # ISO 8601 UTC, from the article's table
    component: str = ""  # CBS component (WinSxS directory) on 6.x


@dataclass(frozen=True)
class Target:
    os_version: str  # "5.1.2600"
    service_packs: tuple[int, ...]
    files: tuple[FileFix, ...]
    fixed_in_sp: int | None = None  # a host at or above this SP already has the fix
    product_types: tuple[int, ...] = (1, 2, 3)
    r2_only: bool = False
    suite_mask: int = 0  # bits the host's suite mask must have (VER_SUITE_TERMINAL for NT4 TSE)
    requires: tuple[str, ...] = ()  # files that must exist: the component the fix updates is installed
    cbs_packages: tuple[str, ...] = ()
    mums: tuple[FileFix, ...] = ()  # servicing\Packages\<package>.mum per CBS package (same order)
    manifests: tuple[FileFix, ...] = ()  # winsxs\Manifests\*.manifest the article lists


@dataclass(frozen=True)
class Package:
    filename: str
    hotfix_id: str  # "KB828753", "Q253729"
    installer: str  # "update" | "hotfix" | "msu"
    architecture: str  # "x86" | "x64" | "ia64"
    description: str
    targets: tuple[Target, ...]
    restart: bool = True
    record_product: str = ""  # "Windows XP": HKLM\SOFTWARE\Microsoft\Updates\<product>\<SPn>\<KB>
    record_sp: str = ""  # the SP that will contain the fix, not the installed one
    release_type: str = "Hotfix"
    build_date: str = "2009-11-18"

    def manifest(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> Package:
        targets = tuple(
            Target(**{**t, "service_packs": tuple(t["service_packs"]), "product_types": tuple(t["product_types"]),
                      "requires": tuple(t["requires"]), "cbs_packages": tuple(t["cbs_packages"]),
                      "files": tuple(FileFix(**f) for f in t["files"]),
                      "mums": tuple(FileFix(**f) for f in t.get("mums", [])),
                      "manifests": tuple(FileFix(**f) for f in t.get("manifests", []))})
            for t in data["targets"]
        )
        return cls(**{**data, "targets": targets})


def _f(path: str, version: str | None, size: int, modified: str, component: str = "") -> FileFix:
    return FileFix(path, version, size, modified, component)


_SYS32 = "%SystemRoot%\\system32"
_MANIFESTS = "%SystemRoot%\\winsxs\\Manifests"
_MUMS = "%SystemRoot%\\servicing\\Packages"
_DRV = _SYS32 + "\\drivers"
_WOW = "%SystemRoot%\\SysWOW64"

# KB828753 (seed 000): XP SP1 line, first fixed in XP SP2. Build tags are inferred (post-SP1 hotfixes were
# built in the xpsp2 tree); versions, sizes and dates are the article's.
_KB828753 = Package(
    "WindowsXP-KB828753-x86-ENU.exe", "KB828753", "update", "x86",
    "Programs that are run directly from a file server quit unexpectedly",
    (Target("5.1.2600", (1,), (
        _f(_SYS32 + "\\cscdll.dll", "5.1.2600.1276 (xpsp2.030926-1738)", 92160, "2003-09-27T01:19:00+00:00"),
        _f(_DRV + "\\mrxsmb.sys", "5.1.2600.1276 (xpsp2.030926-1738)", 414976, "2003-09-27T00:21:00+00:00"),
        _f(_DRV + "\\rdbss.sys", "5.1.2600.1276 (xpsp2.030926-1738)", 165632, "2003-09-27T00:21:00+00:00"),
    ), fixed_in_sp=2, product_types=(1,)),),
    record_product="Windows XP", record_sp="SP2", release_type="Update", build_date="2003-09-27",
)

# KB253729 (seed 001): NT 4.0 TSE, Mpr.dll 60,176 bytes 02/08/2000 19:27, no version in the article; the
# version below is inferred on the TSE build line (4.0.1381.33xxx).
_KB253729 = Package(
    "Q253729i.exe", "Q253729", "hotfix", "x86",
    "Stopping Persistent Connection Causes It to Become Unavailable",
    (Target("4.0.1381", (4, 5, 6), (
        _f(_SYS32 + "\\mpr.dll", "4.0.1381.33418", 60176, "2000-02-08T19:27:00+00:00"),
    ), product_types=(2, 3), suite_mask=0x10),),
    build_date="2000-02-08",
)


def _kb977381_2003(arch: str, filename: str, dfsr_size: int, res_size: int, stamp: str) -> Package:
    files = [
        _f(_SYS32 + "\\dfsr.exe", "5.2.3790.4650 (srv03_sp2_qfe.100115-1232)", dfsr_size, stamp),
        _f(_SYS32 + "\\w03a3409.dll", "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)", res_size,
           "2009-09-16T12:16:00+00:00" if arch == "x86" else stamp),
    ]
    if arch != "x86":
        # Ww03a3409.dll in the article: the x86 (WOW64) copy, installed as SysWOW64\w03a3409.dll.
        files.append(_f(_WOW + "\\w03a3409.dll", "5.2.3790.4590 (srv03_sp2_qfe.090916-1216)", 43520, stamp))
    return Package(
        filename, "KB977381", "update", arch,
        "The DFS Replication service may stop responding when it initializes the replication process",
        (Target("5.2.3790", (2,), tuple(files), product_types=(2, 3), r2_only=True,
                requires=(_SYS32 + "\\dfsr.exe",)),),
        record_product="Windows Server 2003", record_sp="SP3", build_date="2010-01-15",
    )


_RESOURCES = "microsoft-windows-d..erveronly.resources"


# The 2008 tables' manifests (name, size, time on 17-Nov-2009) and the full-server .mum sizes, per arch and SP.
_DFSR6_MANIFESTS = {
    ("x86", 1): (("d..erveronly.resources", "en-us_5723e9525d423053", 3942, "16:01"),
                 ("dfsr-core-serveronly", "none_9dd97743c1110934", 42651, "15:42")),
    ("x86", 2): (("d..erveronly.resources", "en-us_590e5c625a64ead3", 3942, "15:01"),
                 ("dfsr-core-serveronly", "none_9fc3ea53be33c3b4", 42651, "16:01")),
    ("x64", 1): (("d..erveronly.resources", "en-us_b34284d6159fa189", 3946, "13:44"),
                 ("dfsr-core-serveronly", "none_f9f812c7796e7a6a", 42691, "15:04")),
    ("x64", 2): (("d..erveronly.resources", "en-us_b52cf7e612c25c09", 3946, "13:17"),
                 ("dfsr-core-serveronly", "none_fbe285d7769134ea", 42691, "14:21")),
}
# Package_for_kb977381_server~ and _server_0 (SP1) / _server_1 (SP2); the _sc packages are Server Core's.
_DFSR6_MUMS = {("x86", 1): (1715, 37637), ("x86", 2): (1715, 18049), ("x64", 1): (1725, 37973),
               ("x64", 2): (1725, 18248)}


def _dfsr6(arch: str, sp: int, dfsrs: int, res: int, mui_res: int, mui_exe: int,
           times: tuple[str, str, str, str, str]) -> Target:
    build = 6000 + sp
    revision = {1: 22565, 2: 22269}[sp]
    tag = f"6.0.{build}.{revision} (vistasp{sp}_ldr.091117-0945)"
    component = "microsoft-windows-dfsr-core-serveronly"
    cbs = CBS_ARCH[arch]
    manifests = tuple(
        _f(f"{_MANIFESTS}\\{cbs}_microsoft-windows-{name}_31bf3856ad364e35_6.0.{build}.{revision}_{tail}.manifest",
           None, size, _t("17", hhmm))
        for name, tail, size, hhmm in _DFSR6_MANIFESTS[(arch, sp)])
    packages = (f"Package_for_KB977381_server~31bf3856ad364e35~{cbs}~~6.0.1.0",
                f"Package_for_KB977381_server_{sp - 1}~31bf3856ad364e35~{cbs}~~6.0.1.0")
    mums = tuple(_f(f"{_MUMS}\\{name}.mum", None, size, _t("18", "12:47"))
                 for name, size in zip(packages, _DFSR6_MUMS[(arch, sp)], strict=True))
    return Target(
        f"6.0.{build}", (sp,), (
            _f(_SYS32 + "\\Dfsrs.exe", tag, dfsrs, times[0], component),
            _f(_SYS32 + "\\Dfsrress.dll", tag, res, times[1], component),
            _f(_SYS32 + "\\en-US\\Dfsrress.dll.mui", tag, mui_res, times[2], _RESOURCES),
            _f(_SYS32 + "\\en-US\\Dfsrs.exe.mui", tag, mui_exe, times[3], _RESOURCES),
            _f(_SYS32 + "\\wbem\\Dfsrprovs.mof", None, 66511, times[4], component),
        ),
        product_types=(2, 3), requires=(_SYS32 + "\\Dfsrs.exe",), cbs_packages=packages, mums=mums,
        manifests=manifests,
    )


def _t(day: str, hhmm: str) -> str:
    return f"2009-11-{day}T{hhmm}:00+00:00"


_KB977381_2008_X86 = Package(
    "Windows6.0-KB977381-x86.msu", "KB977381", "msu", "x86",
    "The DFS Replication service may stop responding when it initializes the replication process",
    (_dfsr6("x86", 1, 2245632, 2048, 143360, 40960,
            (_t("17", "09:46"), _t("17", "09:45"), _t("17", "12:34"), _t("17", "12:41"), _t("17", "07:22"))),
     _dfsr6("x86", 2, 2247680, 2048, 143360, 40960,
            (_t("17", "09:45"), _t("17", "09:45"), _t("17", "12:34"), _t("17", "12:42"), _t("17", "07:32")))),
)
_KB977381_2008_X64 = Package(
    "Windows6.0-KB977381-x64.msu", "KB977381", "msu", "x64",
    "The DFS Replication service may stop responding when it initializes the replication process",
    (_dfsr6("x64", 1, 3678208, 2048, 133120, 33280,
            (_t("17", "10:03"), _t("17", "10:01"), _t("17", "12:58"), _t("17", "13:05"), _t("17", "07:22"))),
     _dfsr6("x64", 2, 3680256, 2048, 135680, 33280,
            (_t("17", "09:53"), _t("17", "09:51"), _t("17", "12:30"), _t("17", "12:38"), _t("17", "07:32")))),
)
# 2008 R2: Dfsrress.dll is listed at the RTM version 6.1.7600.16385; CBS leaves an equal file alone.
_KB977381_2008R2 = Package(
    "Windows6.1-KB977381-x64.msu", "KB977381", "msu", "x64",
    "The DFS Replication service may stop responding when it initializes the replication process",
    (Target("6.1.7600", (0,), (
        _f(_SYS32 + "\\Dfsrs.exe", "6.1.7600.20578 (win7_ldr.091118-1759)", 4503040, "2009-11-18T17:59:00+00:00",
           "microsoft-windows-dfsr-core-serveronly"),
        _f(_SYS32 + "\\Dfsrress.dll", "6.1.7600.16385 (win7_rtm.090713-1255)", 2048, "2009-07-14T01:26:00+00:00",
           "microsoft-windows-dfsr-core-serveronly"),
        _f(_SYS32 + "\\wbem\\Dfsrprovs.mof", None, 75200, "2009-07-13T20:20:00+00:00",
           "microsoft-windows-dfsr-core-serveronly"),
    ), product_types=(2, 3), requires=(_SYS32 + "\\Dfsrs.exe",),
        cbs_packages=("Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0",),
        mums=(_f(f"{_MUMS}\\Package_for_KB977381_rtm~31bf3856ad364e35~amd64~~6.1.1.0.mum", None, 2309,
                 "2009-11-18T19:28:00+00:00"),),
        manifests=(_f(f"{_MANIFESTS}\\amd64_microsoft-windows-dfsr-core-serveronly_31bf3856ad364e35_6.1.7600.20578_none"
                      "_fa181218da8b2221.manifest", None, 35681, "2009-11-18T19:28:00+00:00"),)),),
)


# The KB938475 tables: (deployment or component name, hash, size, time on 15-Jun-2007) per arch, and the
# package .mum sizes (Package_1, Package_2).
_KB938475_MANIFESTS = {
    "x86": (("25d0b76c7c00d970e39bd582c48dc22c", "cbbc3c6387dbeb8b", 698, "17:34"),
            ("9f816cda4d567616d3afaac228e6dba9", "6a3a12f093b96198", 700, "17:34"),
            ("microsoft-windows-smbminirdr", "7e1f299c6d24b8b7", 9344, "17:35"),
            ("microsoft-windows-smbserver-v2", "d87a55d61282fd5a", 4718, "17:35")),
    "x64": (("872643c0e08b3bfea6e35d908e0eff9e", "2c94f2fd4b883804", 704, "17:34"),
            ("c0811949d12dd84ac380a6ab85453b26", "954a2531d9f6fb41", 702, "17:34"),
            ("microsoft-windows-smbminirdr", "da3dc520258229ed", 9615, "17:44"),
            ("microsoft-windows-smbserver-v2", "3498f159cae06e90", 4983, "17:44")),
}
_KB938475_MUMS = {"x86": (1783, 1996), "x64": (1793, 2008)}


def _kb938475(arch: str, stamp: str) -> Package:
    # The article lists only manifests: smbminirdr (mrxsmb.sys) and smbserver-v2 (srv2.sys) at
    # 6.0.6000.20620. The file names follow those components; their sizes are inferred. mrxsmb10.sys and
    # mrxsmb20.sys belong to the smb10-minirdr and smb20-minirdr components, which the package does not carry:
    # they keep the host's build.
    tag = "6.0.6000.20620 (vista_ldr.070615-1730)"
    big = arch != "x86"
    cbs = CBS_ARCH[arch]
    manifests = tuple(
        _f(f"{_MANIFESTS}\\{cbs}_{name}_31bf3856ad364e35_6.0.6000.20620_none_{tail}.manifest", None, size,
           f"2007-06-15T{hhmm}:00+00:00")
        for name, tail, size, hhmm in _KB938475_MANIFESTS[arch])
    packages = tuple(f"Package_{n}_for_KB938475~31bf3856ad364e35~{cbs}~~6.0.1.0" for n in (1, 2))
    mums = tuple(_f(f"{_MUMS}\\{name}.mum", None, size, "2007-06-15T17:34:00+00:00")
                 for name, size in zip(packages, _KB938475_MUMS[arch], strict=True))
    return Package(
        f"Windows6.0-KB938475-{arch}.msu", "KB938475", "msu", arch,
        "More than 64 concurrent long-term SMB requests are not answered",
        (Target("6.0.6000", (0,), (
            _f(_DRV + "\\mrxsmb.sys", tag, 141312 if big else 110592, stamp, "microsoft-windows-smbminirdr"),
            _f(_DRV + "\\srv2.sys", tag, 129536 if big else 98304, stamp, "microsoft-windows-smbserver-v2"),
        ), fixed_in_sp=1, product_types=(1,), cbs_packages=packages, mums=mums, manifests=manifests),),
        build_date="2007-06-15",
    )


CATALOGUE: dict[str, Package] = {p.filename.casefold(): p for p in (
    _KB828753, _KB253729,
    _kb977381_2003("x86", "WindowsServer2003-KB977381-x86-ENU.exe", 1705984, 43520, "2010-01-15T12:32:00+00:00"),
    _kb977381_2003("x64", "WindowsServer2003.WindowsXP-KB977381-x64-ENU.exe", 3594752, 44032,
                   "2010-01-15T17:02:00+00:00"),
    _kb977381_2003("ia64", "WindowsServer2003-KB977381-ia64-ENU.exe", 5501440, 42496, "2010-01-15T16:59:00+00:00"),
    _KB977381_2008_X86, _KB977381_2008_X64, _KB977381_2008R2,
    _kb938475("x86", "2007-06-15T17:35:00+00:00"), _kb938475("x64", "2007-06-15T17:44:00+00:00"),
)}


def package_names() -> list[str]:
    return sorted(p.filename for p in CATALOGUE.values())


def catalogue_package(filename: str) -> Package:
    try:
        return CATALOGUE[filename.casefold()]
    except KeyError:
        raise ValueError(f"no package {filename!r} in winsim's catalogue; known: {package_names()}") from None


# --- package files ------------------------------------------------------------------------------------


# What a real package carries besides the fixed files, and how much of their size is left after compression:
# inferred (update.exe packages ship update.exe, spuninst.exe and their resources; an .msu only the CBS
# payload). Real packages of the seed articles are 0.5 to 3 MB, which is the range real sizes are kept in.
_ENGINE_BYTES = {"update": 600_000, "hotfix": 250_000, "msu": 60_000}
_COMPRESSED = 0.45
REAL_SIZE_RANGE = (512 * 1024, 3 * 1024 * 1024)
PAYLOAD_NAME = "payload.bin"


def real_size(filename: str | Package) -> int:
    """The size a package file of this kind has on Microsoft's download servers, near enough for uploads to
    cost what they cost (``build_package(filename, real_size(filename))``)."""
    package = catalogue_package(filename) if isinstance(filename, str) else filename
    carried = sum(f.size for t in package.targets for f in t.files)
    low, high = REAL_SIZE_RANGE
    return max(low, min(high, _ENGINE_BYTES[package.installer] + int(carried * _COMPRESSED)))


def build_package(filename: str, size: int | None = None) -> bytes:
    """The bytes of a catalogue package file (deterministic); ``size`` as for ``package_bytes``."""
    return package_bytes(catalogue_package(filename), size)


def package_bytes(package: Package, size: int | None = None) -> bytes:
    """The bytes of a package file for ``package``, which need not be in the catalogue: a test that brings an
    article of its own describes the package its fix ships, and the installers read it from the file.
    ``size``: pad the package's cabinet with a ``payload.bin`` member of incompressible bytes to this many bytes
    in all (``real_size``), so that putting it on a host costs what the real one does; without it a package is
    a few KB."""
    plain = _package_bytes(package, [])
    if size is None or size <= len(plain):
        return plain
    # One member more: its entry, and 8 bytes of CFDATA header per 32 KB block of the longer stream.
    entry = 16 + len(PAYLOAD_NAME) + 1
    length = size - len(plain) - entry
    length -= 8 * (-(-length // 32768))
    built = plain
    for _ in range(3):  # a block boundary crossed by the estimate moves the total by 8 bytes: settle it
        payload = random.Random(package.filename.casefold()).randbytes(max(0, length))
        built = _package_bytes(package, [(PAYLOAD_NAME, payload)])
        if len(built) == size:
            break
        length += size - len(built)
    return built


def _package_bytes(package: Package, extra: list[tuple[str, bytes]]) -> bytes:
    manifest = json.dumps(package.manifest(), sort_keys=True, indent=1).encode()
    when = dt.datetime.fromisoformat(package.build_date)
    if package.installer == "msu":
        return build_cab([*_msu_members(package, manifest), *extra], when)
    engine = "Update.exe" if package.installer == "update" else "Hotfix.exe"
    image = pe.pe_bytes(package.filename, "6.3.4.1" if package.installer == "update" else "5.0.2195.1", None, {
        "FileDescription": f"Hotfix for Windows ({package.hotfix_id})",
        "Installer Engine": engine,
        # The strings sigcheck and Explorer show for Microsoft's update.exe / hotfix.exe packages.
        "KB Article Number": re.sub(r"^(KB|Q)", "", package.hotfix_id),
        "Proc. Architecture": package.architecture,
        "Language": "0x0409",
        "Package Type": "Hotfix",
        "Applies to": _applies_to(package),
        "Support Link": f"http://support.microsoft.com?kbid={re.sub(r'^(KB|Q)', '', package.hotfix_id)}",
        "InternalName": package.hotfix_id,
    })
    return image + build_cab([(MANIFEST_NAME, manifest), *extra], when)


def _applies_to(package: Package) -> str:
    versions = {t.os_version.split(".")[0] + "." + t.os_version.split(".")[1] for t in package.targets}
    names = {"4.0": "Microsoft Windows NT 4.0", "5.0": "Microsoft Windows 2000", "5.1": "Microsoft Windows XP",
             "5.2": "Microsoft Windows Server 2003"}
    return ", ".join(names.get(v, v) for v in sorted(versions))


def write_package(filename: str | Package, directory: Path, size: int | None = None, *,
                  signed: bool = True) -> Path:
    """Write a package into ``directory`` (a share directory or a test's temp dir): a catalogue package by
    file name, or a ``Package`` the caller describes; ``size`` as for ``package_bytes``; signed by winsim's
    test CA (``signing.signing_ca()``) as Microsoft signs its packages, unless ``signed`` is false."""
    package = catalogue_package(filename) if isinstance(filename, str) else filename
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / package.filename
    target.write_bytes(package_bytes(package, size))
    if signed:
        from .signing import signing_ca

        signing_ca().sign(target)
        if size is not None:
            # A real package's size includes its signature: build the payload that much smaller, sign again.
            overhead = target.stat().st_size - size
            if overhead > 0:
                target.write_bytes(package_bytes(package, size - overhead))
                signing_ca().sign(target)
    return target


def _msu_members(package: Package, manifest: bytes) -> list[tuple[str, bytes]]:
    base = package.filename.rsplit(".", 1)[0]
    product = "Windows Server 2008 R2" if base.startswith("Windows6.1") else (
        "Windows Vista" if package.hotfix_id == "KB938475" else "Windows Server 2008")
    props = "\r\n".join([
        f'ApplicabilityInfo="{product}"', f'Applies to="{product}"', 'Company="Microsoft Corporation"',
        'File Version="6"', 'Installation Type="QFE"', 'Installer Engine="Component Based Servicing"',
        f'KB Article Number="{package.hotfix_id[2:]}"', f'Package Type="{package.release_type}"',
        f'Processor Architecture="{CBS_ARCH[package.architecture]}"', f'Product Name="{product}"',
        f'Support Link="http://support.microsoft.com/?kbid={package.hotfix_id[2:]}"',
    ]) + "\r\n"
    packages = sorted({n for t in package.targets for n in t.cbs_packages})
    unattend = '<?xml version="1.0" encoding="UTF-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend">\n' \
        '<servicing>\n' + "".join(
            f'<package action="install"><assemblyIdentity name="{n.split("~")[0]}" version="{n.split("~")[-1]}" '
            f'processorArchitecture="{n.split("~")[2]}" publicKeyToken="31bf3856ad364e35" language="neutral"/>'
            '</package>\n' for n in packages) + "</servicing>\n</unattend>\n"
    return [(f"{base}-pkgProperties.txt", props.encode("utf-16")), (f"{base}.xml", unattend.encode()),
            (MANIFEST_NAME, manifest)]


def read_manifest(data: bytes, filename: str) -> Package:
    """The package inside a file; CorruptPackageError when it cannot be read back intact."""
    if filename.casefold().endswith(".msu"):
        members = read_cab(data)
    else:
        info = pe.read_version_info(data)
        if info is None or "Installer Engine" not in info.strings:
            raise CorruptPackageError("not a hotfix package")
        start = data.find(b"MSCF", _pe_image_end(data))
        if start < 0:
            raise CorruptPackageError("the package's cabinet is missing")
        members = read_cab(data[start:])
    raw = members.get(MANIFEST_NAME)
    if raw is None:
        raise CorruptPackageError("the package has no manifest")
    try:
        return Package.from_manifest(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptPackageError(f"unreadable manifest: {exc}") from exc


def _pe_image_end(data: bytes) -> int:
    pe_offset = struct.unpack_from("<I", data, 0x3C)[0]
    sections = struct.unpack_from("<H", data, pe_offset + 6)[0]
    optional = struct.unpack_from("<H", data, pe_offset + 20)[0]
    table = pe_offset + 24 + optional
    end = 0
    for i in range(sections):
        raw_size, raw_ptr = struct.unpack_from("<II", data, table + 40 * i + 16)
        end = max(end, raw_ptr + raw_size)
    return end


# --- MS-CAB (uncompressed folder), written and verified per the MS-CAB format ----------------------------


def _cab_checksum(data: bytes, seed: int) -> int:
    whole = len(data) // 4
    checksum = seed ^ _xor_words(data[: whole * 4])
    tail = data[whole * 4:]
    extra = 0
    for byte in tail:  # the leftover bytes count most-significant first
        extra = (extra << 8) | byte
    return checksum ^ extra


def _xor_words(data: bytes) -> int:
    """The XOR of the little-endian 32-bit words of ``data`` (a multiple of 4 bytes long), folded as one
    integer that halves each round: C-level work, so checking a 3 MB cabinet takes milliseconds of the
    interpreter every host of the fleet shares, not a loop over 750,000 words."""
    value, words = int.from_bytes(data, "little"), len(data) // 4
    while words > 1:
        low = words // 2
        value = (value >> (32 * low)) ^ (value & ((1 << (32 * low)) - 1))
        words -= low
    return value


def _dos_datetime(when: dt.datetime) -> tuple[int, int]:
    return ((when.year - 1980) << 9) | (when.month << 5) | when.day, \
        (when.hour << 11) | (when.minute << 5) | (when.second // 2)


def build_cab(members: list[tuple[str, bytes]], when: dt.datetime) -> bytes:
    stream = b"".join(data for _, data in members)
    blocks = [stream[i:i + 32768] for i in range(0, len(stream), 32768)] or [b""]
    date, time_ = _dos_datetime(when)
    entries = []
    offset = 0
    for name, data in members:
        entries.append(struct.pack("<IIHHHH", len(data), offset, 0, date, time_, 0x20) + name.encode() + b"\0")
        offset += len(data)
    header_size, folder_size = 36, 8
    files_offset = header_size + folder_size
    data_offset = files_offset + sum(len(e) for e in entries)
    data_blocks = []
    for block in blocks:
        sizes = struct.pack("<HH", len(block), len(block))
        data_blocks.append(struct.pack("<I", _cab_checksum(sizes, _cab_checksum(block, 0))) + sizes + block)
    total = data_offset + sum(len(b) for b in data_blocks)
    header = b"MSCF" + struct.pack("<IIIIIBBHHHHH", 0, total, 0, files_offset, 0, 3, 1, 1, len(members), 0,
                                   0x4B42, 0)
    folder = struct.pack("<IHH", data_offset, len(data_blocks), 0)
    return header + folder + b"".join(entries) + b"".join(data_blocks)


def read_cab(data: bytes) -> dict[str, bytes]:
    try:
        return _read_cab(data)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise CorruptPackageError(f"damaged cabinet: {exc}") from exc


def _read_cab(data: bytes) -> dict[str, bytes]:
    if data[:4] != b"MSCF":
        raise CorruptPackageError("not a cabinet (no MSCF signature)")
    (total, files_offset, _minor, _major, folders, files, flags) = struct.unpack_from("<4xI4xI4xBBHHH", data, 4)
    # cfhdrRESERVE_PRESENT (4) is the only flag: a signed cabinet keeps its Authenticode pointer there.
    if total > len(data) or flags & ~4 or folders != 1:
        raise CorruptPackageError("truncated or unsupported cabinet")
    folder_at, data_reserve = 36, 0
    if flags & 4:
        header_reserve, _folder_reserve, data_reserve = struct.unpack_from("<HBB", data, 36)
        folder_at = 40 + header_reserve
    data_offset, block_count, compression = struct.unpack_from("<IHH", data, folder_at)
    if compression != 0:
        raise CorruptPackageError("compressed cabinets are not used by winsim")
    stream = bytearray()
    pos = data_offset
    for _ in range(block_count):
        checksum, compressed, uncompressed = struct.unpack_from("<IHH", data, pos)
        start = pos + 8 + data_reserve
        block = data[start: start + compressed]
        if len(block) != compressed or compressed != uncompressed:
            raise CorruptPackageError("truncated data block")
        if checksum and checksum != _cab_checksum(data[pos + 4: start], _cab_checksum(block, 0)):
            raise CorruptPackageError("data block checksum mismatch")
        stream += block
        pos = start + compressed
    members: dict[str, bytes] = {}
    pos = files_offset
    for _ in range(files):
        size, offset, _folder, _date, _time, _attrs = struct.unpack_from("<IIHHHH", data, pos)
        end = data.index(b"\0", pos + 16)
        name = data[pos + 16:end].decode()
        if offset + size > len(stream):
            raise CorruptPackageError(f"{name} lies outside the cabinet's data")
        members[name] = bytes(stream[offset:offset + size])
        pos = end + 1
    return members


# --- running an installer -----------------------------------------------------------------------------


@dataclass
class InstallOutcome:
    exit_code: int
    hang: bool = False  # a GUI is waiting for a user: the process never ends by itself
    stdout: str = ""
    reboot: bool = False  # the installer restarts the host after exiting
    log: list[str] = field(default_factory=list)


@dataclass
class _Options:
    unattended: bool = False
    norestart: bool = False
    forcerestart: bool = False
    backup: bool = True
    log_path: str | None = None


def _switches(installer: str, args: list[str]) -> _Options | int:
    opts = _Options()
    for arg in args:
        if not arg or arg[0] not in "/-":
            return EXIT_INVALID_SWITCH
        word = arg[1:].casefold()
        name = word.partition(":")[0]
        if installer == "hotfix":
            if word in ("m", "q"):
                opts.unattended = True
            elif word == "z":
                opts.norestart = True
            elif word == "n":
                opts.backup = False
            elif word == "f":
                continue  # force applications to close at shutdown
            else:
                return EXIT_INVALID_SWITCH
        elif name in ("quiet", "q", "passive", "u"):
            opts.unattended = True
        elif name in ("norestart", "z"):
            opts.norestart = True
        elif name == "forcerestart":
            opts.forcerestart = True
        elif name == "n" and installer == "update":
            opts.backup = False
        elif name in ("o", "f") and installer == "update":
            continue  # overwrite OEM files silently; force applications to close at shutdown
        elif name == "log" and installer == "update":
            opts.log_path = arg.split(":", 1)[1] if ":" in arg else None
        elif name in ("warnrestart", "promptrestart"):
            continue
        else:
            return EXIT_INVALID_SWITCH
    return opts


def run_executable(host: Host, path: str, data: bytes, args: list[str]) -> InstallOutcome | None:
    """Run a package .exe. None when the file is a PE but not a hotfix package (cmd then reports that it
    cannot run it)."""
    info = pe.read_version_info(data)
    if info is None or "Installer Engine" not in info.strings:
        return None
    engine = info.strings["Installer Engine"].casefold()
    if engine == "spuninst.exe":
        return _run_classic_uninstall(host, path, args, "update", info.strings.get("InternalName", ""))
    installer = "hotfix" if engine == "hotfix.exe" else "update"
    if installer == "hotfix" and any(a.casefold() in ("-y", "/y") for a in args):
        # hotfix.exe -y: uninstall mode (of the package itself or of the copy in $NtUninstallQ...$).
        rest = [a for a in args if a.casefold() not in ("-y", "/y")]
        return _run_classic_uninstall(host, path, rest, "hotfix", info.strings.get("InternalName", ""))
    opts = _switches(installer, args)
    if isinstance(opts, int):
        return InstallOutcome(opts, hang=True)  # the usage dialog waits for OK
    if not opts.unattended:
        return InstallOutcome(EXIT_OK, hang=True)
    try:
        package = read_manifest(data, ntpath.basename(path))
    except CorruptPackageError as exc:
        outcome = InstallOutcome(EXIT_CORRUPT, log=[f"Extraction failed: {exc}"])
        if installer == "hotfix":
            return outcome
        return _finish_log(host, info.strings.get("InternalName", "update"), opts, outcome)
    outcome = _install(host, package, opts)
    return outcome if installer == "hotfix" else _finish_log(host, package.hotfix_id, opts, outcome)


def run_wusa(host: Host, path: str, data: bytes | None, args: list[str]) -> InstallOutcome:
    """``wusa.exe <file.msu> [/quiet] [/norestart]``; ``data`` None when the file does not exist.
    ``/uninstall`` (with ``/kb:N`` or the .msu) exists from Windows 7 / 2008 R2 on; older wusa shows its
    usage dialog."""
    if any(a.casefold() == "/uninstall" for a in args):
        return _wusa_uninstall(host, path, data, [a for a in args if a.casefold() != "/uninstall"])
    opts = _switches("msu", args)
    if isinstance(opts, int) or not opts.unattended:
        return InstallOutcome(EXIT_OK, hang=True)
    if data is None:
        return InstallOutcome(EXIT_FILE_NOT_FOUND_MSU)
    try:
        package = read_manifest(data, path if path.casefold().endswith(".msu") else path + ".msu")
    except CorruptPackageError:
        return InstallOutcome(EXIT_CORRUPT_MSU)
    if package.installer != "msu":
        return InstallOutcome(EXIT_CORRUPT_MSU)
    return _install(host, package, opts)


def _finish_log(host: Host, package_id: str, opts: _Options, outcome: InstallOutcome) -> InstallOutcome:
    # update.exe writes %SystemRoot%\<KB>.log (or /log:), hotfix.exe nothing worth simulating.
    target = opts.log_path or f"{host.system_root}\\{package_id}.log"
    lines = [f"{utc_now():%H:%M:%S.000} ({package_id}) {line}" for line in
             ["Installation started", *outcome.log, f"Exit code {outcome.exit_code}"]]
    try:
        host.fs.write(host.expand(target), ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace"), append=True)
    except Exception:  # noqa: S110 -- a log that cannot be written does not change the install result
        pass
    return outcome


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _select_target(host: Host, package: Package) -> tuple[Target | None, int | None, str]:
    """(target, None, "") when it applies; (None, exit code, reason) otherwise."""
    msu = package.installer == "msu"
    not_for_platform = EXIT_NOT_APPLICABLE if msu else EXIT_WRONG_PLATFORM
    if package.architecture != host.os.architecture:
        return None, not_for_platform, f"package is for {package.architecture}, host is {host.os.architecture}"
    same_os = [t for t in package.targets if t.os_version == host.os.version]
    if not same_os:
        fixed = [t for t in package.targets if t.fixed_in_sp is not None
                 and t.os_version.rsplit(".", 1)[0] == host.os.version.rsplit(".", 1)[0]
                 and int(host.os.build) > int(t.os_version.rsplit(".", 1)[1])]
        if fixed:
            return None, EXIT_NOT_APPLICABLE, "a newer service pack already contains this update"
        return None, not_for_platform, f"package is not for Windows {host.os.version}"
    for target in same_os:
        if host.os.sp_major not in target.service_packs:
            continue
        if host.os.product_type not in target.product_types:
            return None, EXIT_NOT_APPLICABLE, "package is not for this product type"
        if target.r2_only and host.os.other_type_description != "R2":
            return None, EXIT_NOT_APPLICABLE, "package needs Windows Server 2003 R2"
        if target.suite_mask and not host.os.suite_mask & target.suite_mask:
            return None, EXIT_NOT_APPLICABLE, "package needs Terminal Server Edition"
        missing = [r for r in target.requires if host.fs.entry(host.expand(r)) is None]
        if missing:
            return None, EXIT_NOT_APPLICABLE, f"component not installed ({', '.join(missing)})"
        return target, None, ""
    return None, EXIT_NOT_APPLICABLE, f"package does not apply to service pack {host.os.sp_major}"


def _install(host: Host, package: Package, opts: _Options) -> InstallOutcome:
    outcome, installed = _install_outcome(host, package, opts)
    host.installer_runs.append({"hotfix_id": package.hotfix_id, "installer": package.installer,
                                "exit_code": outcome.exit_code, "installed": installed})
    host.save()
    if outcome.reboot:
        host.reboot(RESTART_DELAY_SECONDS)
    return outcome


def _install_outcome(host: Host, package: Package, opts: _Options) -> tuple[InstallOutcome, bool]:
    """What the installer does to the host, and whether it installed anything (the restart is the caller's)."""
    target, code, reason = _select_target(host, package)
    if target is None:
        assert code is not None
        return InstallOutcome(code, log=[reason]), False
    if _already_installed(host, package, target):
        return InstallOutcome(EXIT_ALREADY_INSTALLED, log=["This update is already installed"]), False
    todo = [f for f in target.files if _needs_update(host, f)]
    if package.installer == "msu":
        if not any(f.version for f in todo):
            return InstallOutcome(EXIT_NOT_APPLICABLE, log=["newer files are already installed"]), False
        pending = _install_cbs(host, package, target, todo)
    else:
        pending = _install_classic(host, package, todo, opts)
        _write_classic_record(host, package, pending)
    restart_needed = pending or (package.installer == "hotfix" and package.restart)
    reboot = opts.forcerestart or (restart_needed and not opts.norestart)
    if package.installer == "hotfix":
        code = EXIT_OK
    else:
        code = EXIT_RESTART if pending else EXIT_OK
    return InstallOutcome(code, reboot=reboot, log=[f"installed {len(todo)} file(s)"]), True


def _already_installed(host: Host, package: Package, target: Target) -> bool:
    from .machine import CBS_INSTALL_PENDING, CBS_KEY, NT_HOTFIX_KEY

    if package.installer == "msu":
        for name in target.cbs_packages:
            state = host.registry.get(f"{CBS_KEY}\\Packages\\{name}", "CurrentState")
            if state is not None and isinstance(state.data, int) and state.data >= CBS_INSTALL_PENDING:
                return True
        return False
    if package.installer == "hotfix":
        return host.registry.open(f"{NT_HOTFIX_KEY}\\{package.hotfix_id}") is not None
    return host.registry.open(_updates_key(package)) is not None


def _needs_update(host: Host, fix: FileFix) -> bool:
    path = host.expand(fix.path)
    entry = host.fs.entry(path)
    if entry is None:
        return True
    if fix.version is None:
        return entry.size != fix.size
    present = host.file_version(path)
    try:
        return present is None or pe.numeric_version(present) < pe.numeric_version(fix.version)
    except ValueError:
        return True


def _fix_spec(fix: FileFix) -> dict[str, Any]:
    return {"version": fix.version, "size": fix.size, "modified": fix.modified}


def _install_classic(host: Host, package: Package, todo: list[FileFix], opts: _Options) -> bool:
    """update.exe / hotfix.exe: replace what is free now, queue what is in use. True when a reboot is needed."""
    from .machine import add_file

    backup_dir = f"{host.system_root}\\$NtUninstall{package.hotfix_id}$"
    if opts.backup:
        host.fs.mkdir(backup_dir)
    renames: list[str] = []
    undo: list[str] = []
    for fix in todo:
        dest = host.expand(fix.path)
        entry = host.fs.entry(dest)
        if entry is not None and opts.backup:
            backup = _backup_path(host, backup_dir, dest)
            host.fs.mkdir(ntpath.dirname(backup))
            host.fs.place(backup, entry.ref, entry.size, entry.modified)
            undo.append(f"Restore={entry.path}|{backup}")
        elif entry is None:
            undo.append(f"Remove={normalize_path(dest)}")
        if entry is not None and host.file_in_use(dest):
            staged = _staging_name(host, ntpath.dirname(dest))
            add_file(host, staged, _fix_spec(fix))
            renames += ["\\??\\" + staged, "!\\??\\" + dest]
        else:
            add_file(host, dest, _fix_spec(fix))
    _queue_renames(host, renames)
    if opts.backup:
        _write_uninstaller(host, package, backup_dir, undo)
    return bool(renames)


def _queue_renames(host: Host, renames: list[str]) -> None:
    from .machine import REG_MULTI_SZ, SESSION_MANAGER

    if renames:
        current = host.registry.get(SESSION_MANAGER, "PendingFileRenameOperations")
        existing = list(current.data) if current is not None and isinstance(current.data, list) else []
        host.registry.set(SESSION_MANAGER, "PendingFileRenameOperations", REG_MULTI_SZ, existing + renames)


def _backup_path(host: Host, backup_dir: str, dest: str) -> str:
    # WOW64 copies share their name with the native file: update.exe keeps them in a "wow" subfolder.
    wow = normalize_path(f"{host.system_root}\\SysWOW64").casefold() + "\\"
    sub = "wow\\" if normalize_path(dest).casefold().startswith(wow) else ""
    return f"{backup_dir}\\{sub}{ntpath.basename(dest)}"


def _write_uninstaller(host: Host, package: Package, backup_dir: str, undo: list[str]) -> None:
    """The uninstaller an install leaves behind: ``spuninst\\spuninst.exe`` + ``spuninst.inf`` (update.exe)
    or ``hotfix.exe`` + ``hotfix.inf`` (NT 4.0), a real PE and an INF-style list of what to undo."""
    from .machine import add_file

    keys = [f"Key={k}" for k in _record_keys(package)]
    inf = "\r\n".join(['[Version]', 'Signature="$Windows NT$"', "", "[winsim.Uninstall]",
                        f"HotfixId={package.hotfix_id}", *keys, *undo, ""])
    if package.installer == "hotfix":
        folder, exe, engine, version = backup_dir, "hotfix.exe", "Hotfix.exe", "5.0.2195.1"
        inf_name = "hotfix.inf"
    else:
        folder, exe, engine, version = f"{backup_dir}\\spuninst", "spuninst.exe", "Spuninst.exe", "6.3.4.1"
        inf_name = "spuninst.inf"
    host.fs.mkdir(folder)
    built = pe.build_pe(exe, version, None, {"Installer Engine": engine, "InternalName": package.hotfix_id})
    digest, length = host.fs.link_blob(built)
    host.fs.place(f"{folder}\\{exe}", f"blob:{digest}", length, utc_now())
    add_file(host, f"{folder}\\{inf_name}", {"text": inf, "modified": utc_now()})


def _record_keys(package: Package) -> list[str]:
    from .machine import NT_HOTFIX_KEY

    if package.installer == "hotfix":
        return [f"{NT_HOTFIX_KEY}\\{package.hotfix_id}"]
    return [_updates_key(package),
            f"HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{package.hotfix_id}"]


def _staging_name(host: Host, directory: str) -> str:
    number = 1
    while host.fs.entry(f"{directory}\\SET{number:X}.tmp") is not None:
        number += 1
    return f"{directory}\\SET{number:X}.tmp"


def _updates_key(package: Package) -> str:
    from .machine import UPDATES_KEY

    return f"{UPDATES_KEY}\\{package.record_product}\\{package.record_sp}\\{package.hotfix_id}"


def _write_classic_record(host: Host, package: Package, reboot_pending: bool) -> None:
    from .machine import NT_HOTFIX_KEY, REG_DWORD, REG_SZ, UPDATES_KEY

    now = utc_now()
    date = f"{now.month}/{now.day}/{now.year}"
    reg = host.registry
    if package.installer == "hotfix":
        key = f"{NT_HOTFIX_KEY}\\{package.hotfix_id}"
        for name, type_, data in (
            ("Comments", REG_SZ, package.description), ("Fix Description", REG_SZ, package.description),
            ("Installed", REG_DWORD, 1), ("Installed By", REG_SZ, host.user), ("Installed On", REG_SZ, date),
            ("Service Pack", REG_DWORD, host.os.sp_major + 1), ("Valid", REG_DWORD, 1),
        ):
            reg.set(key, name, type_, data)
        return
    title = f"{package.record_product} Hotfix - {package.hotfix_id}"
    key = _updates_key(package)
    uninstall = f"{host.system_root}\\$NtUninstall{package.hotfix_id}$\\spuninst\\spuninst.exe"
    for name, type_, data in (
        ("Description", REG_SZ, title), ("InstalledBy", REG_SZ, host.user), ("InstalledDate", REG_SZ, date),
        ("Type", REG_SZ, package.release_type), ("UninstallCommand", REG_SZ, uninstall),
    ):
        reg.set(key, name, type_, data)
    apps = f"HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{package.hotfix_id}"
    for name, type_, data in (
        ("DisplayName", REG_SZ, title), ("Publisher", REG_SZ, "Microsoft Corporation"),
        ("ParentKeyName", REG_SZ, "OperatingSystem"), ("ParentDisplayName", REG_SZ,
                                                         f"{package.record_product} - Software Updates"),
        ("ReleaseType", REG_SZ, package.release_type), ("UninstallString", REG_SZ, uninstall),
        ("InstallDate", REG_SZ, f"{now:%Y%m%d}"), ("SystemComponent", REG_DWORD, 0),
    ):
        reg.set(apps, name, type_, data)
    if reboot_pending:
        reg.create(f"{UPDATES_KEY}\\UpdateExeVolatile", volatile=True)
        reg.set(f"{UPDATES_KEY}\\UpdateExeVolatile", "Flags", REG_DWORD, 1)


def _install_cbs(host: Host, package: Package, target: Target, todo: list[FileFix]) -> bool:
    """Stage in WinSxS, queue hard links in pending.xml, register the packages as install-pending."""
    from .machine import CBS_INSTALL_PENDING, CBS_KEY, add_file

    pending_path = f"{host.system_root}\\winsxs\\pending.xml"
    root = ET.fromstring(host.fs.read(pending_path)) if host.fs.entry(pending_path) else ET.Element("POQ")
    root.set("postAction", "reboot")
    undo: list[tuple[str, str | None]] = []  # (destination, previous version in WinSxS or None)
    for fix in todo:
        component = fix.component or "microsoft-windows-" + ntpath.basename(fix.path).split(".")[0].lower()
        dest = host.expand(fix.path)
        current = host.fs.entry(dest)
        if current is not None:
            # The component store keeps the version being replaced, which is what an uninstall goes back to.
            old_version = host.file_version(dest)
            backup = _winsxs_path(host, component, old_version, target, ntpath.basename(current.path),
                                  current.size)
            if host.fs.entry(backup) is None:
                host.fs.mkdir(ntpath.dirname(backup))
                host.fs.place(backup, current.ref, current.size, current.modified)
            undo.append((dest, backup))
        else:
            undo.append((dest, None))
        staged = _winsxs_path(host, component, fix.version, target, ntpath.basename(fix.path), fix.size)
        host.fs.mkdir(ntpath.dirname(staged))
        add_file(host, staged, _fix_spec(fix))
        ET.SubElement(root, "HardlinkFile", source="\\??\\" + staged, destination=_relative(host, dest))
    host.fs.write(pending_path, ET.tostring(root, encoding="utf-8"))
    host.registry.create(CBS_KEY + "\\RebootPending", volatile=True)
    for manifest in target.manifests:
        # Staging writes the component manifests into the store at once; they outlive an uninstall.
        add_file(host, manifest.path, {"text": _manifest_text(host, manifest), "size": manifest.size,
                                       "modified": manifest.modified})
    mums = {ntpath.basename(m.path).casefold(): m for m in target.mums}
    for index, name in enumerate(target.cbs_packages):
        # The first package of a KB carries the files (winsim does not split them among its packages).
        write_cbs_package(host, name, package.hotfix_id, package.release_type, CBS_INSTALL_PENDING, utc_now(),
                          client="WUSA", undo=undo if index == 0 else [], mum=mums.get(f"{name}.mum".casefold()))
    return True


def _manifest_text(host: Host, manifest: FileFix) -> str:
    stem = ntpath.basename(manifest.path).rsplit(".", 1)[0]
    parts = stem.split("_")
    arch, name, version, culture = parts[0], "_".join(parts[1:-4]), parts[-3], parts[-2]
    language = "neutral" if culture == "none" else culture
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<assembly xmlns="urn:schemas-microsoft-com:'
            f'asm.v3" manifestVersion="1.0"><assemblyIdentity name="{name}" version="{version}" '
            f'processorArchitecture="{arch}" language="{language}" publicKeyToken="31bf3856ad364e35" '
            'buildType="release" versionScope="nonSxS"/></assembly>\r\n')


def _winsxs_path(host: Host, component: str, version: str | None, target: Target, name: str, size: int) -> str:
    arch = CBS_ARCH[host.os.architecture]
    text = ".".join(map(str, pe.numeric_version(version))) if version else target.os_version + ".0"
    prefix = f"{arch}_{component}_31bf3856ad364e35_{text}_".casefold()
    for manifest in target.manifests:
        # A component the article lists lives in the folder named like its manifest.
        stem = ntpath.basename(manifest.path).rsplit(".", 1)[0]
        if stem.casefold().startswith(prefix) and version:
            return f"{host.system_root}\\winsxs\\{stem}\\{name}"
    # A file without a version (a .mof) is told apart by its size, or old and new would share a folder.
    salt = "" if version else str(size)
    digest = hashlib.sha256(f"{component}{text}{arch}{salt}".encode()).hexdigest()[:16]
    return f"{host.system_root}\\winsxs\\{arch}_{component}_31bf3856ad364e35_{text}_none_{digest}\\{name}"


def _relative(host: Host, path: str) -> str:
    if path.casefold().startswith(host.system_root.casefold()):
        return "\\SystemRoot" + path[len(host.system_root):]
    return path


def write_cbs_package(host: Host, name: str, hotfix_id: str, release_type: str, state: int,
                      installed: dt.datetime, client: str = "WindowsUpdateAgent",
                      undo: list[tuple[str, str | None]] | None = None, mum: FileFix | None = None) -> None:
    """The CBS package key and its ``.mum``; ``undo`` (destination, previous file or None) goes into the .mum
    as winsim's record of what removing the package restores."""
    from .machine import CBS_KEY, REG_DWORD, REG_EXPAND_SZ, REG_SZ, filetime

    key = f"{CBS_KEY}\\Packages\\{name}"
    stamp = filetime(installed)
    reg = host.registry
    for value, type_, data in (
        ("CurrentState", REG_DWORD, state), ("InstallClient", REG_SZ, client),
        ("InstallLocation", REG_SZ, f"\\\\?\\{host.system_root}\\SoftwareDistribution\\Download\\{hotfix_id}"),
        ("InstallName", REG_SZ, f"{name.split('~')[0]}.mum"), ("InstallTimeHigh", REG_DWORD, stamp >> 32),
        ("InstallTimeLow", REG_DWORD, stamp & 0xFFFFFFFF), ("InstallUser", REG_SZ, host.registry.user_sid),
        ("SelfUpdate", REG_DWORD, 0), ("Visibility", REG_DWORD, 1),
        ("LastProgressState", REG_DWORD, state), ("Trusted", REG_EXPAND_SZ, "yes"),
    ):
        reg.set(key, value, type_, data)
    mum_dir = f"{host.system_root}\\servicing\\Packages"
    host.fs.mkdir(mum_dir)
    text = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<assembly xmlns="urn:schemas-microsoft-com:asm.v3" '
           f'manifestVersion="1.0"><assemblyIdentity name="{name.split("~")[0]}" '
           f'version="{name.split("~")[-1]}" processorArchitecture="{name.split("~")[2]}" language="neutral" '
           f'publicKeyToken="31bf3856ad364e35"/><package identifier="{hotfix_id}" releaseType="{release_type}" '
           f'restart="required">{_undo_xml(host, undo or [])}</package></assembly>\r\n')
    from .machine import add_file

    spec: dict[str, Any] = {"text": text, "modified": installed}
    if mum is not None and mum.size > len(text):
        # Padded to the article's size with an XML comment, so size checks see the article's file.
        filler = mum.size - len(text) - len("<!---->\r\n")
        spec = {"text": text + "<!--" + " " * max(filler, 0) + "-->\r\n", "modified": mum.modified}
    add_file(host, f"{mum_dir}\\{name}.mum", spec)


# --- removing a hotfix ----------------------------------------------------------------------------------


def _run_classic_uninstall(host: Host, exe: str, args: list[str], installer: str, hotfix_id: str) -> InstallOutcome:
    """spuninst.exe (update.exe family) or ``hotfix.exe -y``: undo what the INF next to it lists."""
    opts = _switches(installer, args)
    if isinstance(opts, int) or not opts.unattended:
        return InstallOutcome(EXIT_OK, hang=True)
    here = ntpath.dirname(normalize_path(exe))
    if installer == "update":
        inf = f"{here}\\spuninst.inf"
    elif ntpath.basename(here).casefold().startswith("$ntuninstall"):
        inf = f"{here}\\hotfix.inf"
    else:
        inf = f"{host.system_root}\\$NtUninstall{hotfix_id}$\\hotfix.inf"
    entry = host.fs.entry(inf)
    if entry is None:
        return InstallOutcome(EXIT_NO_UNINSTALL_DATA, log=[f"{inf} not found"])
    lines = host.fs.read(inf).decode("latin-1").splitlines()
    values = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("Signature")]
    renames: list[str] = []
    for name, value in values:
        if name == "Restore":
            dest, backup = value.split("|", 1)
            saved = host.fs.entry(backup)
            if saved is None:
                continue
            if host.file_in_use(dest):
                staged = _staging_name(host, ntpath.dirname(dest))
                host.fs.place(staged, saved.ref, saved.size, saved.modified)
                renames += ["\\??\\" + staged, "!\\??\\" + dest]
            else:
                host.fs.place(dest, saved.ref, saved.size, saved.modified)
        elif name == "Remove" and host.fs.entry(value) is not None:
            if host.file_in_use(value):
                renames += ["\\??\\" + value, ""]
            else:
                host.fs.delete(value)
        elif name == "Key":
            host.registry.delete_key(value, recursive=True)
    _queue_renames(host, renames)
    _remove_tree(host, ntpath.dirname(inf) if installer == "hotfix" else ntpath.dirname(here))
    pending = bool(renames)
    if pending and installer == "update":
        from .machine import REG_DWORD, UPDATES_KEY

        host.registry.create(f"{UPDATES_KEY}\\UpdateExeVolatile", volatile=True)
        host.registry.set(f"{UPDATES_KEY}\\UpdateExeVolatile", "Flags", REG_DWORD, 1)
    return _finish_removal(host, opts, pending, classic=installer == "hotfix")


def _remove_tree(host: Host, folder: str) -> None:
    prefix = normalize_path(folder).casefold() + "\\"
    for key in [k for k in host.fs.files if k.startswith(prefix)]:
        host.fs.delete(host.fs.files[key].path)
    for key in sorted((k for k in host.fs.dirs if k.startswith(prefix) or k == prefix[:-1]), key=len, reverse=True):
        del host.fs.dirs[key]


def _finish_removal(host: Host, opts: _Options, pending: bool, classic: bool = False) -> InstallOutcome:
    host.save()
    reboot = opts.forcerestart or (pending and not opts.norestart)
    if reboot:
        host.reboot(RESTART_DELAY_SECONDS)
    code = EXIT_RESTART if pending and not classic else EXIT_OK
    return InstallOutcome(code, reboot=reboot, log=["removed"])


def _wusa_uninstall(host: Host, path: str, data: bytes | None, args: list[str]) -> InstallOutcome:
    from .machine import CBS_KEY

    if (host.os.major, host.os.minor) < (6, 1):
        return InstallOutcome(EXIT_OK, hang=True)  # Vista/2008 wusa has no /uninstall: its usage dialog
    kb = next((a.split(":", 1)[1] for a in args if a.casefold().startswith("/kb:")), None)
    opts = _switches("msu", [a for a in args if not a.casefold().startswith("/kb:")])
    if isinstance(opts, int) or not opts.unattended:
        return InstallOutcome(EXIT_OK, hang=True)
    packages_key = host.registry.open(CBS_KEY + "\\Packages")
    names = [k.name for k in (packages_key.subkeys.values() if packages_key else [])]
    if kb is not None:
        pattern = re.compile(rf"_for_KB{re.escape(kb.upper().removeprefix('KB'))}(?:_[^~]*)?~", re.IGNORECASE)
        wanted = [n for n in names if pattern.search(n)]
    elif data is not None:
        try:
            package = read_manifest(data, path)
        except CorruptPackageError:
            return InstallOutcome(EXIT_CORRUPT_MSU)
        listed = {n.casefold() for t in package.targets for n in t.cbs_packages}
        wanted = [n for n in names if n.casefold() in listed]
    else:
        return InstallOutcome(EXIT_FILE_NOT_FOUND_MSU)
    present = [n for n in wanted if _cbs_state(host, n) >= 0x60]
    if not present:
        return InstallOutcome(EXIT_ALREADY_UNINSTALLED)
    _uninstall_cbs(host, present)
    return _finish_removal(host, opts, pending=True)


def run_pkgmgr(host: Host, args: list[str]) -> InstallOutcome:
    """``pkgmgr /up:<package> [/quiet] [/norestart]``: remove one CBS package."""
    removals = [a.split(":", 1)[1] for a in args if a.casefold().startswith("/up:")]
    opts = _switches("msu", [a for a in args if not a.casefold().startswith("/up:")])
    if isinstance(opts, int) or not removals:
        return InstallOutcome(EXIT_INVALID_SWITCH)
    if not opts.unattended:
        return InstallOutcome(EXIT_OK, hang=True)  # the restart question waits for a user
    from .machine import CBS_KEY

    packages_key = host.registry.open(CBS_KEY + "\\Packages")
    found = []
    for wanted in removals:
        key = packages_key.child(wanted) if packages_key else None
        if key is None or _cbs_state(host, key.name) < 0x60:
            return InstallOutcome(EXIT_PACKAGE_NOT_INSTALLED)
        found.append(key.name)
    _uninstall_cbs(host, found)
    return _finish_removal(host, opts, pending=True)


def _cbs_state(host: Host, name: str) -> int:
    from .machine import CBS_KEY

    value = host.registry.get(f"{CBS_KEY}\\Packages\\{name}", "CurrentState")
    return value.data if value is not None and isinstance(value.data, int) else 0


def _uninstall_cbs(host: Host, names: list[str]) -> None:
    """Queue the previous component versions (from each package's .mum) and mark the packages
    uninstall-pending; the next boot finishes the job."""
    from .machine import CBS_KEY, REG_DWORD

    pending_path = f"{host.system_root}\\winsxs\\pending.xml"
    root = ET.fromstring(host.fs.read(pending_path)) if host.fs.entry(pending_path) else ET.Element("POQ")
    root.set("postAction", "reboot")
    for name in names:
        mum = f"{host.system_root}\\servicing\\Packages\\{name}.mum"
        if host.fs.entry(mum) is not None:
            manifest = ET.fromstring(host.fs.read(mum))
            for element in manifest.iter():
                tag = element.tag.rsplit("}", 1)[-1]
                if tag == "winsimRestore":
                    ET.SubElement(root, "HardlinkFile", source=element.get("source", ""),
                                  destination=element.get("destination", ""))
                elif tag == "winsimRemove":
                    ET.SubElement(root, "DeleteFile", path=element.get("destination", ""))
        host.registry.set(f"{CBS_KEY}\\Packages\\{name}", "CurrentState", REG_DWORD, CBS_UNINSTALL_PENDING)
    host.fs.write(pending_path, ET.tostring(root, encoding="utf-8"))
    host.registry.create(CBS_KEY + "\\RebootPending", volatile=True)


def _undo_xml(host: Host, undo: list[tuple[str, str | None]]) -> str:
    parts = []
    for dest, previous in undo:
        if previous is None:
            parts.append(f'<winsimRemove destination="{_relative(host, dest)}"/>')
        else:
            parts.append(f'<winsimRestore source="\\??\\{previous}" destination="{_relative(host, dest)}"/>')
    return "".join(parts)


# --- profile records and pre-installed packages ----------------------------------------------------------


def write_profile_hotfix(host: Host, hotfix_id: str, record: Mapping[str, Any]) -> None:
    """A hotfix the profile says was installed long ago, recorded the way its era records it."""
    from .machine import CBS_INSTALLED, NT_HOTFIX_KEY, REG_DWORD, REG_SZ, UPDATES_KEY, _aware

    installed = _aware(record.get("installed_on") or host.os.install_date)
    date = f"{installed.month}/{installed.day}/{installed.year}"
    description = str(record.get("description") or "")
    if host.os.major < 5:
        key = f"{NT_HOTFIX_KEY}\\{hotfix_id}"
        for name, type_, data in (("Fix Description", REG_SZ, description), ("Installed", REG_DWORD, 1),
                                  ("Installed By", REG_SZ, host.user), ("Installed On", REG_SZ, date),
                                  ("Service Pack", REG_DWORD, int(record.get("service_pack", host.os.sp_major))),
                                  ("Valid", REG_DWORD, 1)):
            host.registry.set(key, name, type_, data)
    elif not host.os.nt6:
        product = record.get("product") or ("Windows XP" if host.os.minor == 1 else "Windows Server 2003")
        key = f"{UPDATES_KEY}\\{product}\\{record.get('sp', f'SP{host.os.sp_major + 1}')}\\{hotfix_id}"
        for name, type_, data in (("Description", REG_SZ, description or f"{product} Hotfix - {hotfix_id}"),
                                  ("InstalledBy", REG_SZ, str(record.get("installed_by", host.user))),
                                  ("InstalledDate", REG_SZ, date),
                                  ("Type", REG_SZ, str(record.get("type", "Update")))):
            host.registry.set(key, name, type_, data)
    else:
        arch = CBS_ARCH[host.os.architecture]
        name = str(record.get("package") or f"Package_for_{hotfix_id}~31bf3856ad364e35~{arch}~~6.0.1.0")
        write_cbs_package(host, name, hotfix_id, str(record.get("release_type", "Update")), CBS_INSTALLED,
                          installed)


def preinstall(host: Host, hotfix_id: str, rebooted: bool) -> None:
    """Install the catalogue package for ``hotfix_id`` that fits this host, as an administrator would have
    (quiet, no restart); ``rebooted`` also applies the pending operations, as the next boot does."""
    candidates = [p for p in CATALOGUE.values() if p.hotfix_id.casefold() == hotfix_id.casefold()
                  and p.architecture == host.os.architecture]
    for package in candidates:
        target, _, _ = _select_target(host, package)
        if target is None:
            continue
        outcome = _install(host, package, _Options(unattended=True, norestart=True))
        if outcome.exit_code not in (EXIT_OK, EXIT_RESTART):
            raise ValueError(f"{hotfix_id} did not install on {host.profile_name}: exit {outcome.exit_code}")
        if rebooted:
            host.apply_pending_operations()
        return
    raise ValueError(f"no catalogue package for {hotfix_id} applies to profile {host.profile_name}")
