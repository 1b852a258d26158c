# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transport interface: everything the task layer may ask of a Windows host.

Two transports implement it: WinRM (``transport/winrm/``: WMI over WS-Management and the WinRM cmd shell) for
XP and later, and SMB (``transport/smb/``: shares, the remote registry and the service control manager) for
NT 4.0, which has no WinRM. Code above this module never learns which one a host uses: it calls these methods,
and ``transport.select.open_transport`` picks the implementation from the host's inventory settings.

Contract common to both (the faults contract of docs/transport.md):
- a host that refuses or drops the connection raises ``HostUnreachableError``; rejected credentials raise
  ``AuthenticationError`` naming the host; nothing raised or logged contains a password;
- reads may be retried, writes are never blindly repeated: a write whose outcome is unknown is read back first;
- ``set_value`` and ``delete_value`` verify by read-back and raise ``WriteVerificationError`` otherwise, and
  never create a key when the value cannot be written;
- ``request_count`` counts round trips put on the wire (WS-Man requests, SMB/RPC calls), for request budgets.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from ..article.model import FactRequest, FileFacts, HostFacts, OsFacts, RegistryType, RegistryValue
from ..errors import ArgumentError

T = TypeVar("T")

LogFn = Callable[[int, str], None]

# Documented verbosity (docs/transport.md): -vv steps, -vvvv each operation, -vvvvv payloads (redacted).
LOG_STEPS = 2
LOG_OPERATIONS = 4
LOG_PAYLOADS = 5

# Which pending-restart indicators a read covers: "article" = those the articles' installers leave (fewest
# requests); "full" = also Windows Update's and update.exe's, for the facts and reboot modules.
# Which pending-restart indicators a read covers (indicators.pending_restart_plan); "none": the caller already
# knows them (kbfix.windows.facts earlier in the play) and the read leaves reboot_pending alone.
RestartScope = Literal["article", "full", "none"]

# Where a hotfix record was found (HostFacts.hotfix_sources): Win32_QuickFixEngineering, or the era's registry
# record (NT 4.0 / 2000 Hotfix\Q######, XP / 2003 Updates\<product>\<SPn>\KB######).
SOURCE_QFE = "qfe"
SOURCE_REGISTRY = "registry"

DEFAULT_COMMAND_TIMEOUT = 3600.0  # seconds an installer may run

# shutdown.exe of XP / Server 2003 accepts a delay of 0-600 seconds and a comment of at most 127 characters
# (Vista and later: 10 years and 512); the lower limits hold on every supported Windows, and NT 4.0's
# InitiateSystemShutdown takes the same message through the remote registry interface.
MAX_REBOOT_DELAY = 600
MAX_REBOOT_MESSAGE = 127


@dataclass(frozen=True)
class RegistryChange:
    """The outcome of a verified registry write: the value before and as read back after."""

    changed: bool
    before: RegistryValue | None
    after: RegistryValue | None


@dataclass(frozen=True)
class CommandResult:
    """A process that ran on the host. ``exit_code`` is None when the transport could only tell that the
    code was none of the expected ones (NT 4.0's cmd cannot report an arbitrary exit code)."""

    command: str
    exit_code: int | None
    stdout: str
    stderr: str


@dataclass(frozen=True)
class PackageSource:
    """Where an installer comes from: bytes to upload, a path already on the host, or a UNC path.
    ``upload_method`` and ``certutil`` tune an upload over WinRM (``winrm/upload.py``): ``auto``, ``stdin``
    or ``echo``; whether the host has certutil (None: try it)."""

    data: bytes | None = field(default=None, repr=False)
    host_path: str | None = None
    unc_path: str | None = None
    upload_method: str = "auto"
    certutil: bool | None = None
    system_root: str | None = None  # the host's %SystemRoot%: an SMB copy goes through ADMIN$ below it


