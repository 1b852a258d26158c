# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SMB transport: what the WinRM transport offers, for Windows NT 4.0 (no WinRM, no WMI).

* OS facts, registry values and keys, hotfix records, pending restart: the remote registry (``\\pipe\\winreg``);
* files: size and last write time from the share listing, the version from the PE version resource read in a
  few ranged reads (``pe.py``);
* boot time: ``NetrServerStatisticsGet`` level 0 over ``\\pipe\\srvsvc``: ``sts0_start`` is when the Server
  service started collecting statistics, i.e. when it started, which on NT is during boot;
* commands: a batch file on ADMIN$ run by a one-shot service (``\\pipe\\svcctl``, ``command.py``);
* the ``kbfix_*`` facts of ``kbfix.windows.facts``: ``host_facts`` (the remote registry and srvsvc);
* restart: ``BaseInitiateSystemShutdown`` over ``\\pipe\\winreg``, then wait for a new ``sts0_start``.

One session serves every request (serially); ``request_count`` counts the SMB requests sent, RPC calls
included (each is an SMB write and read of the pipe). Reads are retried a bounded number of times on a new
session when the connection breaks; writes never are: a write whose connection broke is read back first.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import re
import secrets
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from ...article.model import (
    Architecture,
    FactRequest,
    FileFacts,
    HostFacts,
    OsFacts,
    RegistryType,
    RegistryValue,
    registry_key_id,
)
from ...errors import (
    ArgumentError,
    AuthenticationError,
    HostUnreachableError,
    KbfixError,
    NotFoundError,
    RebootTimeoutError,
    RemoteCommandError,
    TransportError,
    WriteVerificationError,
)
from ..base import (
    MAX_REBOOT_DELAY,
    MAX_REBOOT_MESSAGE,
    MAX_VALUE_NAME,
    CommandResult,
    PackageSource,
    RegistryChange,
    RestartScope,
    check_registry_value,
    same_value,
)
from ..indicators import (
    PFRO_VALUE,
    SESSION_MANAGER,
    pending_restart_from,
    pending_restart_plan,
)
from ..registry_path import parse_key
from ..requirement import Requirement
from . import command, pe
from .registry import IMPACKET as REGISTRY_IMPACKET
from .registry import RemoteRegistry, encode, show
from .session import IMPACKET as SESSION_IMPACKET
from .session import LOG_STEPS, LogFn, Session, _no_log, is_missing, redact, status_of
from .settings import SMBSettings, settings_from_vars

try:
    from impacket import smb
    from impacket.dcerpc.v5 import scmr, srvs
    from impacket.dcerpc.v5.dtypes import DELETE
    from impacket.smbconnection import SessionError
except ImportError as _error:  # SMBTransport() says what is missing, before any request
    IMPACKET = Requirement.missing("impacket", "SMB", _error)
else:
    IMPACKET = Requirement.present("impacket", "SMB")
    _FILE_WANTED = smb.FILE_SHARE_READ | smb.FILE_SHARE_WRITE | smb.FILE_SHARE_DELETE


def require_packages() -> None:
    """``MissingRequirementError`` unless impacket imported in every SMB module. Called where SMB use starts
    (``SMBTransport()``), before any request."""
    for requirement in (SESSION_IMPACKET, REGISTRY_IMPACKET, IMPACKET):
        requirement.require()


T = TypeVar("T")

CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
PRODUCT_OPTIONS = r"HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions"
ENVIRONMENT = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
HOTFIX_ROOT = CURRENT_VERSION + r"\Hotfix"
COMPUTER_NAME = r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"
# Win32_ComputerSystem.SystemType's words for each PROCESSOR_ARCHITECTURE (what kbfix_system_type holds on
# WinRM hosts), so a play reads the same fact on NT 4.0.
SYSTEM_TYPES = {"x86": "X86-based PC", "x64": "x64-based PC", "ia64": "Itanium-based System"}
# kbfix_winrm_version_source on a host reached over SMB: NT 4.0 has no WinRM (and cannot install it).
WINRM_SOURCE_SMB = "smb"
PRODUCT_TYPES = {"winnt": 1, "lanmannt": 2, "servernt": 3}
ARCHITECTURES: dict[str, Architecture] = {"x86": "x86", "amd64": "x64", "ia64": "ia64"}
SOURCE_REGISTRY = "registry"
# Error codes of StartService (winerror.h): a batch run through cmd.exe never tells the SCM it is running,
# so the SCM gives up waiting after 30 s (1053) - by then the command is running or done.
ERROR_SERVICE_REQUEST_TIMEOUT = 1053
ERROR_SERVICE_MARKED_FOR_DELETE = 1072
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


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


