# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hotfix packages on any transport: which installer, where the file is, what its exit code means, whether a
hotfix is installed (and by which record), and how to remove it again.

Three installer families cover Windows NT 4.0 to 2008 R2, each with its own switches and records:

* ``hotfix`` -- NT 4.0 / 2000 ``hotfix.exe`` packages (``Q253729i.exe``): ``-m -q -z`` (unattended, quiet,
  no restart); record ``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\Q253729``; uninstall
  data in ``%SystemRoot%\\$NtUninstallQ253729$``.
* ``update`` -- XP / 2003 ``update.exe`` packages (``WindowsXP-KB828753-x86-ENU.exe``): ``/quiet /norestart``;
  record ``HKLM\\SOFTWARE\\Microsoft\\Updates\\<product>\\<SPn>\\KB828753`` where SPn names the service pack
  that will *contain* the fix (so it cannot be computed: the tree is enumerated); uninstaller
  ``spuninst.exe`` under ``$NtUninstallKB828753$``, named by the record's ``UninstallCommand``.
* ``msu`` -- Vista and later (``Windows6.0-KB977381-x64.msu``): ``wusa.exe <file> /quiet /norestart``; the
  CBS package keys (``Package_for_KB977381~...``) with ``CurrentState``; Win32_QuickFixEngineering lists
  these only. ``wusa /uninstall`` exists from Windows 7 / 2008 R2 (6.1); on 6.0 the CBS package is removed
  with ``pkgmgr /up:<package>``.

Everything goes through ``transport.base.Transport``: file and registry reads, staging the package, and
running the installer as a ``cmd.exe`` line (the WinRM cmd shell, or a one-shot service on NT 4.0); nothing
here knows which transport it is, and nothing runs PowerShell.
"""

from __future__ import annotations

import dataclasses
import ntpath
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, cast

from ..article import engine
from ..article.model import FactRequest, HostFacts, OsFacts, RegistryValue, registry_key_id
from ..article.spec import ArticleSpec
from ..errors import AmbiguousWriteError, ArgumentError, KbfixError, NotFoundError, RemoteCommandError
from ..package import policy as package_policy
from ..transport import escape
from ..transport.base import (
    DEFAULT_COMMAND_TIMEOUT,
    LOG_STEPS,
    SOURCE_QFE,
    SOURCE_REGISTRY,
    CommandResult,
    Transport,
)
from ..transport.retry import repeat_when_lost
from .staging import PackageLocation, SourceKind, Staging, read_controller_file, remote_location, source_kind

# Package locations lived here before staging had a file of its own; callers still name them installer.X.
__all__ = ["PackageLocation", "SourceKind", "Staging", "read_controller_file", "remote_location", "source_kind"]

InstallerKind = Literal["update", "hotfix", "msu"]
ExitMeaning = Literal["success", "restart_required", "already_installed", "not_applicable", "already_absent"]

INSTALLER_KINDS: tuple[str, ...] = ("update", "hotfix", "msu")

# Unattended and without the installer's own restart: the play decides when a host restarts.
DEFAULT_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "update": ("/quiet", "/norestart"),
    "hotfix": ("-m", "-q", "-z"),
    "msu": ("/quiet", "/norestart"),
}

# Windows Update agent result codes that wusa.exe (and, on hosts that have the agent, update.exe) return.
WU_S_ALREADY_INSTALLED = 2359302  # 0x00240006
WU_S_ALREADY_UNINSTALLED = 2359303  # 0x00240007
WU_E_NOT_APPLICABLE = -2145124329  # 0x80240017
ERROR_SUCCESS_REBOOT_REQUIRED = 3010

DEFAULT_EXIT_CODES: dict[int, ExitMeaning] = {
    0: "success",
    ERROR_SUCCESS_REBOOT_REQUIRED: "restart_required",
    WU_S_ALREADY_INSTALLED: "already_installed",
    WU_E_NOT_APPLICABLE: "not_applicable",
}
UNINSTALL_EXIT_CODES: dict[int, ExitMeaning] = {
    0: "success",
    ERROR_SUCCESS_REBOOT_REQUIRED: "restart_required",
    WU_S_ALREADY_UNINSTALLED: "already_absent",
}

NT_HOTFIX_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix"
UPDATES_KEY = r"HKLM\SOFTWARE\Microsoft\Updates"
CBS_PACKAGES_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages"

# CBS package CurrentState (servicing stack): what an installed, pending or superseded package looks like.
CBS_STATES: dict[int, str] = {
    0x00: "absent", 0x05: "uninstall_pending", 0x10: "resolving", 0x20: "resolved", 0x30: "staging",
    0x40: "staged", 0x50: "superseded", 0x60: "install_pending", 0x65: "partially_installed",
    0x70: "installed", 0x80: "permanent",
}
CBS_PRESENT_STATES = ("install_pending", "installed", "permanent", "superseded")

SOURCE_CBS = "cbs"
SOURCE_FILES = "files"

_HOTFIX_ID = re.compile(r"^(KB|Q)(\d{5,7})$")
_ID_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(KB|Q)(\d{5,7})(?!\d)", re.IGNORECASE)
_NT4_HOTFIX_NAME = re.compile(r"^Q\d{5,7}[ia]?\.exe$", re.IGNORECASE)  # i = Intel, a = Alpha
_UPDATE_NAME = re.compile(r"^Windows[A-Za-z0-9.]*-KB\d{5,7}\b.*\.exe$", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ arguments


def hotfix_id(value: Any, field_name: str = "id") -> str:
    """``KB977381``, ``kb977381`` or ``977381`` -> ``KB977381``; ``q253729`` -> ``Q253729``."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ArgumentError(field_name, f"must be a KB or Q number like KB977381 or Q253729, got {value!r}")
    text = str(value).strip().upper()
    if text.isdigit():
        text = "KB" + text
    if not _HOTFIX_ID.fullmatch(text):
        raise ArgumentError(field_name, f"{value!r} is not a KB or Q number like KB977381 or Q253729")
    return text


