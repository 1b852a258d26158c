# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a hotfix package is and how it gets where the host can run it.

A package is on the controller (uploaded: ``Transport.stage_package``, which over WinRM streams it through
the cmd shell's stdin or, with ``kbfix_upload_smb``, copies it to ``ADMIN$``; docs/transport.md "Uploads"),
already on the host (``C:\\...``, checked to exist) or on a share (``\\\\server\\share\\...``, run from there).
``Staging`` keeps what a task has staged: several articles of one task that use the same package file put it
on the host once, and it is removed when the task is done with it.
"""

from __future__ import annotations

import ntpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..article.model import OsFacts
from ..errors import ArgumentError, KbfixError
from ..transport import escape
from ..transport.base import LOG_STEPS, PackageSource, StagedPackage, Transport

SourceKind = Literal["controller", "host", "unc"]

_UNC = re.compile(r"^\\\\[^\\/]+[\\/][^\\/]+")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class PackageLocation:
    """Where a package (or a directory of packages) is: on the controller, on the host, or on a share."""

    kind: SourceKind
    path: str

    def joined(self, filename: str) -> PackageLocation:
        if self.kind == "controller":
            return PackageLocation("controller", str(Path(self.path) / filename))
        return PackageLocation(self.kind, self.path.rstrip("\\/") + "\\" + filename)

    @property
    def filename(self) -> str:
        if self.kind == "controller":
            return Path(self.path).name
        return ntpath.basename(self.path.replace("/", "\\"))


def source_kind(text: str) -> SourceKind:
    """``\\\\server\\share\\...`` is a share, ``C:\\...`` a path on the host, anything else the controller's."""
    if _UNC.match(text):
        return "unc"
    if _DRIVE.match(text):
        return "host"
    return "controller"


def remote_location(text: str, field_name: str) -> PackageLocation:
    """A host or UNC location, its path checked for what cmd.exe cannot carry."""
    kind = source_kind(text)
    if kind == "controller":
        raise ArgumentError(field_name, f"{text!r} is not a host path (C:\\...) or a UNC path (\\\\server\\share)")
    # The rules every path argument shares, then what cmd.exe adds (the path reaches copy and the installer).
    path = escape.host_path(text, field_name)
    escape.cmd_path(path, field_name)
    return PackageLocation(kind, path)


def read_controller_file(location: PackageLocation, field_name: str) -> bytes:
    try:
        return Path(location.path).read_bytes()
    except OSError as exc:
        raise ArgumentError(field_name, f"cannot read the package {location.path}: {exc.strerror or exc}") from None


def staging_path(os_facts: OsFacts, filename: str) -> str:
    # %SystemRoot%\Temp exists on every version and is writable by administrators; the per-user TEMP of a
    # WinRS session lives in a profile that NT 4.0-era layouts name differently.
    root = os_facts.system_root.rstrip("\\")
    return f"{root}\\Temp\\{filename}"


def has_certutil(os_facts: OsFacts) -> bool | None:
    """False where Windows ships without certutil.exe (2000, XP: it came with the Server 2003 Administration
    Tools Pack there); None elsewhere: the upload tries it and falls back to its own decoder."""
    major, minor = (int(p) for p in os_facts.version.split(".")[:2])
    return False if (major, minor) < (5, 2) else None


@dataclass
class Staging:
    """The packages one task has put on one host, by where they came from. ``keep`` until ``release_all``:
    the task's later articles may need the same file."""

    transport: Transport
    os_facts: OsFacts
    keep: bool = False
    upload_method: str = "auto"  # over WinRM: stdin, echo, or auto (stdin, echo where stdin fails)
    staged: dict[tuple[str, str], StagedPackage] = field(default_factory=dict)

    def stage(self, location: PackageLocation) -> StagedPackage:
        key = (location.kind, location.path)
        found = self.staged.get(key)
        if found is not None:
            self.transport.log(LOG_STEPS, f"{self.transport.host}: {location.filename} is already staged as "
                                          f"{found.path}")
            return found
        staged = stage(self.transport, location, self.os_facts, self.upload_method)
        if self.keep:
            self.staged[key] = staged
        return staged

    def release(self, staged: StagedPackage) -> None:
        """Done with one install: remove the file unless the task keeps it for later articles."""
        if staged.uploaded and not self.keep:
            remove_staged(self.transport, staged.path)

    def release_all(self) -> None:
        for staged in self.staged.values():
            if staged.uploaded:
                remove_staged(self.transport, staged.path)
        self.staged.clear()


def stage(transport: Transport, location: PackageLocation, os_facts: OsFacts,
          upload_method: str = "auto") -> StagedPackage:
    """Put a controller file on the host (checked by size and, where the host computes it, SHA-1), or check a
    host path; a UNC path is used as it is."""
    if location.kind == "controller":
        data = read_controller_file(location, "source")
        remote = staging_path(os_facts, location.filename)
        return transport.stage_package(PackageSource(data=data, certutil=has_certutil(os_facts),
                                                     system_root=os_facts.system_root,
                                                     upload_method=upload_method), remote)
    if location.kind == "host":
        return transport.stage_package(PackageSource(host_path=location.path), "")
    return transport.stage_package(PackageSource(unc_path=location.path), "")


def remove_staged(transport: Transport, path: str) -> None:
    # Cleanup must not hide what the installer did (or the connection loss that ended it). delete_file
    # repeats a del lost in a reset: deleting twice does no harm.
    try:
        transport.delete_file(path)
    except KbfixError as exc:
        transport.log(LOG_STEPS, f"{transport.host}: could not remove the staged package {path}: {exc}")
