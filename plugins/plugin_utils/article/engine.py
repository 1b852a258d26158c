# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The article engine: which facts an article needs, and what they say.

``fact_request`` turns a spec and a host's OS facts into the list of files, registry values and keys to
read; ``evaluate`` turns the facts read into a ``Verdict`` with its checks and the plan that would make the
host compliant. Both are pure: no I/O, same input, same output. The rules, and why scanners judge this way,
are in docs/engine.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from . import restart_bound
from .checks import (
    Outcome,
    hotfix_recorded,
    judge_hotfix,
    judge_prerequisites,
)
from .file_checks import judge_files
from .model import (
    CheckResult,
    FactRequest,
    HostFacts,
    OsFacts,
    Verdict,
    VerdictStatus,
)
from .plan import Assessment, plan_steps, restart_for_fix
from .registry_checks import judge_setting
from .scope import (
    active_settings,
    applicability,
    desired_value,
    entry_package,
    expand_path,
    matching_entry,
    package_for,
    prerequisites_for,
    record_keys,
    rows_for,
    scope_of,
)
from .spec_model import (
    ArticleSpec,
)
from .variables import resolve_variables

__all__ = [
    "applicability", "evaluate", "expand_path", "fact_request", "matching_entry", "package_for",
    "with_install_answer",
]


def fact_request(spec: ArticleSpec, os_facts: OsFacts, variables: Mapping[str, Any]) -> FactRequest:
    """Everything ``evaluate`` will look at for this host; empty when the article does not apply."""
    scope = scope_of(spec, os_facts)
    if scope.entry is None:
        return FactRequest()
    resolved = resolve_variables(spec, variables)
    entry = scope.entry
    prereqs = prerequisites_for(spec, entry)
    files = [expand_path(r.path, os_facts) for r in rows_for(spec, entry, os_facts) if r.path is not None]
    files += [expand_path(p.file, os_facts) for p in prereqs if p.file is not None]
    keys = record_keys(spec, entry) + [p.registry_key for p in prereqs if p.registry_key is not None]
    settings = active_settings(spec, entry, os_facts, resolved)
    return FactRequest(
        files=tuple(dict.fromkeys(files)),
        registry_values=tuple((s.key, s.name) for s in settings),
        registry_keys=tuple(dict.fromkeys(keys)),
        hotfix_ids=spec.hotfix_ids,
        # The spec's type lets the collector read each value with one typed Get; a value of another type is
        # still read with its real type, so the registry check can say "wrong type".
        registry_value_types=tuple((s.key, s.name, s.type) for s in settings),
        registry_key_times=tuple(dict.fromkeys(s.key for s in settings if s.restart)),
    )


def _status(assessed: Assessment) -> VerdictStatus:
    file_checks = assessed.files + ([assessed.hotfix] if assessed.hotfix.decisive else [])
    # Files still old because the installer's replacements wait for the restart are not a failure.
    files_failed = any(o.failed for o in file_checks) and not assessed.installed_awaiting_restart
    status: VerdictStatus
    if files_failed or any(o.failed for o in assessed.settings):
        status = "noncompliant"
    elif any(o.undecided for o in file_checks + assessed.settings):
        status = "unknown"
    elif assessed.installed_awaiting_restart or assessed.fix_awaiting_restart:
        status = "reboot_pending"
    else:
        status = "compliant"
    # A prerequisite that could not be read leaves "not applicable" open: only a host that needs nothing
    # either way may be called compliant.
    if status != "compliant" and any(o.undecided for o in assessed.prerequisites):
        status = "unknown"
    return status


def _awaiting_restart(spec: ArticleSpec, outcome: Outcome) -> Outcome:
    if not outcome.failed:
        return outcome
    note = f"{spec.id} is installed: the new file takes effect at the pending restart"
    message = f"{outcome.result.message}; {note}" if outcome.result.message else note
    return dataclasses.replace(outcome, result=dataclasses.replace(outcome.result, message=message))


def _reboot_check(assessed: Assessment, host: HostFacts) -> CheckResult:
    if not host.reboot_pending:
        return CheckResult(id="reboot", kind="reboot", passed=True, expected="no restart pending", found="none")
    sources = ", ".join(host.reboot_pending_sources) or "pending"
    relevant = assessed.installed_awaiting_restart or assessed.fix_awaiting_restart
    waits, why = assessed.restart_for_fix
    if relevant:
        message = "the fix is not in effect until the restart" + (f": {why}" if why else "")
    elif not waits:
        message = f"informational: a restart is pending for something else; {why}"
    else:
        message = "informational: this article's fix does not wait for it"
    return CheckResult(id="reboot", kind="reboot", passed=False if relevant else None,
                       expected="no restart pending", found=sources, message=message)