def hotfix_number(hotfix: str) -> str:
    """The digits of a hotfix id (``KB977381`` -> ``977381``), as ``wusa /kb:`` wants them."""
    match = _HOTFIX_ID.fullmatch(hotfix)
    if match is None:
        raise ArgumentError("id", f"{hotfix!r} is not a KB or Q number")
    return match.group(2)


def detect_installer(filename: str, field_name: str = "source") -> InstallerKind:
    """The installer family from the package's file name (the names Microsoft gave each family)."""
    name = ntpath.basename(filename.replace("/", "\\"))
    if name.casefold().endswith(".msu"):
        return "msu"
    if _NT4_HOTFIX_NAME.match(name):
        return "hotfix"
    if _UPDATE_NAME.match(name):
        return "update"
    raise ArgumentError(field_name, f"cannot tell the installer from the file name {name!r} (update.exe packages are "
                                    "named like WindowsXP-KB828753-x86-ENU.exe, NT 4.0 hotfixes Q253729i.exe, "
                                    "others end in .msu): give the installer")


def check_installer_file(filename: str, kind: InstallerKind, field_name: str = "source") -> None:
    """An installer given explicitly must be able to run the file: wusa.exe takes .msu packages, update.exe and
    hotfix.exe packages are programs (.exe). Anything else would only fail on the host, after detection."""
    wanted = ".msu" if kind == "msu" else ".exe"
    name = ntpath.basename(filename.replace("/", "\\"))
    if not name.casefold().endswith(wanted):
        raise ArgumentError(field_name, f"{name!r} is not a {kind} package: those end in {wanted}")


def check_package_name(filename: str, hotfix: str, field_name: str = "source") -> None:
    """Refuse a package whose name names another hotfix: installing the wrong file would be reported as
    this one."""
    named = {f"{m.group(1).upper()}{m.group(2)}" for m in _ID_IN_NAME.finditer(ntpath.basename(filename))}
    if named and hotfix not in named:
        raise ArgumentError(field_name, f"{ntpath.basename(filename)!r} is a package for {', '.join(sorted(named))}, "
                                        f"not {hotfix}")


