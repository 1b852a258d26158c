# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry key paths as users write them (``HKLM\\SOFTWARE\\...``): the hive's predefined handle and the
subkey. The handles are winreg.h's HKEY_* values, the same numbers StdRegProv's ``hDefKey`` takes over WinRM and
the remote registry protocol (MS-RRP) opens over SMB. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ArgumentError

# The predefined HKEY_* handles as unsigned 32-bit decimals (winreg.h; StdRegProv hDefKey).
HIVES: dict[str, int] = {
    "HKCR": 2147483648, "HKEY_CLASSES_ROOT": 2147483648,
    "HKCU": 2147483649, "HKEY_CURRENT_USER": 2147483649,
    "HKLM": 2147483650, "HKEY_LOCAL_MACHINE": 2147483650,
    "HKU": 2147483651, "HKEY_USERS": 2147483651,
    "HKCC": 2147483653, "HKEY_CURRENT_CONFIG": 2147483653,
}
_SHORT_HIVE = {v: k for k, v in HIVES.items() if k.startswith("HK") and len(k) <= 4}


@dataclass(frozen=True)
class RegistryPath:
    hive: str  # the short form (HKLM) whatever the caller wrote
    hdefkey: int
    subkey: str  # without leading/trailing backslashes; "" = the hive itself

    def __str__(self) -> str:
        return f"{self.hive}\\{self.subkey}" if self.subkey else self.hive

    @property
    def parent(self) -> RegistryPath:
        return RegistryPath(self.hive, self.hdefkey, self.subkey.rpartition("\\")[0])

    @property
    def leaf(self) -> str:
        return self.subkey.rpartition("\\")[2]


def parse_key(key: str) -> RegistryPath:
    """``HKLM\\SOFTWARE\\X`` (or ``HKEY_LOCAL_MACHINE\\...``) -> hive handle and subkey."""
    cleaned = key.strip().strip("\\")
    hive, _sep, subkey = cleaned.partition("\\")
    hdefkey = HIVES.get(hive.upper())
    hive = _SHORT_HIVE.get(hdefkey or 0, hive.upper())
    if hdefkey is None:
        raise ArgumentError("key", f"{key!r} does not start with a registry hive (HKLM, HKU, HKCR, HKCU, HKCC)")
    if re.search(r"[\x00-\x1f]", subkey) or "\\\\" in subkey:
        raise ArgumentError("key", f"{key!r} is not a valid registry key path")
    subkey = subkey.strip("\\")
    if any(part in (".", "..") for part in subkey.split("\\")):
        # Not parent references in the registry: a write would create keys literally named '..'.
        raise ArgumentError("key", f"{key!r}: '.' and '..' segments are not allowed in a registry key path")
    return RegistryPath(hive.upper(), hdefkey, subkey)
