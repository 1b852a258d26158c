# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the verdict and plan are derived from (``Assessment``), whether a pending restart concerns the
fix, and the plan's steps (docs/engine.md, "The plan", "reboot_pending, exactly")."""

from __future__ import annotations

import dataclasses
import datetime
import ntpath
from dataclasses import dataclass

from .checks import (
    Outcome,
)
from .model import (
    HostFacts,
    InstallDetails,
    ManualDetails,
    OsFacts,
    PlanStep,
    RebootDetails,
)
from .scope import (
    expand_path,
    rows_for,
)
from .spec_model import (
    ArticleSpec,
    OsEntry,
    Package,
)

# ----------------------------------------------------------------------------------------------- verdict


def _install_step(spec: ArticleSpec, package: Package) -> PlanStep:
    return PlanStep(
        action="install_package",
        description=f"install {spec.id} from {package.file} ({package.installer})",
        details=InstallDetails(hotfix_id=spec.hotfix_ids[0], package=package.file, installer=package.installer,
                               arguments=package.arguments, success_codes=dict(package.exit_codes),
                               restart=package.restart, sha256=package.sha256),
    )


def _no_package_step(spec: ArticleSpec, entry: OsEntry, os: OsFacts) -> PlanStep:
    where = f"{entry.name} SP{os.service_pack}/{os.architecture}"
    remedy = (f"download it from {spec.url} or the Microsoft Update Catalog, then add `packages` to the spec "
              f"({spec.source})")
    return PlanStep("manual", f"{spec.id}: the article names no package for {where}: {remedy}",
                    ManualDetails(reason=f"the article names no package for {where}", remedy=remedy))


@dataclass
class Assessment:
    """Everything the status and the plan are derived from."""

    files: list[Outcome]
    settings: list[Outcome]
    prerequisites: list[Outcome]
    hotfix: Outcome
    entry: OsEntry  # the applicability entry the host is judged as
    package: Package | None  # None: the article names no package for this OS
    recorded: bool
    reboot_pending: bool
    # Whether the pending restart is for this article's own change, and why (see restart_for_fix).
    restart_for_fix: tuple[bool, str] = (True, "")

    @property
    def files_bad(self) -> bool:
        return any(o.failed or o.undecided for o in self.files) or (
            self.hotfix.decisive and self.hotfix.result.passed is not True)

    @property
    def installed_awaiting_restart(self) -> bool:
        # The installer ran (its record is there) but in-use files are replaced at the next boot
        # (PendingFileRenameOperations): reinstalling would not help, restarting will.
        return self.reboot_pending and self.recorded and self.files_bad

    @property
    def fix_awaiting_restart(self) -> bool:
        # Files on disk are right, but a driver or service loaded before they were replaced may still be
        # the old one until the restart that is pending.
        return (self.reboot_pending and self.package is not None and self.package.restart and not self.files_bad
                and self.restart_for_fix[0])