def exit_codes(overrides: Mapping[int, str] | None = None) -> dict[int, ExitMeaning]:
    """The known codes, with a package's own list on top (a spec's ``exit_codes``)."""
    codes = dict(DEFAULT_EXIT_CODES)
    for code, meaning in (overrides or {}).items():
        codes[int(code)] = cast(ExitMeaning, meaning)
    return codes


# ------------------------------------------------------------------------------------------- sources


def _command_failed(what: str, result: CommandResult) -> RemoteCommandError:
    """An installer or uninstaller ended with an exit code that means nothing good: the code in decimal and
    hex (Windows installers document HRESULTs in hex) and the start of what it printed."""
    detail = (result.stderr or result.stdout).strip()
    code = ("an exit code it does not document" if result.exit_code is None
            else f"{result.exit_code} ({result.exit_code & 0xFFFFFFFF:#010x})")
    return RemoteCommandError(
        f"{what} exited with {code}" + (f": {detail[:300]}" if detail else ""),
        result.exit_code, result.stdout, result.stderr)


# -------------------------------------------------------------------------------------------- install


@dataclass(frozen=True)
class InstallRequest:
    hotfix_id: str
    package: PackageLocation  # the package file itself
    installer: InstallerKind
    arguments: tuple[str, ...]
    exit_codes: Mapping[int, ExitMeaning]
    timeout: float = DEFAULT_COMMAND_TIMEOUT
    # How a controller package is judged before staging (package.policy); the spec entry's pinned hash.
    policy: package_policy.PackagePolicy = field(default_factory=package_policy.PackagePolicy)
    sha256: str | None = None
    source_field: str = "source"  # the task argument a refusal names


@dataclass(frozen=True)
class InstallResult:
    hotfix_id: str
    package: str  # file name
    installer: InstallerKind
    source: SourceKind
    command: str
    exit_code: int
    meaning: ExitMeaning
    staged_by: str = ""  # how the package reached the host: stdin, echo, smb (uploads), host, unc
    package_check: package_policy.PackageCheck | None = None

    @property
    def restart_required(self) -> bool:
        return self.meaning == "restart_required"

    @property
    def changed(self) -> bool:
        return self.meaning in ("success", "restart_required")

    def to_dict(self) -> dict[str, Any]:
        return {"hotfix_id": self.hotfix_id, "package": self.package, "installer": self.installer,
                "source": self.source, "command": self.command, "exit_code": self.exit_code,
                "result": self.meaning, "restart_required": self.restart_required, "staged_by": self.staged_by,
                "package_check": self.package_check.to_dict() if self.package_check else None}


def check_controller_package(request: InstallRequest, os_facts: OsFacts | None) -> package_policy.PackageCheck | None:
    """The package's hash, signature and own description judged on the controller (None for a package on
    the host or a share: the controller cannot read it); refused with ``ArgumentError`` on the task's field."""
    if request.package.kind != "controller":
        return None
    expected = package_policy.Expectation(
        request.hotfix_id, os_facts.architecture if os_facts else None, os_facts.version if os_facts else None,
        request.sha256)
    return package_policy.check_package(request.package.path, expected, request.policy, request.source_field)


def check_arguments(installer: InstallerKind, path: str, arguments: Sequence[str], field_name: str) -> None:
    """Installer arguments that cmd.exe cannot carry literally, refused before any request: the command line is
    built only after detection has talked to the host, too late for a bad argument to fail cleanly."""
    for index, argument in enumerate(arguments):
        escape.cmd_quote(argument, f"{field_name}[{index}]")
    length = len(install_command(installer, path, arguments))
    if length > escape.CMD_MAX_LINE:
        raise ArgumentError(field_name, f"make a command line of {length} characters; cmd.exe takes at most "
                                        f"{escape.CMD_MAX_LINE}")


def install_command(installer: InstallerKind, path: str, arguments: Sequence[str]) -> str:
    if installer == "msu":
        # wusa.exe is in system32 on every 6.x host; the package is its first argument.
        return escape.cmd_line("wusa.exe", [path, *arguments])
    return escape.cmd_line(path, list(arguments))