def _reason(spec: ArticleSpec, status: VerdictStatus, checks: list[CheckResult], missing: list[str]) -> str:
    failing = [c for c in checks if c.passed is False and c.kind in ("file", "registry", "hotfix")]
    if status == "noncompliant":
        return f"{len(failing)} check(s) fail: " + "; ".join(f"{c.id} expected {c.expected}, found {c.found}"
                                                             for c in failing)
    if status == "unknown":
        return "could not read: " + ", ".join(missing)
    if status == "reboot_pending":
        return f"{spec.id} is in place but a restart is pending before it takes effect"
    decided = [c for c in checks if c.passed is True and c.kind in ("file", "registry", "hotfix")]
    note = f" (not read: {', '.join(missing)})" if missing else ""
    return f"all {len(decided)} check(s) pass{note}"


def evaluate(spec: ArticleSpec, host_facts: HostFacts, variables: Mapping[str, Any]) -> Verdict:
    """Judge the article on one host: status, checks, and the plan that would make it compliant."""
    scope = scope_of(spec, host_facts.os)
    if scope.entry is None:
        return Verdict(article=spec.id, title=spec.title, status="not_applicable", reason=scope.check.message,
                       checks=[scope.check])
    # Required variables are required where the article applies: a fleet-wide audit of every article must
    # not need XP's server list on a Server 2008 host.
    resolved = resolve_variables(spec, variables)
    entry = scope.entry
    prerequisites = judge_prerequisites(spec, entry, host_facts)
    unmet = [o.result for o in prerequisites if o.result.passed is False]
    if unmet:
        return Verdict(article=spec.id, title=spec.title, status="not_applicable",
                       reason=f"prerequisite not met: {unmet[0].expected}",
                       checks=[scope.check] + [o.result for o in prerequisites])
    files = judge_files(spec, entry, host_facts)
    settings = [judge_setting(s, desired_value(s, resolved), host_facts)
                for s in active_settings(spec, entry, host_facts.os, resolved)]
    hotfix = judge_hotfix(spec, entry, host_facts, files_decide=any(o.decisive for o in files))
    assessed = Assessment(files=files, settings=settings, prerequisites=prerequisites, hotfix=hotfix,
                          entry=entry, package=entry_package(spec, entry, host_facts.os),
                          recorded=hotfix_recorded(spec, entry, host_facts),
                          reboot_pending=host_facts.reboot_pending,
                          restart_for_fix=restart_for_fix(spec, entry, host_facts))
    plan = plan_steps(spec, assessed, host_facts.os)
    status = _status(assessed)
    if assessed.installed_awaiting_restart:
        files = [_awaiting_restart(spec, o) for o in files]
    outcomes = prerequisites + files + settings + [hotfix]
    checks = [scope.check] + [o.result for o in outcomes] + [_reboot_check(assessed, host_facts)]
    missing = list(dict.fromkeys(m for o in outcomes for m in o.missing))
    verdict = Verdict(article=spec.id, title=spec.title, status=status, reason=_reason(spec, status, checks, missing),
                      checks=checks, plan=plan, missing=missing,
                      restart_required=any(step.action == "reboot" for step in plan))
    return restart_bound.judge(spec, verdict, host_facts)  # restart-bound values written since the last boot


# Installer answers that say "nothing to do" (installer.DEFAULT_EXIT_CODES): wusa's WU_E_NOT_APPLICABLE
# 0x80240017 and WU_S_ALREADY_INSTALLED 0x00240006.
_NOTHING_TO_DO = {"not_applicable": "not applicable", "already_installed": "already installed"}


def with_install_answer(verdict: Verdict, hotfix_id: str, exit_code: int, meaning: str) -> Verdict:
    """The verdict once the package's installer has answered. "Not applicable" or "already installed" while
    the file checks still say the fix is missing means the spec and the installer disagree about this host
    (a component or superseding build the spec does not know, or the wrong package): the verdict becomes
    ``unknown`` with the reason, never a silent success. Any other answer, or files that agree, change
    nothing."""
    said = _NOTHING_TO_DO.get(meaning)
    disagreeing = [c for c in verdict.checks if c.kind in ("file", "hotfix") and c.passed is False]
    if said is None or verdict.status not in ("noncompliant", "unknown") or not disagreeing:
        return verdict
    code = f"{exit_code} ({exit_code & 0xFFFFFFFF:#010x}, {said})"
    files = "; ".join(f"{c.id} expected {c.expected}, found {c.found}" for c in disagreeing)
    reason = (f"the {hotfix_id} installer answered {code} but the files say the fix is missing: {files}. "
              "Not judged compliant or noncompliant until someone looks: the spec's rows or the package may not "
              "fit this host")
    answer = CheckResult(id=f"installer:{hotfix_id}", kind="installer", passed=False, expected="the fix installed",
                         found=code, message=f"the installer says {said}; the files disagree")
    return dataclasses.replace(verdict, status="unknown", reason=reason, checks=[*verdict.checks, answer])
