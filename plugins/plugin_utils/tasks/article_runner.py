# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit and enforce KB articles on one host: the orchestration behind ``kbfix.windows.kb_article``.

1. ``prepare`` loads every spec and resolves its variables. Nothing has been sent yet, so a bad spec or a
   bad variable fails here, naming the field, with the host untouched.
2. ``run`` takes the OS facts (given, or one query), merges the fact requests of all articles into one
   ``Transport.gather`` (a handful of concurrent requests however many articles), and evaluates each article.
3. In ``enforced`` state the plans of noncompliant articles are carried out (``enforcer``): packages through
   ``installer.install``, registry values with read-back (``Transport.set_value``), then the host is read and
   judged again. Reboot steps are never carried out here: ``restart_required`` says one is
   due, the play decides when.

Pure library: no Ansible imports. The action plugin resolves paths and opens the transport.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..article import engine, model
from ..article.model import (
    FactRequest,
    HostFacts,
    OsFacts,
    Verdict,
)
from ..article.spec import (
    ArticleSpec,
    VariableValue,
    load_spec,
    load_spec_data,
    resolve_variables,
)
from ..errors import ArgumentError, ArticleFault, SpecError
from ..transport import indicators
from ..transport.base import LOG_STEPS, Transport
from . import installer, preflight, resume
from .enforcer import STATES, Options, RunResult, awaiting_restart, enforce, with_answer

# The module's fail_on choices, for the action plugin (which imports only the task layer).
VERDICT_STATUSES = model.VERDICT_STATUSES
# The module's state choices, for the action plugin.
__all__ = ["STATES", "VERDICT_STATUSES"]


# ---------------------------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class ArticleRequest:
    """One entry of ``articles``: a spec file or inline spec data, and its own variables."""

    spec: Path | Mapping[str, Any]
    variables: Mapping[str, Any]
    label: str  # "articles[0]": where the entry is in the task
    spec_field: str = ""  # the argument that named the spec ("articles[0]" or "articles[0].spec"); default label
    # Where each variable comes from when it is not the task's own ``variables``: for an article named by id,
    # the host variable (``reconnectable_servers`` -> ``kb828753_reconnectable_servers``); errors name it.
    variable_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedArticle:
    spec: ArticleSpec
    variables: dict[str, VariableValue]
    label: str
    # A required variable that was not given, as the error to raise on a host where the article applies.
    missing: ArgumentError | None = None
    # Where the user gives each variable (``variables.x``, ``articles[0].variables.x``, ``kb828753_x``).
    variable_fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id


def _load(request: ArticleRequest) -> ArticleSpec:
    if isinstance(request.spec, Path):
        return load_spec_file(request.spec, request.spec_field or request.label)
    return load_spec_data(request.spec, f"{request.label}.spec")


def load_spec_file(path: Path, argument: str) -> ArticleSpec:
    """A spec file, its errors naming the task argument that named it (the file's own field path follows)."""
    try:
        return load_spec(path)
    except SpecError as exc:
        raise ArgumentError(argument, str(exc)) from None


def prepare(requests: Sequence[ArticleRequest], common: Mapping[str, Any]) -> list[PreparedArticle]:
    """Load and validate every article before anything is sent. Common variables apply to each article that
    declares them; one that no article declares is a typo and fails, as does an undeclared per-article one."""
    prepared = []
    for request in requests:
        spec = _load(request)
        declared = {v.name for v in spec.variables}
        merged = {k: v for k, v in common.items() if k in declared}
        merged.update(request.variables)
        try:
            resolved = resolve_variables(spec, merged, require=False)
        except ArgumentError as exc:
            raise ArticleFault(spec.id, _located(exc, request, common)) from None
        missing: ArgumentError | None = None
        try:
            resolve_variables(spec, merged)
        except ArgumentError as exc:
            missing = _located(exc, request, common)  # raised by require_applicable once the OS is known
        fields = {v.name: _located(ArgumentError(v.name, ""), request, common).field for v in spec.variables}
        prepared.append(PreparedArticle(spec, resolved, request.label, missing, fields))
        preflight.check_variable_text(prepared[-1], resolved)
    _check_unused(prepared, common)
    ids = [p.id for p in prepared]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ArgumentError("articles", f"{duplicates[0]} is listed twice; give each article once")
    return prepared