def exit_meaning(code: int | None, codes: Mapping[int, ExitMeaning]) -> ExitMeaning | None:
    """What an exit code means, None when the table does not know it (or the transport could not tell it)."""
    if code is None:
        return None
    # Exit codes travel as unsigned 32-bit numbers; specs and Microsoft's tables write HRESULTs signed.
    signed = code - 0x100000000 if code >= 0x80000000 else code
    return codes.get(signed)


def install(transport: Transport, request: InstallRequest, os_facts: OsFacts, *,
            not_applicable_raises: bool = True, staging: Staging | None = None) -> InstallResult:
    """Stage the package, run its installer and map the exit code. Unknown codes, and ``not_applicable``
    unless ``not_applicable_raises`` is false (the article runner weighs it against the files:
    ``engine.with_install_answer``), raise ``RemoteCommandError`` with the code and the installer's output.
    ``staging``: the task's staged packages (several articles, one package file: one upload).
    A controller package is judged (``check_controller_package``) before any byte of it is staged."""
    checked = check_controller_package(request, os_facts)
    result = _install(transport, request, os_facts, not_applicable_raises, staging)
    return dataclasses.replace(result, package_check=checked)


def _install(transport: Transport, request: InstallRequest, os_facts: OsFacts,
             not_applicable_raises: bool, staging: Staging | None) -> InstallResult:
    staging = staging if staging is not None else Staging(transport, os_facts)
    staged = staging.stage(request.package)
    path = staged.path
    command = install_command(request.installer, path, request.arguments)
    transport.log(LOG_STEPS, f"{transport.host}: installing {request.hotfix_id}: {command}")

    def run() -> CommandResult | InstallResult:
        return transport.run_command(command, timeout=request.timeout, success_codes=None,
                                     expected_codes=tuple(request.exit_codes))

    def settle(lost: KbfixError) -> CommandResult | InstallResult | None:
        settled = _settle_lost_install(transport, request, os_facts, command, lost)
        if settled is None:
            transport.log(LOG_STEPS, f"{transport.host}: {request.hotfix_id} is not on the host: installing again")
        return settled

    try:
        # The repeat can be lost too: settle again, a bounded number of rounds.
        outcome = repeat_when_lost(run, settle, lost=(AmbiguousWriteError,), rounds=SETTLE_ROUNDS)
    finally:
        staging.release(staged)
    if isinstance(outcome, InstallResult):
        return dataclasses.replace(outcome, staged_by=staged.method)
    result = outcome
    meaning = exit_meaning(result.exit_code, request.exit_codes)
    if meaning is None or result.exit_code is None:
        raise _command_failed(f"{transport.host}: installing {request.hotfix_id} failed: {request.package.filename}",
                              result)
    if meaning == "not_applicable" and not_applicable_raises:
        raise RemoteCommandError(
            f"{transport.host}: {request.hotfix_id} does not apply to this host: {request.package.filename} "
            f"exited with {result.exit_code} ({result.exit_code & 0xFFFFFFFF:#010x}, not applicable: a service pack "
            "or a later update already contains it, or the component it updates is not installed)",
            result.exit_code, result.stdout, result.stderr)
    return InstallResult(request.hotfix_id, request.package.filename, request.installer, request.package.kind,
                         command, result.exit_code, meaning, staged.method)


SETTLE_ROUNDS = 4  # as many as the WinRM client retries a read


def _settle_lost_install(transport: Transport, request: InstallRequest, os_facts: OsFacts, command: str,
                         lost: KbfixError) -> InstallResult | None:
    """The installer's Command (or its result) was lost with the connection: the installer may have run.
    Look at the host rather than run it again blindly: when the hotfix is recorded, or its CBS package is
    waiting for the restart, it ran; None when nothing shows it, and running it (again) is the only way on.
    The exit code is then not known: the result carries the code the package's table gives that outcome."""
    transport.log(LOG_STEPS, f"{transport.host}: {lost}; detecting {request.hotfix_id} before deciding")
    detection = detect(transport, os_facts, request.hotfix_id)
    if not detection.installed:
        return None
    meaning: ExitMeaning = "restart_required" if detection.install_pending or detection.reboot_pending \
        else "success"
    codes = [code for code, m in request.exit_codes.items() if m == meaning]
    transport.log(LOG_STEPS, f"{transport.host}: {request.hotfix_id} was installed before the connection broke "
                             f"({', '.join(detection.sources)}): {meaning}")
    return InstallResult(request.hotfix_id, request.package.filename, request.installer, request.package.kind,
                         command, codes[0] if codes else 0, meaning)