@dataclass(frozen=True)
class StagedPackage:
    """A package where the host can run it. ``method``: how it got there (``stdin``, ``echo``, ``smb``) or
    where it already was (``host``, ``unc``); ``size`` and ``sha1`` as the host reported them (None: not
    known); ``uploaded``: put there by this collection, so removed again after the install."""

    path: str
    method: str
    size: int | None
    sha1: str | None = None
    uploaded: bool = False


def _expanded_pattern(template: str) -> re.Pattern[str]:
    # Reading an expandstring may hand back the data with %VARIABLES% expanded (StdRegProv's
    # GetExpandedStringValue does), so "%SystemRoot%\x" reads back as "C:\WINDOWS\x": accept any expansion.
    parts = re.split(r"(%[^%]+%)", template)
    regex = "".join(".+?" if p.startswith("%") and p.endswith("%") and len(p) > 2 else re.escape(p) for p in parts)
    return re.compile(regex, re.DOTALL)


def same_value(desired: RegistryValue, found: RegistryValue | None) -> bool:
    """Whether the host's value is the desired one (type and data)."""
    if found is None or found.type != desired.type:
        return False
    if desired.type == "none":
        return True
    if desired.type == "expandstring" and isinstance(desired.data, str) and isinstance(found.data, str):
        return found.data == desired.data or bool(_expanded_pattern(desired.data).fullmatch(found.data))
    if desired.type == "multistring":
        return list(desired.data or []) == list(found.data or [])  # type: ignore[arg-type]
    return desired.data == found.data


# Registry element size limits (Microsoft Learn, "Registry element size limits"): a value name is at most
# 16,383 characters; a value's data at most 1 MB in the standard hive format (NT 4.0 / 2000; the later format
# is bound only by memory, so 1 MB holds on every supported Windows).
MAX_VALUE_NAME = 16383
MAX_VALUE_DATA = 1024 * 1024


