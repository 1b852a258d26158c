# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One check's outcome and the fact ids that name what could not be read; the prerequisite and hotfix
record checks (docs/engine.md, "Prerequisites and hotfix records")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from .model import (
    CheckResult,
    HostFacts,
    PlanStep,
    registry_key_id,
)
from .scope import (
    expand_path,
    prerequisites_for,
    record_keys,
)
from .spec_model import (
    ArticleSpec,
    OsEntry,
)

# --------------------------------------------------------------------------------------------- judging


@dataclass
class Outcome:
    """A check plus what the verdict needs to know about it."""

    result: CheckResult
    decisive: bool = True
    missing: tuple[str, ...] = ()
    step: PlanStep | None = None  # a registry change this check asks for
    # XP / 2003: a GDR file numbered at or above the QFE fix (docs/engine.md, "GDR files above the QFE fix").
    gdr_above_fix: bool = False

    @property
    def failed(self) -> bool:
        return self.decisive and self.result.passed is False

    @property
    def undecided(self) -> bool:
        return self.decisive and self.result.passed is None


# Fact ids name what could not be read (Verdict.missing) and what a snapshot cannot read (``unreadable``).
def file_fact_id(path: str) -> str:
    return f"file:{path}"


def value_fact_id(key: str, name: str) -> str:
    return f"registry:{key}\\{name}"


def key_fact_id(key: str) -> str:
    return f"registry_key:{key}"


# -------------------------------------------------------------------------------- prerequisites, hotfix


def judge_prerequisites(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> list[Outcome]:
    outcomes = []
    for prereq in prerequisites_for(spec, entry):
        if prereq.registry_key is not None:
            what = f"registry key {prereq.registry_key}"
            fact = key_fact_id(prereq.registry_key)
            present = host.registry_keys.get(registry_key_id(prereq.registry_key))
        else:
            path = expand_path(cast(str, prereq.file), host.os)
            what, fact = path, file_fact_id(path)
            file_facts = host.file(path)
            present = None if file_facts is None else file_facts.exists
        found = "not read" if present is None else ("present" if present else "absent")
        result = CheckResult(id=f"prerequisite:{prereq.id}", kind="prerequisite", passed=present,
                             expected=f"{prereq.description} ({what})", found=found)
        outcomes.append(Outcome(result, missing=(fact,) if present is None else ()))
    return outcomes


def judge_hotfix(spec: ArticleSpec, entry: OsEntry, host: HostFacts, files_decide: bool) -> Outcome:
    listed = [h for h in spec.hotfix_ids if h.upper() in host.hotfixes]
    keys = record_keys(spec, entry)
    states = {k: host.registry_keys.get(registry_key_id(k)) for k in keys}
    found_parts = [f"{h} ({', '.join(host.hotfix_sources.get(h.upper(), ())) or 'listed'})" for h in listed]
    found_parts += [f"record {k}" for k, present in states.items() if present]
    unread = [k for k, present in states.items() if present is None]
    installed = bool(found_parts)
    expected = " or ".join(list(spec.hotfix_ids) + [f"record {k}" for k in keys])
    found = "; ".join(found_parts) or ("not recorded" + (" (some records not read)" if unread else ""))
    if files_decide:
        # Hotfix lists miss superseded fixes and installers sometimes fail to record: a hint only.
        result = CheckResult(id=f"hotfix:{spec.hotfix_ids[0]}", kind="hotfix", passed=None, expected=expected,
                             found=found, message="informational: file versions decide")
        return Outcome(result, decisive=False)
    passed = True if installed else (None if unread else False)
    result = CheckResult(id=f"hotfix:{spec.hotfix_ids[0]}", kind="hotfix", passed=passed, expected=expected,
                         found=found, message="no file row applies here: the hotfix record decides")
    return Outcome(result, missing=tuple(key_fact_id(k) for k in unread) if passed is None else ())


def hotfix_recorded(spec: ArticleSpec, entry: OsEntry, host: HostFacts) -> bool:
    return (any(h.upper() in host.hotfixes for h in spec.hotfix_ids)
            or any(host.registry_keys.get(registry_key_id(k)) for k in record_keys(spec, entry)))
