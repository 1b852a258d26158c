# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files over the administrative shares: facts (size, last write time, the PE version read in a few ranged
reads, ``pe.py``), packages put on the host, small result files read back, files removed."""

from __future__ import annotations

import datetime
import io
import re
import struct
from collections.abc import Sequence
from functools import partial

from ...article.model import FileFacts
from ...errors import ArgumentError, KbfixError, NotFoundError, TransportError
from ..base import LOG_STEPS, PackageSource, StagedPackage
from . import pe
from .host import SmbHost
from .impacket_lib import IMPACKET, SessionError, smb
from .session import Session, is_missing, status_of

if IMPACKET.available:
    _FILE_WANTED = smb.FILE_SHARE_READ | smb.FILE_SHARE_WRITE | smb.FILE_SHARE_DELETE
_DRIVE = re.compile(r"^([A-Za-z]):\\(.*)$")
_UNC = re.compile(r"^\\\\[^\\]+\\[^\\]+\\.+")
_SYSTEMROOT = re.compile(r"^%systemroot%\\(.*)$", re.IGNORECASE)
STATUS_FILE_IS_A_DIRECTORY = 0xC00000BA
STATUS_SHARING_VIOLATION = 0xC0000043


def share_path(path: str, what: str = "path") -> tuple[str, str]:
    """``C:\\WINNT\\x`` -> (``C$``, ``WINNT\\x``); ``%SystemRoot%\\x`` -> (``ADMIN$``, ``x``): the
    administrative shares every NT server has (AutoShareServer)."""
    match = _SYSTEMROOT.match(path)
    if match:
        share, rest = "ADMIN$", match.group(1)
    else:
        match = _DRIVE.match(path)
        if not match:
            raise ArgumentError(what, f"{path!r} is not an absolute path with a drive letter (C:\\...)")
        share, rest = f"{match.group(1).upper()}$", match.group(2)
    rest = rest.strip("\\")
    if not rest or re.search(r'[\x00-\x1f*?"<>|]', rest) or "\\\\" in rest or ".." in rest.split("\\"):
        raise ArgumentError(what, f"{path!r} is not a valid file path")
    return share, rest


_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


def filetime(value: int) -> datetime.datetime:
    """A FILETIME (100 ns units since 1601, UTC) exactly, without float rounding."""
    return _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)


class FileJobs(SmbHost):
    """Files through the admin shares (C$, ADMIN$)."""

    def file_facts(self, paths: Sequence[str]) -> dict[str, FileFacts]:
        located = [(p, *share_path(p, f"files[{i}]")) for i, p in enumerate(paths)]  # bad paths: no request
        return {path.casefold(): self._read(f"file {path}", partial(self._file, path, share, rest))
                for path, share, rest in located}

    def _file(self, path: str, share: str, rest: str) -> FileFacts:
        """One file: open it (a missing file or directory answers here), one query for its size and last write
        time (SMB_QUERY_FILE_ALL_INFO), the ranged reads of the version resource, close."""
        session = self.session()
        tree = session.tree(share)  # a missing share is NotFoundError here, not "file absent"
        try:
            fid = session.conn.openFile(tree, rest, desiredAccess=smb.FILE_READ_DATA | smb.FILE_READ_ATTRIBUTES,
                                        shareMode=_FILE_WANTED, creationOption=smb.FILE_NON_DIRECTORY_FILE)
        except (SessionError, smb.SessionError) as exc:
            if is_missing(exc) or status_of(exc) == STATUS_FILE_IS_A_DIRECTORY:
                return FileFacts(path, exists=False)
            raise session.error(exc, f"opening {share}\\{rest}") from None
        except OSError as exc:
            raise session.error(exc, f"opening {share}\\{rest}") from None
        try:
            info = bytes(session.conn.queryInfo(tree, fid, fileInfoClass=smb.SMB_QUERY_FILE_ALL_INFO))
            if len(info) < 56:
                raise TransportError(f"{self.host}: {share}\\{rest}: the file information is {len(info)} bytes")
            # SMB_QUERY_FILE_ALL_INFO (MS-CIFS 2.2.8.3.8): LastWriteTime at 16, EndOfFile at 48.
            written, size = struct.unpack_from("<Q", info, 16)[0], struct.unpack_from("<Q", info, 48)[0]
            version = self._version(session, tree, fid, f"{share}\\{rest}", size)
        except (SessionError, smb.SessionError, OSError) as exc:
            raise session.error(exc, f"reading {share}\\{rest}") from None
        finally:
            try:
                session.conn.closeFile(tree, fid)
            except (SessionError, smb.SessionError, OSError) as exc:
                self.log(LOG_STEPS, f"{self.host}: closing {share}\\{rest} failed ({type(exc).__name__})")
        return FileFacts(path, exists=True, version=version, size=size, modified=filetime(written))

    def _version(self, session: Session, tree: int, fid: int, what: str, size: int) -> str | None:
        def read_at(offset: int, length: int) -> bytes:
            length = max(0, min(length, size - offset))
            if length == 0:
                return b""
            data = bytes(session.conn.readFile(tree, fid, offset, length, singleCall=False))
            self.bytes_read += len(data)
            session.log_payload(f"read {len(data)} bytes at {offset} of {what}")
            return data

        try:
            block = pe.version_block(read_at)
            return pe.file_version(block) if block is not None else None
        except (pe.PeFormatError, struct.error) as exc:
            self.log(LOG_STEPS, f"{self.host}: {what} has no readable version ({exc})")
            return None

    def stage_package(self, source: PackageSource, destination: str) -> StagedPackage:
        """Put the installer where it can run: ``source.data`` is copied to ``destination`` (``C:\\...`` or
        ``%SystemRoot%\\...``) through the admin share and its size checked; ``source.host_path`` must exist on
        the host; ``source.unc_path`` is run as it is (the host reaches the share itself). Returns the path."""
        if source.unc_path is not None:
            if not _UNC.match(source.unc_path):
                raise ArgumentError("source", f"{source.unc_path!r} is not a UNC path (\\\\server\\share\\file)")
            return StagedPackage(source.unc_path, "unc", None)
        if source.host_path is not None:
            found = self.file_facts([source.host_path]).get(source.host_path.casefold())
            if found is None or not found.exists:
                raise NotFoundError(f"{self.host}: the package {source.host_path} does not exist on the host")
            return StagedPackage(source.host_path, "host", found.size)
        if source.data is None:
            raise ArgumentError("source", "a package needs data, a host path or a UNC path")
        share, rest = share_path(destination, "destination")
        data = source.data
        self._put(share, rest, data)
        facts = self.file_facts([destination]).get(destination.casefold())
        if facts is None or facts.size != len(data):
            raise TransportError(f"{self.host}: {destination} has {facts.size if facts else 'no'} bytes after the "
                                 f"copy, not {len(data)}")
        self.log(LOG_STEPS, f"{self.host}: staged {len(data)} bytes as {destination}")
        return StagedPackage(destination, "smb", facts.size, uploaded=True)

    def _put(self, share: str, rest: str, data: bytes) -> None:
        session = self.session()
        session.tree(share)
        try:
            with session.labelled("SMB write file"):
                session.conn.putFile(share, rest, io.BytesIO(data).read)
        except (SessionError, smb.SessionError, OSError) as exc:
            raise session.error(exc, f"writing {share}\\{rest}") from None

    def _delete(self, share: str, rest: str) -> str | None:
        """Delete a file; None when done or already gone, else why not."""
        try:
            session = self.session()
            with session.labelled("SMB delete file"):
                session.conn.deleteFile(share, rest)
        except (SessionError, smb.SessionError, OSError) as exc:
            if is_missing(exc):
                return None
            return f"{share}\\{rest}: {exc}"
        except KbfixError as exc:
            return f"{share}\\{rest}: {exc}"
        return None

    def _fetch(self, share: str, rest: str) -> str | None:
        """A small text file's content; None when it does not exist (yet)."""
        session = self.session()
        buffer = io.BytesIO()
        try:
            with session.labelled("SMB read file"):
                session.conn.getFile(share, rest, buffer.write, shareAccessMode=_FILE_WANTED)
        except (SessionError, smb.SessionError) as exc:
            if is_missing(exc) or status_of(exc) == STATUS_SHARING_VIOLATION:
                return None  # not there yet, or still open for writing by the batch
            raise session.error(exc, f"reading {share}\\{rest}") from None
        except OSError as exc:
            raise session.error(exc, f"reading {share}\\{rest}") from None
        self.bytes_read += buffer.tell()
        return buffer.getvalue().decode("cp437", "replace")

    def delete_file(self, path: str) -> None:
        """Remove a file the task put on the host (through its admin share); already gone is no error."""
        share, rest = share_path(path, "path")
        problem = self._delete(share, rest)
        if problem:
            raise TransportError(f"{self.host}: cannot delete {problem}")