# ------------------------------------------------------------------------------------------ detection


@dataclass
class Detection:
    """Where a hotfix shows up on one host. ``installed``: a record says so (QFE, the era's registry
    record, a CBS package present); ``files_current``: a spec's file table says the fixed files are there
    (None without a spec or without a deciding file row)."""

    hotfix_id: str
    qfe: bool = False
    records: list[str] = field(default_factory=list)  # legacy registry record keys found
    cbs_packages: dict[str, str] = field(default_factory=dict)  # CBS package name -> state
    file_checks: list[dict[str, Any]] = field(default_factory=list)
    files_current: bool | None = None
    evidence_status: str | None = None  # the spec's verdict status with file evidence only
    reboot_pending: bool = False
    reboot_pending_sources: tuple[str, ...] = ()

    @property
    def cbs_present(self) -> list[str]:
        return [name for name, state in self.cbs_packages.items() if state in CBS_PRESENT_STATES]

    @property
    def install_pending(self) -> bool:
        return any(state == "install_pending" for state in self.cbs_packages.values())

    @property
    def installed(self) -> bool:
        return self.qfe or bool(self.records) or bool(self.cbs_present)

    @property
    def present(self) -> bool:
        """The fix is on the host: recorded, or (with a spec) its files say so, e.g. after a superseding
        update that does not list this hotfix."""
        return self.installed or self.files_current is True

    @property
    def sources(self) -> list[str]:
        found = []
        if self.qfe:
            found.append(SOURCE_QFE)
        if self.records:
            found.append(SOURCE_REGISTRY)
        if self.cbs_present:
            found.append(SOURCE_CBS)
        if self.files_current:
            found.append(SOURCE_FILES)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "hotfix_id": self.hotfix_id, "installed": self.installed, "present": self.present,
            "sources": self.sources, "qfe": self.qfe, "registry_records": list(self.records),
            "cbs_packages": dict(self.cbs_packages), "file_checks": list(self.file_checks),
            "files_current": self.files_current, "evidence_status": self.evidence_status,
            "reboot_pending": self.reboot_pending, "reboot_pending_sources": list(self.reboot_pending_sources),
        }


def _era(os_facts: OsFacts) -> Literal["nt", "updates", "cbs"]:
    major, minor = os_facts.release
    if major >= 6:
        return "cbs"
    if major == 5 and minor >= 1:
        return "updates"
    return "nt"  # NT 4.0 and Windows 2000 record hotfixes under ...\Windows NT\CurrentVersion\Hotfix


def evidence_spec(spec: ArticleSpec) -> ArticleSpec:
    """The spec reduced to what says whether the fix is installed: files, hotfix records, prerequisites.
    Registry settings (and the variables they read) are configuration, not evidence of the hotfix."""
    return dataclasses.replace(spec, variables=(), registry=())


def _fact_request(os_facts: OsFacts, hotfix: str, spec: ArticleSpec | None) -> FactRequest:
    keys = (f"{NT_HOTFIX_KEY}\\{hotfix}",) if _era(os_facts) == "nt" else ()
    request = FactRequest(registry_keys=keys, hotfix_ids=(hotfix,))
    if spec is not None:
        request = request.merged(engine.fact_request(evidence_spec(spec), os_facts, {}))
    return request


def _subkeys(transport: Transport, key: str) -> list[str]:
    return transport.enum_keys(key) or []