def registry_data_size(value: RegistryValue) -> int:
    """Bytes the registry stores for ``value``: UTF-16 strings with their terminating NULs, the raw bytes."""
    data = value.data
    if value.type in ("string", "expandstring") and isinstance(data, str):
        return 2 * (len(data.encode("utf-16-le")) // 2 + 1)
    if value.type == "multistring" and isinstance(data, list):
        return 2 * (sum(len(str(s).encode("utf-16-le")) // 2 + 1 for s in data) + 1)
    if value.type == "dword":
        return 4
    if value.type == "qword":
        return 8
    return len(data) if isinstance(data, bytes) else 0


def check_registry_value(name: str, value: RegistryValue, *, name_field: str = "name",
                         data_field: str = "data") -> None:
    """The registry's own limits, before any request (errors name the task's fields)."""
    if len(name) > MAX_VALUE_NAME:
        raise ArgumentError(name_field, f"a value name is at most {MAX_VALUE_NAME} characters, this one has "
                                        f"{len(name)}")
    size = registry_data_size(value)
    if size > MAX_VALUE_DATA:
        raise ArgumentError(data_field, f"is {size} bytes as the registry stores it; a registry value holds at most "
                                        f"{MAX_VALUE_DATA} bytes (1 MB)")


class Transport(Protocol):
    """One host, reached one way. Instances are used by one task and closed by it."""

    @property
    def kind(self) -> str:
        """``"winrm"`` or ``"smb"``: for messages and budgets only, never for branching above this layer."""

    @property
    def host(self) -> str:
        """The host as messages name it (its address from the inventory)."""

    @property
    def request_count(self) -> int:
        """Round trips sent so far (retries included, authentication handshakes excluded)."""

    @property
    def max_in_flight(self) -> int:
        """How many requests may be outstanding at once (WinRM 2.0 allows 15 operations per user)."""

    def log(self, level: int, message: str) -> None:
        """The task's verbosity hook (levels above)."""

    def close(self) -> None:
        """Release connections; the instance may be used again (it reconnects)."""

    def run_concurrently(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run independent reads at once, bounded by ``max_in_flight``; results in call order."""

    # --- facts ------------------------------------------------------------------------------------

    def os_facts(self) -> OsFacts:
        """Version, service pack, architecture, product type, system root."""

    def host_facts(self, *, ask_version: bool = True) -> dict[str, object]:
        """Every ``kbfix_*`` fact of ``kbfix.windows.facts``, read fresh. ``ask_version=False``: a transport that
        asks its service for its version (WinRM's Identify) takes it from the OS instead, one request fewer."""

    def gather(self, os: OsFacts, request: FactRequest, *, restart_scope: RestartScope = "article") -> HostFacts:
        """Read what ``request`` asks for in as few round trips as the transport allows. A fact that could not
        be read is left out of the result (the engine then says ``unknown``); unreachable and rejected
        credentials raise."""

    def file_facts(self, paths: Sequence[str]) -> dict[str, FileFacts]:
        """Existence, version string, size and last write time of each path (keys: ``path.casefold()``)."""

    def pending_restart(self, os: OsFacts, scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
        """Whether a restart is pending and which indicators say so."""

    def boot_time(self) -> datetime.datetime:
        """When the host last started (a restart is proven only by this changing)."""

    # --- registry -------------------------------------------------------------------------------

    def read_value(self, key: str, name: str, expected: RegistryType | None = None) -> RegistryValue | None:
        """``key\\name`` or None when absent. With ``expected`` a value of another type reads as that type's
        mismatch error (``WrongTypeError``)."""

    def read_values(self, key: str, names: Iterable[str]) -> dict[str, RegistryValue | None]:
        """Several values of one key, each typed as the host reports it."""

    def key_exists(self, key: str) -> bool: ...

    def enum_keys(self, key: str) -> list[str] | None:
        """Subkey names, None when ``key`` does not exist."""

    def set_value(self, key: str, name: str, value: RegistryValue, *, create: bool = False) -> RegistryChange:
        """Make ``key\\name`` hold ``value`` (every type, the empty multistring included), verified by
        read-back; unchanged values are not written; ``create`` creates missing keys first."""

    def delete_value(self, key: str, name: str) -> RegistryChange:
        """Remove ``key\\name``; already absent is no error."""

    def check_write(self, key: str, name: str, value: RegistryValue) -> None:
        """Raise ``ArgumentError`` naming ``name`` or ``data`` when ``set_value`` could not carry this value:
        the registry's limits (``check_registry_value``) and the transport's own (WinRM: the request must fit
        the host's MaxEnvelopeSizekb, known from the host's WinRM version once the transport learned it).
        Sends nothing. ``set_value`` checks the same before its first request, so a key is never created for a
        value that cannot be written."""

    # --- processes ------------------------------------------------------------------------------

    def stage_package(self, source: PackageSource, destination: str) -> StagedPackage:
        """Put an installer on the host (or check a host/UNC path) and return the path to run it from."""

    def run_command(self, line: str, *, timeout: float, success_codes: Sequence[int] | None = (0,),
                    expected_codes: Sequence[int] = ()) -> CommandResult:
        """Run a cmd.exe command line the caller built with ``transport.escape``; raise ``RemoteCommandError``
        when ``success_codes`` is given and the exit code is not in it.

        ``expected_codes`` are the codes the caller interprets (signed HRESULTs are accepted). Every transport
        reports 0, ``success_codes`` and ``expected_codes`` exactly; any other code may come back as None. WinRM
        reports every code; NT 4.0's cmd can only compare (``if errorlevel``), so its runner looks for the
        listed ones. The caller lists them whatever the transport (docs/architecture.md)."""

    def delete_file(self, path: str) -> None:
        """Remove a file the task put on the host; a file already gone is no error."""

    def restart(self, *, timeout: float, delay: int = 0, message: str = "", connect_timeout: float | None = None,
                before: datetime.datetime | None = None) -> datetime.datetime:
        """Restart the host and wait until it answers with a new boot time, which is returned;
        ``RebootTimeoutError`` (unreachable) when it does not within ``timeout`` seconds."""
