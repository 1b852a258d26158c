# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kb_article's enforcement: carry out the plans of noncompliant verdicts (in check mode: report them), record
each change, and the result of a run. ``article_runner`` judges, calls this, and judges again.

Pure library: no Ansible imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..article import engine
from ..article.model import (
    HostFacts,
    InstallDetails,
    PlanStep,
    RegistryDetails,
    RegistryValue,
    Verdict,
)
from ..article.spec import ArticleSpec, require_installable
from ..errors import ArgumentError, ArticleFault, HostUnreachableError, KbfixError
from ..package.policy import PackagePolicy
from ..transport.base import Transport
from . import installer, preflight

State = Literal["audited", "enforced"]
STATES: tuple[str, ...] = ("audited", "enforced")

# Only a noncompliant verdict is acted on: "unknown" means facts are missing, and installing blind could
# downgrade a superseding update; the others need nothing (or only the restart the play schedules).
ENFORCEABLE = ("noncompliant",)


class Identified(Protocol):
    """An article as enforcement needs it: its id and its spec."""

    @property
    def id(self) -> str: ...

    @property
    def spec(self) -> ArticleSpec: ...


@dataclass(frozen=True)
class Options:
    state: State = "audited"
    package_source: installer.PackageLocation | None = None
    package_policy: PackagePolicy = field(default_factory=PackagePolicy)  # how its packages are judged
    allow_pending_reboot: bool = False
    check_mode: bool = False
    install_timeout: float = 3600.0
    # Seconds to wait for a host that goes down during the task (0 = report it unreachable at once).
    resume_timeout: float = 0.0


@dataclass
class RunResult:
    verdicts: list[Verdict]
    verdicts_before: list[Verdict] | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    diff: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restart_required: bool = False
    answers: dict[str, installer.InstallResult] = field(default_factory=dict)  # article id -> installer answer
    # After changes: the pending-restart sources the host reported when judged again ("article" scope).
    reboot_pending_sources: tuple[str, ...] | None = None

    @property
    def changed(self) -> bool:
        return any(c.get("changed") for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "changed": self.changed, "verdicts": [v.to_dict() for v in self.verdicts],
            "restart_required": self.restart_required, "changes": list(self.changes),
        }
        if self.verdicts_before is not None:
            result["verdicts_before"] = [v.to_dict() for v in self.verdicts_before]
        return result


def enforce(transport: Transport, facts: HostFacts, articles: Sequence[Identified],
            verdicts: Sequence[Verdict], options: Options, into: RunResult | None = None) -> RunResult:
    """Carry out (in check mode: report) the plans of ``verdicts``, judged from ``facts``. The result's
    ``verdicts`` are the ones given; the caller judges again after changes. ``into`` collects the changes of
    several attempts (a run resumed after the host went down); its first ``verdicts_before`` is kept."""
    # Every article's plan checked before any write (sizes, types, paths, package choice).
    preflight.check_plans(transport, facts.os, articles, verdicts, options.package_source,  # type: ignore[arg-type]
                          options.install_timeout, ENFORCEABLE, options.package_policy)
    enforcer = _Enforcer(transport, facts, options, into)
    if enforcer.result.verdicts_before is None:
        # Set first: a host lost in the middle resumes with these, not with what its second read says.
        enforcer.result.verdicts_before = list(verdicts)
    for article, verdict in zip(articles, verdicts, strict=True):
        try:
            enforcer.enforce(article, verdict)
        except HostUnreachableError:
            raise  # nothing can be removed from a host that is gone; the resumed run stages afresh
        except KbfixError as exc:
            enforcer.staging.release_all()
            partial = {"verdicts_before": [v.to_dict() for v in enforcer.result.verdicts_before],
                       "changes": enforcer.result.changes}
            raise ArticleFault(article.id, exc, partial) from exc
    enforcer.staging.release_all()  # packages several articles shared were kept until now
    result = enforcer.result
    result.verdicts = list(verdicts)
    return result


def with_answer(verdict: Verdict, done: installer.InstallResult | None) -> Verdict:
    # "Not applicable" / "already installed" against files that say otherwise: unknown, with the reason.
    if done is None:
        return verdict
    return engine.with_install_answer(verdict, done.hotfix_id, done.exit_code, done.meaning)


def awaiting_restart(verdicts: Sequence[Verdict]) -> bool:
    """A restart is what stands between the host and compliance. A noncompliant verdict's plan also ends in
    a restart, but restarting before the plan is carried out would not help."""
    return any(v.status == "reboot_pending" for v in verdicts)