def article_warnings(articles: Sequence[PreparedArticle]) -> list[str]:
    """What loaded but needs a person: rows an article printed twice, and the spec's review items."""
    return [f"{a.id} ({a.spec.source}): {text}" for a in articles
            for text in (*a.spec.warnings, *(item.text() for item in a.spec.review))]


def _located(exc: ArgumentError, request: ArticleRequest, common: Mapping[str, Any]) -> ArgumentError:
    """Name the field where the user wrote it (or should): the task's common variables, this article's, or
    the host variable an article named by id reads."""
    name = exc.field.split("[", 1)[0]
    if name in request.variable_fields:
        return ArgumentError(request.variable_fields[name] + exc.field[len(name):], exc.message)
    where = "variables" if name in common and name not in request.variables else f"{request.label}.variables"
    return ArgumentError(f"{where}.{exc.field}", exc.message)


def _check_unused(prepared: Sequence[PreparedArticle], common: Mapping[str, Any]) -> None:
    declared = {v.name for p in prepared for v in p.spec.variables}
    for name in common:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ArgumentError(f"variables.{name}", f"no article declares this variable (declared: {known})")


# -------------------------------------------------------------------------------------------- OS facts


def os_facts_from_mapping(data: Any, where: str = "host_facts") -> OsFacts:
    """``OsFacts`` from the ``kbfix_os`` fact (``OsFacts.to_dict()``; other keys are ignored); errors are
    ``ArgumentError`` naming the field under ``where``."""
    return model.os_facts_from_mapping(data, where, ArgumentError)


def parse_boot_time(value: Any) -> datetime.datetime | None:
    """The ``kbfix_last_boot`` fact (ISO 8601 with a time zone) as a datetime, None for anything else."""
    return model.boot_time(value)


# ------------------------------------------------------------------------------------------------ run


Log = Callable[[int, str], None]


def merged_request(articles: Sequence[PreparedArticle], os_facts: OsFacts) -> FactRequest:
    request = FactRequest()
    for article in articles:
        request = request.merged(engine.fact_request(article.spec, os_facts, article.variables))
    return request


def judge(transport: Transport, articles: Sequence[PreparedArticle], os_facts: OsFacts,
          known_restart: Sequence[str] | None = None) -> tuple[HostFacts, list[Verdict]]:
    """One gather for every article, then one verdict each. ``known_restart``: the pending-restart sources
    ``kbfix.windows.facts`` reported for this host in this play (``kbfix_reboot_pending_sources``); they are
    not read again."""
    request = merged_request(articles, os_facts)
    if known_restart is None:
        facts: HostFacts = transport.gather(os_facts, request)
    else:
        facts = transport.gather(os_facts, request, restart_scope="none")
        facts.reboot_pending, facts.reboot_pending_sources = indicators.article_scope(tuple(known_restart))
    verdicts = [engine.evaluate(a.spec, facts, a.variables) for a in articles]
    if _add_pending_cbs_packages(transport, facts, articles, verdicts):
        verdicts = [engine.evaluate(a.spec, facts, a.variables) for a in articles]
    return facts, verdicts


def _add_pending_cbs_packages(transport: Transport, facts: HostFacts, articles: Sequence[PreparedArticle],
                              verdicts: Sequence[Verdict]) -> bool:
    """On 6.x an installed .msu waits for the restart as a CBS package in state Install Pending, which
    Win32_QuickFixEngineering does not list yet: without this the engine would call a host that only needs
    its restart noncompliant (and plan the install again). Asked only while a restart is pending and an
    article still plans an install, so a plain audit costs nothing more."""
    if not facts.reboot_pending or facts.os.major < 6:
        return False
    wanted = [a.spec.hotfix_ids[0] for a, v in zip(articles, verdicts, strict=True)
              if any(step.action == "install_package" for step in v.plan)]
    found = False
    for hotfix in wanted:
        packages = installer.cbs_packages(transport, hotfix)
        if any(state in installer.CBS_PRESENT_STATES for state in packages.values()):
            facts.hotfixes = facts.hotfixes | {hotfix.upper()}
            sources = facts.hotfix_sources.get(hotfix.upper(), ())
            facts.hotfix_sources[hotfix.upper()] = (*sources, installer.SOURCE_CBS)
            found = True
    return found