def updates_records(transport: Transport, hotfix: str) -> list[str]:
    """XP / 2003 records ``Updates\\<product>\\<SPn>\\<id>``: the SPn is the service pack that will contain
    the fix, unknowable in advance, so the tree is listed (one EnumKey per level, levels concurrent)."""
    products = [f"{UPDATES_KEY}\\{p}" for p in _subkeys(transport, UPDATES_KEY)]
    levels = transport.run_concurrently([partial(_subkeys, transport, p) for p in products])
    packs = [f"{p}\\{sp}" for p, sps in zip(products, levels, strict=True) for sp in sps]
    listed = transport.run_concurrently([partial(_subkeys, transport, sp) for sp in packs])
    return [f"{sp}\\{name}" for sp, names in zip(packs, listed, strict=True) for name in names
            if name.upper() == hotfix]


def cbs_packages(transport: Transport, hotfix: str) -> dict[str, str]:
    """CBS packages of a hotfix (``Package_for_KB977381~...``, ``Package_1_for_KB938475~...``) and their
    state (``CurrentState``)."""
    pattern = re.compile(rf"_for_{re.escape(hotfix)}(?:_[^~]*)?~", re.IGNORECASE)
    names = [n for n in _subkeys(transport, CBS_PACKAGES_KEY) if pattern.search(n)]
    values = transport.run_concurrently([
        partial(transport.read_value, f"{CBS_PACKAGES_KEY}\\{n}", "CurrentState", "dword") for n in names])
    return {name: _cbs_state(value) for name, value in zip(names, values, strict=True)}


def _cbs_state(value: RegistryValue | None) -> str:
    if value is None or not isinstance(value.data, int):
        return "unknown"
    return CBS_STATES.get(value.data, f"state_{value.data:#x}")


def _records(transport: Transport, os_facts: OsFacts, hotfix: str) -> tuple[list[str], dict[str, str]]:
    era = _era(os_facts)
    if era == "updates":
        return updates_records(transport, hotfix), {}
    if era == "cbs":
        return [], cbs_packages(transport, hotfix)
    return [], {}


def detect(transport: Transport, os_facts: OsFacts, hotfix: str, spec: ArticleSpec | None = None) -> Detection:
    """Every detection source for ``hotfix`` on this host; file evidence when ``spec`` is given."""
    request = _fact_request(os_facts, hotfix, spec)
    # The era's records are listed while the gather runs: both are bounded by the client's in-flight limit.
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The module refuses to install while any restart is pending, so it reads every indicator.
        gathered = pool.submit(transport.gather, os_facts, request, restart_scope="full")
        listed = pool.submit(_records, transport, os_facts, hotfix)
        facts, (records, packages) = gathered.result(), listed.result()
    nt_key = registry_key_id(f"{NT_HOTFIX_KEY}\\{hotfix}")
    legacy = [key for key in request.registry_keys
              if registry_key_id(key) == nt_key and facts.registry_keys.get(nt_key)]
    detection = Detection(
        hotfix_id=hotfix, qfe=SOURCE_QFE in facts.hotfix_sources.get(hotfix, ()),
        records=list(dict.fromkeys([*legacy, *records])), cbs_packages=packages,
        reboot_pending=facts.reboot_pending, reboot_pending_sources=facts.reboot_pending_sources,
    )
    if spec is not None:
        _add_file_evidence(detection, spec, facts)
    return detection


def _add_file_evidence(detection: Detection, spec: ArticleSpec, facts: HostFacts) -> None:
    verdict = engine.evaluate(evidence_spec(spec), facts, {})
    detection.evidence_status = verdict.status
    files = [c for c in verdict.checks if c.kind == "file"]
    detection.file_checks = [c.to_dict() for c in files]
    decided = [c.passed for c in files if c.passed is not None]
    if verdict.status == "not_applicable" or not decided:
        detection.files_current = None
    else:
        detection.files_current = all(decided)


# ------------------------------------------------------------------------------------------ uninstall