def filetime(value: int) -> datetime.datetime:
    """A FILETIME (100 ns units since 1601, UTC) exactly, without float rounding."""
    return _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)


def _checked(key: str, *names: str) -> str:
    """The parsed key as text; a bad key or value name is an ArgumentError before any request."""
    path = str(parse_key(key))
    for name in names:
        if not isinstance(name, str) or "\0" in name or len(name) > MAX_VALUE_NAME:
            raise ArgumentError("name", f"{str(name)[:80]!r} is not a registry value name (no NUL, at most "
                                        f"{MAX_VALUE_NAME} characters)")
    return path


def service_pack(csd_version: str) -> int:
    """``Service Pack 6`` -> 6 (``Service Pack 6a`` too); no CSDVersion -> 0."""
    match = re.search(r"Service Pack (\d+)", csd_version or "", re.IGNORECASE)
    return int(match.group(1)) if match else 0


class SMBTransport:
    """Talks to one NT 4.0 host over SMB. Create with settings; ``close()`` when done. Use it from one
    thread at a time (its one SMB session is not thread-safe)."""

    def __init__(self, settings: SMBSettings, log: LogFn | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        require_packages()
        self.settings = settings
        self._log = log or _no_log
        self._sleep = sleep
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._session: Session | None = None
        self._registry: RemoteRegistry | None = None
        self.bytes_read = 0  # file content read through the shares (proves ranged version reads)
        # Whether a session to the host has logged on in this task: a failure after that is a host lost
        # (HostUnreachableError.lost, which the task's restart wait in tasks/resume.py acts on).
        self._answered = False

    def __repr__(self) -> str:
        return f"SMBTransport({self.host}:{self.settings.port}, user={self.settings.username!r})"

    # --- bookkeeping -------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return "smb"

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def max_in_flight(self) -> int:
        # One SMB session, and impacket's connection is not thread-safe: one request at a time.
        return 1

    def run_concurrently(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Serially, in order (``max_in_flight`` is 1)."""
        return [call() for call in calls]

    @property
    def request_count(self) -> int:
        return sum(self._counts.values())

    def requests_by_name(self) -> dict[str, int]:
        return dict(self._counts)

    def reset_counters(self) -> None:
        self._counts.clear()
        self.bytes_read = 0

    def log(self, level: int, message: str) -> None:
        self._log(level, redact(message, self.settings.password))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self._registry = None

    def session(self) -> Session:
        if self._session is None:
            try:
                self._session = Session(self.settings, self._counts, self.log)
            except HostUnreachableError as exc:
                exc.lost = exc.lost or self._answered
                raise
            self._answered = True
            self._registry = RemoteRegistry(self._session)
        return self._session

    @property
    def registry(self) -> RemoteRegistry:
        self.session()
        if self._registry is None:  # set together with the session
            raise AssertionError("the session has no remote registry")
        return self._registry

    # A read whose connection broke after this attempt's session had logged on went to a host that is up (a
    # restart closes the listeners: refused): up to this many times ``retries`` retries, none beyond
    # ``retries`` after LIVE_RETRY_WINDOW seconds, with backoff capped at LIVE_BACKOFF_MAX (docs/transport.md).
    LIVE_RETRY_FACTOR = 4
    LIVE_RETRY_WINDOW = 60.0
    LIVE_BACKOFF_MAX = 2.0

    def _read(self, what: str, call: Callable[[], T]) -> T:
        """Run a read; when the connection breaks (or cannot be made), retry on a new session a bounded
        number of times with backoff. Credentials, bad requests and host answers are never retried.

        Failures in a row where the host did not take a session (refused, reset during logon) end after
        ``retries`` retries as ``HostUnreachableError`` (lost when the host answered earlier: tasks/resume.py
        waits for it). A connection that broke after the session had logged on is a host that is up on a
        lossy network (found by the fleet campaign: 10% of RPC calls reset made live NT 4.0 hosts
        unreachable): such failures are retried further and giving up on them is a failure, not unreachable."""
        attempt = 0
        silent = 0  # failures in a row without a logged-on session
        broken = 0  # failures after the session had logged on
        started = time.monotonic()
        while True:
            try:
                return call()
            except (HostUnreachableError, OSError) as exc:
                self.close()
                # Session.error marks a break after logon as lost; connect and logon failures are not.
                alive = isinstance(exc, HostUnreachableError) and exc.lost and self._answered
                silent = 0 if alive else silent + 1
                broken += alive
                limit = self.settings.retries
                if silent == 0 and time.monotonic() - started < self.LIVE_RETRY_WINDOW:
                    limit = self.settings.retries * self.LIVE_RETRY_FACTOR
                if attempt >= limit or silent > self.settings.retries:
                    if silent == 0 and attempt > 0:
                        raise TransportError(
                            f"{self.host}: gave up on {what} after {attempt + 1} attempts in "
                            f"{time.monotonic() - started:.1f} s; the host is up (each of {broken} sessions "
                            f"logged on) but the connection broke every time; last: "
                            f"{redact(str(exc), self.settings.password)}") from None
                    if isinstance(exc, HostUnreachableError):
                        exc.lost = exc.lost or self._answered
                        raise
                    lost = HostUnreachableError(f"{self.host}: {what}: {redact(str(exc), self.settings.password)}")
                    lost.lost = self._answered
                    raise lost from None
                delay = self.settings.backoff * 2 ** attempt
                if silent == 0:
                    delay = min(delay, self.LIVE_BACKOFF_MAX)
                self.log(LOG_STEPS, f"{self.host}: {what} failed ({exc}); retry {attempt + 1} (at most {limit}) "
                                    f"in {delay:g}s")
                self._sleep(delay)
                attempt += 1

    # --- OS facts ----------------------------------------------------------------------------------

    def os_facts(self) -> OsFacts:
        """From the registry: CurrentVersion + CurrentBuildNumber (version), CSDVersion (service pack),
        SystemRoot, ProductOptions (ProductType, ProductSuite: "Terminal Server" goes into the caption, which
        the KB253729 applicability tests) and PROCESSOR_ARCHITECTURE."""
        cv = self.read_values(CURRENT_VERSION, ["CurrentVersion", "CurrentBuildNumber", "CSDVersion", "SystemRoot"])
        po = self.read_values(PRODUCT_OPTIONS, ["ProductType", "ProductSuite"])
        env = self.read_values(ENVIRONMENT, ["PROCESSOR_ARCHITECTURE"])
        facts = os_facts_from(self.host, cv, po, env)
        # The engine weighs a pending restart against the last boot (docs/engine.md); a host whose srvsvc
        # cannot tell it (Samba's) still has OS facts, with the boot unknown.
        boot = self._attempt("boot time", self.boot_time)
        return dataclasses.replace(facts, last_boot=boot)

    def host_facts(self, *, ask_version: bool = True) -> dict[str, object]:
        """Every ``kbfix_*`` fact of ``kbfix.windows.facts``, with the keys the WinRM transport gives. NT 4.0
        has no WMI: the computer name comes from the registry, the domain is not asked (an NT 4.0 member's
        domain is only in LSA policy, which this transport does not read: ``kbfix_domain`` is "" and
        ``kbfix_domain_member`` None, i.e. unknown), and there is no WinRM (``kbfix_winrm_version`` None)."""
        del ask_version  # there is no WinRM service to ask: kbfix_winrm_version is None on SMB hosts
        os = self.os_facts()
        name = self.read_value(COMPUTER_NAME, "ComputerName")
        pending, sources = self.pending_restart(os)
        hostname = _text_of(name) or self.host
        self.log(LOG_STEPS, f"{hostname}: {os.caption} {os.version} SP{os.service_pack} {os.architecture}, "
                            "reached over SMB (no WinRM)")
        return {
            "kbfix_os": os.to_dict(),
            "kbfix_hostname": hostname,
            "kbfix_domain": "",
            "kbfix_domain_member": None,
            "kbfix_system_type": SYSTEM_TYPES[os.architecture],
            "kbfix_last_boot": os.last_boot.isoformat() if os.last_boot else None,
            "kbfix_reboot_pending": pending,
            "kbfix_reboot_pending_sources": list(sources),
            "kbfix_winrm_version": None,
            "kbfix_winrm_version_source": WINRM_SOURCE_SMB,
        }

    # --- files -------------------------------------------------------------------------------------

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

    # --- registry reads ----------------------------------------------------------------------------

    def read_value(self, key: str, name: str, expected: RegistryType | None = None) -> RegistryValue | None:
        """Type and data of ``key\\name`` (None: it or its key does not exist). One BaseRegQueryValue returns
        the real type with the data, so ``expected`` is only informative here."""
        del expected
        _checked(key, name)
        return self._read(f"{key}\\{name}", lambda: self.registry.read_value(key, name))

    def read_values(self, key: str, names: Iterable[str]) -> dict[str, RegistryValue | None]:
        wanted = list(names)
        _checked(key, *wanted)
        return self._read(f"values of {key}", lambda: {n: self.registry.read_value(key, n) for n in wanted})

    def key_exists(self, key: str) -> bool:
        parse_key(key)
        return self._read(f"key {key}", lambda: self.registry.open(key) is not None)

    def enum_keys(self, key: str) -> list[str] | None:
        parse_key(key)
        return self._read(f"subkeys of {key}", lambda: self.registry.enum_keys(key))

    # --- registry writes ---------------------------------------------------------------------------

    def check_write(self, key: str, name: str, value: RegistryValue, *, stack_version: str | None = None) -> None:
        """Refuse, before any request, a value the registry cannot hold or the data cannot be encoded as.

        Only the registry's limits apply here. Unlike a WS-Man envelope (MaxEnvelopeSizekb, which WinRM
        refuses whole), an RPC request has no size cap of that kind: impacket splits BaseRegSetValue into
        DCE/RPC fragments of the negotiated size and each into SMB writes of the server's MaxBufferSize, so
        any value the registry accepts can be carried. ``stack_version`` (the WinRM version) means nothing
        on a host without WinRM."""
        del stack_version
        _checked(key, name)
        check_registry_value(name, value)
        encode(value)  # the data's own form (a dword's range, a multistring's items)

    def set_value(self, key: str, name: str, value: RegistryValue, *, create: bool = False) -> RegistryChange:
        """Write ``value`` and read it back (``WriteVerificationError`` if the host keeps something else).
        The data is checked before any request, and a key created for the value is removed again when the
        value cannot be written, so a failed write leaves nothing behind."""
        path = _checked(key, name)
        what = f"{path}\\{name}"
        self.check_write(path, name, value)  # before the first request: never a key without its value
        type_code, raw = encode(value)
        before = self.read_value(path, name)
        if same_value(value, before):
            return RegistryChange(False, before, before)
        created: list[str] = []
        try:
            if create:
                created = self.registry.create(path)
            self.registry.set(path, name, type_code, raw)
        except HostUnreachableError:
            self.close()
            after = self.read_value(path, name)  # the write may or may not have arrived: look before repeating
            if not same_value(value, after):
                self.registry.set(path, name, type_code, raw)
        except KbfixError:
            if created:
                self.registry.remove_keys(created)
            raise
        after = self.read_value(path, name)
        if not same_value(value, after):
            if created:
                # The host took the write but keeps something else: the keys made for it go again, with
                # whatever half-written data they hold.
                self.registry.remove_keys(created)
            raise WriteVerificationError(f"{self.host}: wrote {what} = {show(value)} but read back {show(after)}")
        self.log(LOG_STEPS, f"{self.host}: set {what} to {show(value)} (was {show(before)})")
        return RegistryChange(True, before, after)

    def delete_value(self, key: str, name: str) -> RegistryChange:
        path = _checked(key, name)
        before = self.read_value(path, name)
        if before is None:
            return RegistryChange(False, None, None)
        try:
            self.registry.delete(path, name)
        except HostUnreachableError:
            self.close()
            if self.read_value(path, name) is not None:
                self.registry.delete(path, name)
        after = self.read_value(path, name)
        if after is not None:
            raise WriteVerificationError(f"{self.host}: deleted {path}\\{name} but it still reads {show(after)}")
        self.log(LOG_STEPS, f"{self.host}: deleted {path}\\{name} (was {show(before)})")
        return RegistryChange(True, before, None)

    # --- facts for an article ----------------------------------------------------------------------

    def pending_restart(self, os: OsFacts, scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
        plan = pending_restart_plan(os, scope)
        values = {(registry_key_id(k), n.casefold()): self.read_value(k, n, t) for k, n, t in plan.values}
        keys = {registry_key_id(k): self.key_exists(k) for k in plan.keys}
        return pending_restart_from(values, keys)

    def gather(self, os: OsFacts, request: FactRequest, *, restart_scope: RestartScope = "article") -> HostFacts:
        """Same contract as ``collect.gather``: requested facts that cannot be read stay absent (the engine
        answers unknown); an unreachable host or rejected credentials fail the whole gather."""
        if restart_scope not in ("article", "full", "none"):
            raise ArgumentError("restart_scope", f"must be article, full or none, not {restart_scope!r}")
        scope: RestartScope = restart_scope
        for key, name in request.registry_values:
            _checked(key, name)  # a bad key or name fails before any request
        facts = HostFacts(os=os)
        if request.files:
            facts.files = self._attempt("file facts", lambda: self.file_facts(list(request.files))) or {}
        for key, name in request.registry_values:
            found = self._attempt(f"{key}\\{name}", partial(self._value_fact, key, name, None))
            if found is not None:
                facts.registry[(registry_key_id(key), name.casefold())] = found[0]
        for key in request.registry_key_times:  # restart-bound values: written since the last boot?
            written = self._attempt(f"key {key}", partial(self._key_write_time, key))
            if written is not None:
                facts.key_write_times[registry_key_id(key)] = written
        # NT 4.0's hotfix.exe records an installed hotfix as ...\CurrentVersion\Hotfix\<id>.
        wanted = {h.strip().upper() for h in request.hotfix_ids}
        record_keys = {registry_key_id(k): k for k in request.registry_keys}
        for hotfix in sorted(wanted):
            record_keys.setdefault(registry_key_id(f"{HOTFIX_ROOT}\\{hotfix}"), f"{HOTFIX_ROOT}\\{hotfix}")
        plan = pending_restart_plan(os, scope)
        for key in [*record_keys.values(), *plan.keys]:
            exists = self._attempt(f"key {key}", partial(self.key_exists, key))
            if exists is not None:
                facts.registry_keys[registry_key_id(key)] = exists
        sources: dict[str, list[str]] = {}
        for key in record_keys.values():
            leaf = parse_key(key).leaf.upper()
            if leaf in wanted and facts.registry_keys.get(registry_key_id(key)):
                sources.setdefault(leaf, []).append(SOURCE_REGISTRY)
        facts.hotfixes = frozenset(sources)
        facts.hotfix_sources = {k: tuple(v) for k, v in sources.items()}
        pending_values: dict[tuple[str, str], RegistryValue | None] = {}
        for key, name, type_ in plan.values:
            found = self._attempt(f"{key}\\{name}", partial(self._value_fact, key, name, type_))
            if found is not None:
                pending_values[(registry_key_id(key), name.casefold())] = found[0]
        facts.reboot_pending, facts.reboot_pending_sources = pending_restart_from(
            pending_values, facts.registry_keys)
        # The entries themselves tell the engine whether the article's own files wait for the restart.
        pfro_id = (registry_key_id(SESSION_MANAGER), PFRO_VALUE.casefold())
        if pfro_id in pending_values:
            pfro = pending_values[pfro_id]
            entries = pfro.data if pfro is not None and isinstance(pfro.data, list) else []
            facts.pending_renames = tuple(str(e) for e in entries if e)
        return facts

    def _key_write_time(self, key: str) -> datetime.datetime | None:
        return self.registry.key_write_time(key)

    def _value_fact(self, key: str, name: str, type_: RegistryType | None) -> tuple[RegistryValue | None]:
        # In a tuple so that "the value does not exist" (None inside) differs from "could not be read".
        return (self.read_value(key, name, type_),)

    def _attempt(self, what: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except (HostUnreachableError, AuthenticationError, ArgumentError):
            raise
        except KbfixError as exc:
            self.log(LOG_STEPS, f"{self.host}: could not read {what}: {exc}")
            return None

    # --- boot time and restart ---------------------------------------------------------------------

    def boot_time(self) -> datetime.datetime:
        """When the Server service started (``sts0_start`` of NetrServerStatisticsGet level 0, seconds since
        1970 UTC): NT 4.0 has no LastBootUpTime, and the Server service starts with the system."""
        def read() -> datetime.datetime:
            session = self.session()
            dce = session.pipe("srvsvc", srvs.MSRPC_UUID_SRVS)
            request = srvs.NetrServerStatisticsGet()
            request["ServerName"] = srvs.NULL
            request["Service"] = srvs.NULL
            request["Level"] = 0
            request["Options"] = 0
            code, response = session.call(dce, request, "level 0")
            if code != 0:
                raise TransportError(f"{self.host}: NetrServerStatisticsGet returned Win32 error {code}")
            start = int(response["InfoStruct"]["sts0_start"])
            if start == 0:
                raise TransportError(f"{self.host}: NetrServerStatisticsGet reports no start time")
            return _utc(start)
        return self._read("boot time", read)

    def initiate_restart(self, *, delay: int, message: str) -> None:
        """Ask the host to restart in ``delay`` seconds (BaseInitiateSystemShutdown), without waiting."""
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_REBOOT_DELAY:
            raise ArgumentError("delay", f"must be a whole number of seconds from 0 to {MAX_REBOOT_DELAY}")
        if len(message) > MAX_REBOOT_MESSAGE or "\0" in message:
            raise ArgumentError("message", f"must be at most {MAX_REBOOT_MESSAGE} characters without NUL")
        self.registry.shutdown(message, delay)
        self.log(LOG_STEPS, f"{self.host}: restart requested in {delay}s")

    def restart(self, *, timeout: float, delay: int = 0, message: str = "", connect_timeout: float | None = None,
                before: datetime.datetime | None = None, poll_interval: float = 2.0) -> datetime.datetime:
        """Restart and wait until the host answers with a new boot time (returned). The boot time is read
        first (or ``before``, read by the caller): a restart that cannot be proven is not started. While
        waiting each probe connects with ``connect_timeout`` seconds (default: the transport's timeout), so a
        host that is down does not hold one probe for a minute."""
        if not 0 < timeout <= 86400:
            raise ArgumentError("timeout", "must be between 0 and 86400 seconds")
        if connect_timeout is not None and not 0 < connect_timeout <= 3600:
            raise ArgumentError("connect_timeout", "must be between 0 and 3600 seconds")
        if before is None:
            before = self.boot_time()
        lost = self._ask_restart(delay, message)
        self.close()
        self._sleep(delay)
        deadline = self._clock() + timeout
        # A request whose answer was lost may never have reached the host (found by the fleet campaign: 300 s
        # waiting for a restart that was not started). While the host keeps answering with the old boot time
        # RESTART_ASK_AGAIN seconds after such a request, ask again, up to RESTART_ROUNDS requests in all.
        rounds = 1
        asked = self._clock()
        last_error = "none"
        settings = self.settings
        if connect_timeout is not None:
            self.settings = dataclasses.replace(settings, timeout=connect_timeout)
        try:
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise RebootTimeoutError(f"Timed out waiting for {self.host} to come back after the restart: no "
                                             f"new boot time after {timeout:g} seconds (last error: {last_error})")
                self._sleep(min(poll_interval, remaining))
                try:
                    booted = self.boot_time()
                except KbfixError as exc:  # refused while down, auth not ready while services start
                    self.close()
                    last_error = str(exc)
                    continue
                if booted != before:
                    self.log(LOG_STEPS, f"{self.host}: back up, Server service started {booted.isoformat()}")
                    return booted
                last_error = f"the host still reports the boot time {before.isoformat()}"
                if lost and rounds < RESTART_ROUNDS and self._clock() - asked >= RESTART_ASK_AGAIN:
                    self.log(LOG_STEPS, f"{self.host}: no restart {RESTART_ASK_AGAIN:g} s after a restart request "
                                        "whose answer was lost; asking again")
                    lost = self._ask_restart(delay, message, repeat=True)
                    self.close()
                    rounds += 1
                    asked = self._clock()
        finally:
            if self.settings is not settings:
                self.close()  # the probe session's socket has the short timeout
                self.settings = settings

    def _ask_restart(self, delay: int, message: str, *, repeat: bool = False) -> bool:
        """Ask for the restart; True when the answer was lost (the host may or may not have taken it). A repeat
        that the host refuses (a shutdown already under way) is waited for; a first request refused fails."""
        try:
            self.initiate_restart(delay=delay, message=message)
        except HostUnreachableError as exc:
            self.log(LOG_STEPS, f"{self.host}: connection dropped as the restart was asked for ({exc})")
            return True
        except TransportError as exc:
            if not repeat or isinstance(exc, AuthenticationError):
                raise
            self.log(LOG_STEPS, f"{self.host}: the restart request was refused ({exc}); waiting for it")
        return False

    # --- files to the host, commands ----------------------------------------------------------------

    def stage_package(self, source: PackageSource, destination: str) -> str:
        """Put the installer where it can run: ``source.data`` is copied to ``destination`` (``C:\\...`` or
        ``%SystemRoot%\\...``) through the admin share and its size checked; ``source.host_path`` must exist on
        the host; ``source.unc_path`` is run as it is (the host reaches the share itself). Returns the path."""
        if source.unc_path is not None:
            if not _UNC.match(source.unc_path):
                raise ArgumentError("source", f"{source.unc_path!r} is not a UNC path (\\\\server\\share\\file)")
            return source.unc_path
        if source.host_path is not None:
            found = self.file_facts([source.host_path]).get(source.host_path.casefold())
            if found is None or not found.exists:
                raise NotFoundError(f"{self.host}: the package {source.host_path} does not exist on the host")
            return source.host_path
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
        return destination

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

    def run_command(self, line: str, *, timeout: float, success_codes: Sequence[int] | None = (0,),
                    expected_codes: Sequence[int] = ()) -> CommandResult:
        """Run ``line`` on the host (see command.py). The exit code is exact for 0, ``success_codes`` and
        ``expected_codes`` (signed); any other code is reported as None, and fails when ``success_codes`` is
        given."""
        name = f"kbfix-{secrets.token_hex(4)}"
        base = f"Temp\\{name}"
        body = command.batch_file(line, f"%SystemRoot%\\{base}.out", f"%SystemRoot%\\{base}.res", success_codes,
                                  expected_codes)
        if not 0 < timeout <= 86400:
            raise ArgumentError("timeout", "must be between 0 and 86400 seconds")
        self.log(LOG_STEPS, f"{self.host}: run {line[:200]} as service {name}")
        service_created = False
        try:
            self._put("ADMIN$", base + ".cmd", body)
            service = self._create_service(name, f"%COMSPEC% /C %SystemRoot%\\{base}.cmd")
            service_created = True  # from here on the service is deleted again, whatever happens
            self._start_service(name, service)
            code = self._wait_for(base + ".res", timeout, line)
            output = self._fetch("ADMIN$", base + ".out") or ""
        finally:
            problems = self._cleanup(name if service_created else None, base)
        if problems:
            self.log(LOG_STEPS, f"{self.host}: could not clean up: {'; '.join(problems)}")
        result = CommandResult(line, code, output, "")
        if success_codes is not None and (code is None or code not in {command.signed(c) for c in success_codes}):
            shown = "none of the listed codes" if code is None else str(code)
            raise RemoteCommandError(f"{self.host}: {line[:200]} ended with exit code {shown} "
                                     f"(expected {', '.join(map(str, success_codes))}): {output.strip()[:300]}",
                                     code, output, "")
        return result

    def _scm(self) -> tuple[Session, Any, Any]:
        session = self.session()
        dce = session.pipe("svcctl", scmr.MSRPC_UUID_SCMR)
        code, response = session.invoke("ROpenSCManagerW", "", lambda: scmr.hROpenSCManagerW(
            dce, dwDesiredAccess=scmr.SC_MANAGER_CREATE_SERVICE | scmr.SC_MANAGER_CONNECT))
        if code != 0:
            raise TransportError(f"{self.host}: cannot open the service control manager (Win32 error {code})")
        return session, dce, response["lpScHandle"]

    def _create_service(self, name: str, binary: str) -> Any:
        """Create the one-shot service; returns its handle."""
        session, dce, manager = self._scm()
        try:
            code, response = session.invoke("RCreateServiceW", name, lambda: scmr.hRCreateServiceW(
                dce, manager, name + "\0", name + "\0", dwServiceType=scmr.SERVICE_WIN32_OWN_PROCESS,
                dwStartType=scmr.SERVICE_DEMAND_START, dwErrorControl=scmr.SERVICE_ERROR_IGNORE,
                lpBinaryPathName=binary + "\0"))
        except HostUnreachableError:
            # A broken connection is not "cannot create": the host went down or the network dropped the call
            # (found by the fleet campaign on a host restarting right then); kb_article waits and starts again.
            raise
        except TransportError as exc:  # a fault: this SCM cannot create services at all (Samba's, for one)
            raise TransportError(f"cannot create the service {name} to run the command: {exc}") from None
        if code != 0:
            raise TransportError(f"{self.host}: cannot create the service {name} (Win32 error {code})")
        return response["lpServiceHandle"]

    def _start_service(self, name: str, service: Any) -> None:
        session, dce = self.session(), self.session().pipe("svcctl", scmr.MSRPC_UUID_SCMR)
        code, _reply = session.invoke("RStartServiceW", name, lambda: scmr.hRStartServiceW(dce, service))
        if code not in (0, ERROR_SERVICE_REQUEST_TIMEOUT):
            raise TransportError(f"{self.host}: cannot start the service {name} (Win32 error {code})")

    def _wait_for(self, result: str, timeout: float, line: str) -> int | None:
        deadline = self._clock() + timeout
        interval = 0.5
        while True:
            text = self._fetch("ADMIN$", result)
            if text is not None:
                try:
                    finished = command.parse_result(text)
                except ValueError as exc:
                    raise TransportError(f"{self.host}: {exc}") from None
                if finished is not None:
                    return finished.exit_code
            if self._clock() >= deadline:
                raise RemoteCommandError(f"{self.host}: {line[:200]} did not finish within {timeout:g} seconds")
            self._sleep(min(interval, max(0.0, deadline - self._clock())))
            interval = min(interval * 1.5, 5.0)

    def _cleanup(self, service: str | None, base: str) -> list[str]:
        problems: list[str] = []
        if service is not None:
            try:
                session, dce, manager = self._scm()
                code, response = session.invoke("ROpenServiceW", service, lambda: scmr.hROpenServiceW(
                    dce, manager, service + "\0", DELETE))
                if code == 0:
                    code, _reply = session.invoke("RDeleteService", service,
                                                  lambda: scmr.hRDeleteService(dce, response["lpServiceHandle"]))
                if code not in (0, ERROR_SERVICE_MARKED_FOR_DELETE):
                    problems.append(f"service {service}: Win32 error {code}")
            except KbfixError as exc:
                problems.append(f"service {service}: {exc}")
        for suffix in (".cmd", ".out", ".res"):
            problem = self._delete("ADMIN$", base + suffix)
            if problem:
                problems.append(problem)
        return problems


# A restart request whose answer was lost is asked again when no restart came this long after it (a host that
# took it stops answering within seconds: the Server service stops early in a shutdown), up to this many times.
RESTART_ASK_AGAIN = 60.0
RESTART_ROUNDS = 3


def _text_of(value: RegistryValue | None) -> str:
    return value.data.strip() if value is not None and isinstance(value.data, str) else ""


def os_facts_from(host: str, current: Mapping[str, RegistryValue | None], options: Mapping[str, RegistryValue | None],
                  environment: Mapping[str, RegistryValue | None]) -> OsFacts:
    """OsFacts from the three registry keys' values (missing values are named in the error)."""
    version, build = _text_of(current.get("CurrentVersion")), _text_of(current.get("CurrentBuildNumber"))
    if not re.fullmatch(r"\d+\.\d+", version):
        raise TransportError(f"{host}: {CURRENT_VERSION}\\CurrentVersion is {version or 'missing'!r}, not major.minor")
    if not build.isdigit():
        # Samba's winreg, for one, synthesises this key with CurrentVersion and SystemRoot only.
        raise TransportError(f"{host}: {CURRENT_VERSION}\\CurrentBuildNumber is {build or 'missing'!r}: the host "
                             f"reports Windows {version} without a build number")
    product = _text_of(options.get("ProductType")).casefold()
    if product not in PRODUCT_TYPES:
        raise TransportError(f"{host}: {PRODUCT_OPTIONS}\\ProductType is {product or 'missing'!r}, not WinNT, "
                             "ServerNT or LanmanNT")
    suite_value = options.get("ProductSuite")
    suites = [s for s in suite_value.data if s] if suite_value and isinstance(suite_value.data, list) else []
    processor = _text_of(environment.get("PROCESSOR_ARCHITECTURE")).casefold()
    if processor not in ARCHITECTURES:
        # NT 4.0 also ran on ALPHA, MIPS and PPC, which no article covers.
        raise TransportError(f"{host}: {ENVIRONMENT}\\PROCESSOR_ARCHITECTURE is {processor or 'missing'!r}, "
                             "not x86, AMD64 or IA64")
    system_root = _text_of(current.get("SystemRoot"))
    if not system_root:
        raise TransportError(f"{host}: {CURRENT_VERSION}\\SystemRoot is missing")
    csd = _text_of(current.get("CSDVersion"))
    kind = {1: "Workstation", 2: "Server", 3: "Server"}[PRODUCT_TYPES[product]]
    caption = " ".join(p for p in [f"Microsoft Windows NT {kind} {version}", ", ".join(suites),
                                   f"({csd})" if csd else ""] if p)
    return OsFacts(version=f"{version}.{build}", service_pack=service_pack(csd),
                   architecture=ARCHITECTURES[processor], product_type=PRODUCT_TYPES[product], caption=caption,
                   system_root=system_root)


def open_for(task_vars: Mapping[str, Any], log: LogFn, **overrides: Any) -> SMBTransport:
    """The transport ``transport.select`` opens for a host with ``kbfix_transport: smb``: settings from its
    variables (checked before any packet, errors name the variable), not yet connected. ``overrides`` replace
    settings fields (``timeout``, ``retries``) for one task."""
    settings = settings_from_vars(task_vars)
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    return SMBTransport(settings, log)