def _rename_target(entry: str) -> str:
    # "!\\??\\C:\\Windows\\..." -> "c:\\windows\\...": "!" asks to replace an existing file, "\\??\\" is the
    # NT object namespace prefix of a DOS path.
    text = entry.strip().lstrip("!")
    for prefix in ("\\??\\", "\\\\?\\"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.casefold()


def restart_for_fix(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> tuple[bool, str]:
    """Does the pending restart concern this article's change? (True, why) when its files wait for it or
    the facts cannot rule that out; (False, why) when they were in place before the last boot and no pending
    rename names them (docs/engine.md, "reboot_pending, exactly")."""
    paths = sorted({expand_path(r.path, host.os) for r in rows_for(spec, entry, host.os)
                    if r.path is not None and r.check != "info"})
    if host.pending_renames is None:
        return True, "the pending file renames could not be read"
    queued = {_rename_target(e) for e in host.pending_renames}
    named = [p for p in paths if p.casefold() in queued]
    if named:
        return True, f"PendingFileRenameOperations replaces {', '.join(named)} at the next start"
    # update.exe renames an in-use file aside (a .tmp next to it, queued for deletion) and writes the new one
    # in its place: the new file is on disk, the old image still runs, and no entry names the file itself.
    folders = {ntpath.dirname(p).casefold(): p for p in paths}
    beside = [folders[ntpath.dirname(q)] for q in sorted(queued) if ntpath.dirname(q) in folders]
    if beside:
        return True, (f"PendingFileRenameOperations holds a file next to {beside[0]}, as an installer leaves "
                      "when it replaces a file in use")
    boot = host.os.last_boot
    if boot is None:
        return True, "the last boot time is not known"
    for path in paths:
        facts = host.file(path)
        if facts is None or not facts.exists or facts.modified is None:
            return True, f"the write time of {path} is not known"
        if facts.modified > boot:
            return True, (f"{path} was written at {facts.modified.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
                          f"after the last boot at {boot.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    return False, (f"{spec.id}'s files were in place before the last boot at "
                   f"{boot.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC and no pending rename names them")


def _branch_steps(spec: ArticleSpec, assessed: Assessment, os: OsFacts) -> list[PlanStep]:
    """The file steps: the package, or, when update.exe already ran and left a GDR file above the QFE fix,
    the remedy it cannot apply itself (docs/engine.md, "GDR files above the QFE fix")."""
    gdr = [o for o in assessed.files if o.gdr_above_fix]
    others_bad = any((o.failed or o.undecided) and not o.gdr_above_fix for o in assessed.files)
    paths = [o.result.id.removeprefix("file:") for o in gdr]
    if gdr and assessed.recorded and not others_bad:
        # The hotfix is recorded, so update.exe has run: it keeps a higher-numbered file and found no QFE twin
        # of it in $hf_mig$. Running it again changes nothing.
        switch = f"/B:SP{os.service_pack}QFE"
        remedy = (f"reinstall the security update that installed {gdr[0].result.found} with {switch}, so that "
                  "it lays down its QFE build, which carries the earlier QFE fixes")
        return [PlanStep("manual", f"{spec.id}: {remedy}",
                         ManualDetails(reason=f"{', '.join(paths)} stay on the GDR branch above the QFE fix; "
                                              f"{spec.id} is recorded, and update.exe does not replace a "
                                              "higher-numbered file", remedy=remedy, files=tuple(paths),
                                       switch=switch,
                                       restart=assessed.package is not None and assessed.package.restart))]
    if assessed.package is None:
        return [_no_package_step(spec, assessed.entry, os)]
    step = _install_step(spec, assessed.package)
    if gdr:
        # update.exe does not install the package's lower-numbered file; it moves the file to the QFE branch
        # with the QFE build of the same number that the security update left in %SystemRoot%\$hf_mig$.
        step = dataclasses.replace(step, description=step.description + (
            f"; update.exe moves {', '.join(paths)} to the QFE branch from %SystemRoot%\\$hf_mig$"),
            details=dataclasses.replace(step.details_as(InstallDetails), qfe_migration=tuple(paths)))
    return [step]


def plan_steps(spec: ArticleSpec, assessed: Assessment, os: OsFacts) -> list[PlanStep]:
    steps = []
    if assessed.files_bad and not assessed.installed_awaiting_restart:
        steps += _branch_steps(spec, assessed, os)
    steps += [o.step for o in assessed.settings if o.step is not None]
    needs_restart = any(s.restart for s in steps)
    if assessed.installed_awaiting_restart or assessed.fix_awaiting_restart:
        steps.append(PlanStep("reboot", "restart to bring the installed fix into effect",
                              RebootDetails(f"{spec.id} is installed; its files take effect at the next start")))
    elif steps and (needs_restart or assessed.reboot_pending):
        reason = "the changes take effect at the next start" if needs_restart else "a restart is already pending"
        steps.append(PlanStep("reboot", f"restart: {reason}", RebootDetails(f"{spec.id}: {reason}")))
    return steps