@dataclass(frozen=True)
class UninstallResult:
    hotfix_id: str
    commands: tuple[str, ...]
    exit_codes: tuple[int, ...]
    meaning: ExitMeaning

    @property
    def restart_required(self) -> bool:
        return self.meaning == "restart_required"

    def to_dict(self) -> dict[str, Any]:
        return {"hotfix_id": self.hotfix_id, "commands": list(self.commands), "exit_codes": list(self.exit_codes),
                "result": self.meaning, "restart_required": self.restart_required}


def _update_uninstaller(transport: Transport, os_facts: OsFacts, hotfix: str, records: Sequence[str]) -> str:
    # update.exe writes the uninstaller's path into the record; an old or hand-made record may lack it.
    for record in records:
        value = transport.read_value(record, "UninstallCommand", "string")
        if value is not None and isinstance(value.data, str) and value.data.strip():
            return value.data.strip().strip('"')
    return f"{os_facts.system_root}\\$NtUninstall{hotfix}$\\spuninst\\spuninst.exe"


def _require_file(transport: Transport, path: str, hotfix: str) -> None:
    facts = transport.file_facts([path]).get(path.casefold())
    if facts is None or not facts.exists:
        raise NotFoundError(f"{transport.host}: cannot uninstall {hotfix}: its uninstaller {path} does not exist "
                            "(installed without a backup (/n), or the $NtUninstall folder was removed)")


def uninstall_commands(transport: Transport, os_facts: OsFacts, detection: Detection) -> list[str]:
    """The command lines that remove the hotfix on this host's era."""
    hotfix = detection.hotfix_id
    major, minor = os_facts.release
    if major > 6 or (major == 6 and minor >= 1):
        return [escape.cmd_line("wusa.exe", ["/uninstall", f"/kb:{hotfix_number(hotfix)}", "/quiet", "/norestart"])]
    if major == 6:
        # wusa.exe on Vista / 2008 has no /uninstall; the servicing stack's own tool removes the package.
        packages = detection.cbs_present
        if not packages:
            raise NotFoundError(f"{transport.host}: {hotfix} has no CBS package to remove (it is listed only by "
                                f"{', '.join(detection.sources) or 'nothing'})")
        return [escape.cmd_line("pkgmgr.exe", [f"/up:{p}", "/quiet", "/norestart"]) for p in sorted(packages)]
    if _era(os_facts) == "updates":
        program = _update_uninstaller(transport, os_facts, hotfix, detection.records)
        _require_file(transport, program, hotfix)
        return [escape.cmd_line(program, ["/quiet", "/norestart"])]
    program = f"{os_facts.system_root}\\$NtUninstall{hotfix}$\\hotfix.exe"
    _require_file(transport, program, hotfix)
    return [escape.cmd_line(program, ["-y", "-m", "-z"])]  # -y: uninstall mode of hotfix.exe


def uninstall(transport: Transport, os_facts: OsFacts, detection: Detection,
              timeout: float = DEFAULT_COMMAND_TIMEOUT) -> UninstallResult:
    commands = uninstall_commands(transport, os_facts, detection)
    codes: list[int] = []
    meanings: list[ExitMeaning] = []
    for command in commands:
        transport.log(LOG_STEPS, f"{transport.host}: removing {detection.hotfix_id}: {command}")
        result = transport.run_command(command, timeout=timeout, success_codes=None,
                                       expected_codes=tuple(UNINSTALL_EXIT_CODES))
        meaning = exit_meaning(result.exit_code, UNINSTALL_EXIT_CODES)
        if meaning is None or result.exit_code is None:
            raise _command_failed(f"{transport.host}: removing {detection.hotfix_id} failed: {command}", result)
        codes.append(result.exit_code)
        meanings.append(meaning)
    overall: ExitMeaning = ("restart_required" if "restart_required" in meanings
                            else "success" if "success" in meanings else "already_absent")
    return UninstallResult(detection.hotfix_id, tuple(commands), tuple(codes), overall)


def pending_restart_refusal(transport: Transport, what: str, sources: Sequence[str]) -> KbfixError:
    """The error (or note) for an install refused because a restart is pending."""
    return KbfixError(f"{transport.host}: not installing {what}: a restart is pending "
                      f"({', '.join(sources) or 'pending'}); restart the host first, or set allow_pending_reboot")