def require_applicable(articles: Sequence[PreparedArticle], os_facts: OsFacts) -> None:
    """A required variable is required on hosts where its article applies: auditing every article across a
    fleet must not need XP's server list on a Server 2008 host. Values that were given were already checked
    by ``prepare``, before any request."""
    for article in articles:
        if article.missing is not None and engine.applicability(article.spec, os_facts)[0]:
            raise ArticleFault(article.id, article.missing)


def run(transport: Transport, articles: Sequence[PreparedArticle], os_facts: OsFacts | None,
        options: Options, known_restart: Sequence[str] | None = None) -> RunResult:
    """Judge (and in ``enforced`` state carry out and judge again). A host that goes down on the way is
    waited for (``options.resume_timeout``) and the run starts again from a fresh gather; changes made
    before it went down stay in the result. ``known_restart`` (used only with ``os_facts``) spares the
    pending-restart reads of the first judgement; after changes the host is read afresh."""
    accumulated = RunResult(verdicts=[])

    # The facts task's pending-restart answer holds for the first attempt only: a host that went down and came
    # back has booted since, so a resumed attempt reads it afresh.
    known = [known_restart]

    def resumed(reason: str) -> None:
        known[0] = None
        accumulated.notes.append(resume.WAITED_NOTE.format(reason=reason))

    return resume.run_resuming(transport,
                               lambda: _run_once(transport, articles, os_facts, options, accumulated, known[0]),
                               timeout=options.resume_timeout, on_resume=resumed)


def _run_once(transport: Transport, articles: Sequence[PreparedArticle], os_facts: OsFacts | None,
              options: Options, accumulated: RunResult,
              known_restart: Sequence[str] | None = None) -> RunResult:
    if os_facts is None:
        os_facts = transport.os_facts()
        known_restart = None  # facts from another source than this play's facts task
    require_applicable(articles, os_facts)
    facts, before = judge(transport, articles, os_facts, known_restart)
    if options.state == "audited":
        accumulated.verdicts = before
        accumulated.restart_required = awaiting_restart(before)
        return accumulated
    result = enforce(transport, facts, articles, before, options, into=accumulated)
    if result.changed and not options.check_mode:
        # Judge again from what the host says now, not from what we believe we wrote.
        after, result.verdicts = judge(transport, articles, os_facts)
        result.reboot_pending_sources = after.reboot_pending_sources
    result.verdicts = [with_answer(v, result.answers.get(v.article)) for v in result.verdicts]
    result.restart_required = result.restart_required or awaiting_restart(result.verdicts)
    return result


# ---------------------------------------------------------------------------------------------- fail_on


def failing(verdicts: Sequence[Verdict], fail_on: Sequence[str]) -> list[Verdict]:
    return [v for v in verdicts if v.status in fail_on]


def summary(result: RunResult) -> str:
    """One line for people: each article's status (before -> after when enforced), and why not more."""
    parts = []
    before = {v.article: v.status for v in result.verdicts_before or []}
    for verdict in result.verdicts:
        earlier = before.get(verdict.article)
        status = f"{earlier} -> {verdict.status}" if earlier and earlier != verdict.status else verdict.status
        parts.append(f"{verdict.article}: {status}")
    text = "; ".join(parts)
    if result.restart_required:
        text += " (restart required)"
    if result.notes:
        text += ". " + " ".join(result.notes)
    return text


def log_verdicts(log: Log, host: str, verdicts: Sequence[Verdict]) -> None:
    for verdict in verdicts:
        log(LOG_STEPS, f"{host}: {verdict.article} {verdict.status}: {verdict.reason}")


def refreshed_restart_facts(known_restart: Sequence[str] | None, result: RunResult) -> dict[str, Any] | None:
    """The pending-restart facts later tasks should reuse after this run changed the host, or None when the
    play had no such facts (nothing to refresh) or nothing was read again."""
    if known_restart is None or result.reboot_pending_sources is None:
        return None
    # Changes may have queued a restart: keep what other agents reported, replace what this run re-read.
    sources = [s for s in known_restart if s not in indicators.ARTICLE_SOURCES]
    sources += list(result.reboot_pending_sources)
    return {"kbfix_reboot_pending": bool(sources), "kbfix_reboot_pending_sources": sources}
