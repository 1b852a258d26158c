# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A package copied to a WinRM host's ``ADMIN$`` over SMB (``kbfix_upload_smb: true``), for hosts whose
File and Printer Sharing is open: the SMB transport the NT 4.0 hosts use, for one file.

SMB writes carry raw bytes up to the buffer the server negotiates (16 KB a write against a 16,644-byte
SMB1 buffer: 64 writes a megabyte, about 16 KB of package per request against the stdin path's 80 KB). The
SMB transport checks the size it wrote; the caller checks the SHA-1 through WinRM where the host computes one.
"""

from __future__ import annotations

from ..base import LogFn, PackageSource
from .settings import SMBSettings
from .transport import SMBTransport


def put_file(settings: SMBSettings, destination: str, data: bytes, log: LogFn,
             system_root: str | None = None) -> int:
    """Write ``data`` to ``destination`` through ``ADMIN$`` when it lies under ``system_root`` (the host's
    ``%SystemRoot%``), else through the drive's ``C$``. Returns the SMB requests it took."""
    root = (system_root or "").rstrip("\\")
    if root and destination.casefold().startswith(root.casefold() + "\\"):
        destination = "%SystemRoot%" + destination[len(root):]
    transport = SMBTransport(settings, log)
    try:
        transport.stage_package(PackageSource(data=data), destination)
        return transport.request_count
    finally:
        transport.close()