class _Enforcer:
    """Carries out plans (or, in check mode, reports them) and records each change."""

    def __init__(self, transport: Transport, facts: HostFacts, options: Options,
                 into: RunResult | None = None) -> None:
        self.transport = transport
        self.facts = facts
        self.os = facts.os
        self.options = options
        self.staging = installer.Staging(transport, facts.os, keep=True)
        self.result = into if into is not None else RunResult(verdicts=[])

    def enforce(self, article: Identified, verdict: Verdict) -> None:
        if verdict.status == "unknown" and verdict.plan:
            self.result.notes.append(f"{article.id}: not enforced, facts could not be read: "
                                     f"{', '.join(verdict.missing)}")
        if verdict.status not in ENFORCEABLE:
            return
        steps = [s for s in verdict.plan if s.action != "reboot"]
        installs = [s for s in steps if s.action == "install_package"]
        package = engine.package_for(article.spec, self.os) if installs else None
        if package is not None:
            require_installable(article.spec, package)
        if installs and self.options.package_source is None:
            raise ArgumentError("package_source", f"is required to install {article.id} "
                                                  f"({installs[0].details_as(InstallDetails).package})")
        for step in steps:
            if step.action == "manual":
                self.result.notes.append(f"{article.id}: not done here, needs a person: {step.description}")
            elif step.action == "install_package":
                self._install(article, step)
            elif step.action == "set_registry":
                self._set(article, step)
            elif step.action == "delete_registry":
                self._delete(article, step)

    # --- packages -------------------------------------------------------------------------------------

    def _install(self, article: Identified, step: PlanStep) -> None:
        request = self._install_request(step.details_as(InstallDetails))
        base = {"article": article.id, "action": "install_package", "description": step.description,
                "hotfix_id": request.hotfix_id, "package": request.package.filename,
                "installer": request.installer, "source": request.package.kind}
        if self.facts.reboot_pending and not self.options.allow_pending_reboot:
            # An installer started now would stage files over a pending rename queue; the result is only
            # known after two restarts. Windows Update refuses for the same reason.
            sources = ", ".join(self.facts.reboot_pending_sources) or "pending"
            reason = (f"a restart is pending ({sources}): {request.hotfix_id} is not installed until the host "
                      "restarts (or allow_pending_reboot is set)")
            self.result.changes.append({**base, "changed": False, "skipped": True, "reason": reason})
            self.result.notes.append(f"{article.id}: {reason}")
            self.result.restart_required = True
            return
        if self.options.check_mode:
            self.result.changes.append({**base, "changed": True, "planned": True})
            self._diff_package(request, planned=True)
            return
        done = installer.install(self.transport, request, self.os, not_applicable_raises=False,
                                 staging=self.staging)
        self.result.answers[article.id] = done
        entry = {**base, **done.to_dict(), "changed": done.changed}
        if done.meaning in ("not_applicable", "already_installed"):
            entry["reason"] = (f"{request.package.filename} answered {done.exit_code} "
                               f"({done.exit_code & 0xFFFFFFFF:#010x}, {done.meaning.replace('_', ' ')}): nothing "
                               "was installed; the verdict weighs this against the files")
            self.result.notes.append(f"{article.id}: {entry['reason']}")
        self.result.changes.append(entry)
        self.result.restart_required = self.result.restart_required or done.restart_required or (
            done.changed and step.restart)
        if done.changed:
            self._diff_package(request, planned=False)

    def _install_request(self, details: InstallDetails) -> installer.InstallRequest:
        # Judged on the controller by the policy before the package is staged (installer.install).
        return preflight.install_request(details, self.options.package_source, self.options.install_timeout,
                                         details.hotfix_id, self.options.package_policy)

    def _diff_package(self, request: installer.InstallRequest, planned: bool) -> None:
        self.result.diff.append({
            "before_header": f"packages ({request.hotfix_id})", "after_header": f"packages ({request.hotfix_id})",
            "before": "", "after": f"{request.hotfix_id}: {request.package.filename}"
                                   f"{' (planned)' if planned else ''}\n",
        })

    # --- registry -------------------------------------------------------------------------------------

    def _set(self, article: Identified, step: PlanStep) -> None:
        details = step.details_as(RegistryDetails)
        key, name, before = details.key, details.name, details.before
        desired = RegistryValue(details.type, details.data)
        if self.options.check_mode:
            self._record_registry(article, step, key, name, before, desired, planned=True)
            return
        change = self.transport.set_value(key, name, desired, create=True)
        self._record_registry(article, step, key, name, change.before, change.after, planned=False,
                              changed=change.changed)

    def _delete(self, article: Identified, step: PlanStep) -> None:
        details = step.details_as(RegistryDetails)
        key, name, before = details.key, details.name, details.before
        if self.options.check_mode:
            self._record_registry(article, step, key, name, before, None, planned=True)
            return
        change = self.transport.delete_value(key, name)
        self._record_registry(article, step, key, name, change.before, None, planned=False, changed=change.changed)

    def _record_registry(self, article: Identified, step: PlanStep, key: str, name: str,
                         before: RegistryValue | None, after: RegistryValue | None, *, planned: bool,
                         changed: bool = True) -> None:
        entry = {"article": article.id, "action": step.action, "description": step.description, "key": key,
                 "name": name, "before": before.to_dict() if before else None,
                 "after": after.to_dict() if after else None, "changed": changed}
        if planned:
            entry["planned"] = True
        self.result.changes.append(entry)
        if not changed:
            return
        self.result.restart_required = self.result.restart_required or step.restart
        header = f"{key}\\{name}"
        self.result.diff.append({"before_header": header, "after_header": header,
                                 "before": _value_text(before), "after": _value_text(after)})


def _value_text(value: RegistryValue | None) -> str:
    if value is None:
        return "(absent)\n"
    data = value.data
    if isinstance(data, list):
        return f"({value.type})\n" + "".join(f"{line}\n" for line in data)
    if isinstance(data, bytes):
        data = data.hex()
    return f"{data} ({value.type})\n"
