# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the engine over generated hosts: whatever a host looks like, the plan is empty exactly
when nothing is to be done, and carrying the plan out (modelled by ``apply_plan`` from the spec's rows)
leaves a compliant host with an empty plan."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from engine_helpers import (
    NT4_TSE,
    VISTA_X64,
    VISTA_X86,
    WS2003R2_IA64,
    WS2003R2_X64,
    WS2003R2_X86,
    WS2008_SP1_X86,
    WS2008_SP2_X64,
    WS2008R2,
    XP_SP1,
    apply_plan,
    fixed_file,
    rows_for,
    seed_spec,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.engine import (
    evaluate,
    expand_path,
    fact_request,
    with_install_answer,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    FileFacts,
    HostFacts,
    OsFacts,
    RegistryValue,
    registry_key_id,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec, FileRow

HOSTS: list[tuple[str, OsFacts]] = [
    ("KB828753", XP_SP1), ("KB253729", NT4_TSE), ("KB977381", WS2003R2_X86), ("KB977381", WS2003R2_X64),
    ("KB977381", WS2003R2_IA64), ("KB977381", WS2008_SP1_X86), ("KB977381", WS2008_SP2_X64),
    ("KB977381", WS2008R2), ("KB938475", VISTA_X86), ("KB938475", VISTA_X64),
]
SERVER_NAMES = ["fs01", "FS01", "fs01.corp.example.com", "192.0.2.10", "backup02"]
TAGS = ["", " (kbfix_qfe.100101-0000)", " (kbfix_gdr.100101-0000)", " (kbfix_rtm.100101-0000)", " (free text)"]
UTC = datetime.UTC

VARIABLES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "KB828753": st.fixed_dictionaries({
        "reconnectable_servers": st.lists(st.sampled_from(SERVER_NAMES), min_size=1, max_size=3),
        "reconnect_timeout": st.one_of(st.none(), st.just(60), st.integers(1, 600)),
    }),
    "KB253729": st.just({}),
    "KB977381": st.just({}),
    "KB938475": st.fixed_dictionaries({
        "asynchronous_credits": st.one_of(st.just(64), st.integers(1, 65535)),
        "file_server": st.booleans(),
    }),
}


def _version(row: FileRow) -> st.SearchStrategy[str]:
    """Versions around a row: its own line and the lines next to it, any revision, any branch tag."""
    assert row.version is not None
    major, minor, build = row.version.build_line
    lines = st.sampled_from([build - 1, build, build, build + 1, build + 2])
    revisions = st.one_of(st.integers(0, 65535), st.sampled_from([
        row.version.revision, row.version.revision - 1, row.version.revision + 1,
        row.branch_floor.revision if row.branch_floor else 0, 16385, 18000, 22000]))
    return st.builds(lambda b, r, tag: f"{major}.{minor}.{b}.{max(r, 0)}{tag}", lines, revisions,
                     st.sampled_from(TAGS))


def _times(row: FileRow) -> st.SearchStrategy[datetime.datetime | None]:
    base = row.modified or datetime.datetime(2009, 1, 1, tzinfo=UTC)
    return st.one_of(st.none(), st.integers(-5000, 5000).map(lambda m: base + datetime.timedelta(minutes=m)))


def _file(row: FileRow, os: OsFacts) -> st.SearchStrategy[FileFacts | None]:
    path = expand_path(row.path or "", os)
    sizes = st.one_of(st.none(), st.just(row.size), st.integers(0, 5_000_000))
    versions = _version(row) if row.version is not None else st.none()
    generated = st.builds(lambda v, s, m: FileFacts(path, True, v, s, m), st.one_of(versions, st.just("5.1")),
                          sizes, _times(row))
    return st.one_of(st.just(fixed_file(row, os)), st.just(FileFacts(path, exists=False)), st.none(), generated)


def _registry_value(wanted: list[str]) -> st.SearchStrategy[RegistryValue | str | None]:
    names = st.sampled_from(wanted + [n.upper() for n in wanted] + SERVER_NAMES)
    return st.one_of(
        st.just("unread"), st.none(),
        st.builds(RegistryValue, st.just("dword"), st.one_of(st.just(64), st.just(60), st.integers(0, 70000))),
        st.builds(RegistryValue, st.just("string"), names),
        st.builds(RegistryValue, st.just("multistring"), st.lists(names, max_size=4)),
        st.builds(RegistryValue, st.just("binary"), st.binary(max_size=4)),
    )


def _draw_host(data: st.DataObject, spec: ArticleSpec, os: OsFacts, variables: dict[str, Any]) -> HostFacts:
    request = fact_request(spec, os, variables)
    rows = {expand_path(r.path, os).casefold(): r for r in rows_for(spec, os) if r.path}
    facts = HostFacts(os=os)
    for path in request.files:
        drawn = data.draw(_file(rows[path.casefold()], os), label=path)
        if drawn is not None:
            facts.files[path.casefold()] = drawn
    wanted = [str(v) for v in variables.get("reconnectable_servers", [])]
    for key, name in request.registry_values:
        value = data.draw(_registry_value(wanted), label=f"{key}\\{name}")
        if value != "unread":
            facts.registry[(registry_key_id(key), name.casefold())] = value  # type: ignore[assignment]
    for key in request.registry_keys:
        state = data.draw(st.sampled_from([True, True, False, None]), label=key)
        if state is not None:
            facts.registry_keys[registry_key_id(key)] = state
    facts.hotfixes = frozenset(data.draw(st.sets(st.sampled_from(spec.hotfix_ids)), label="hotfixes"))
    facts.reboot_pending = data.draw(st.booleans(), label="reboot pending")
    # Restart state (issue 12): a boot time around the files' dates, and pending renames that name an
    # article file, sit next to one, concern another program, or were not read.
    facts.os = dataclasses.replace(os, last_boot=data.draw(st.one_of(st.none(), _times_around(spec, os)),
                                                           label="last boot"))
    files = sorted(request.files)
    renames = st.sampled_from([*(f"!\\??\\{p}" for p in files), *(f"{p}.tmp" for p in files),
                               "\\??\\C:\\Program Files\\App\\app.exe", ""])
    facts.pending_renames = data.draw(st.one_of(st.none(), st.lists(renames, max_size=3).map(tuple)),
                                      label="pending renames")
    return facts


def _draw_case(data: st.DataObject) -> tuple[ArticleSpec, OsFacts, dict[str, Any], HostFacts]:
    """A seed article, one of its test systems, variables and a host drawn around the article's rows."""
    article, os = data.draw(st.sampled_from(HOSTS), label="host")
    spec = seed_spec(article)
    variables = data.draw(VARIABLES[article], label="variables")
    return spec, os, variables, _draw_host(data, spec, os, variables)


def _times_around(spec: ArticleSpec, os: OsFacts) -> st.SearchStrategy[datetime.datetime]:
    dates = [r.modified for r in rows_for(spec, os) if r.modified is not None]
    base = min(dates) if dates else datetime.datetime(2009, 1, 1, tzinfo=UTC)
    return st.integers(-5000, 20000).map(lambda m: base + datetime.timedelta(minutes=m))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_carrying_out_the_plan_makes_the_host_compliant(data: st.DataObject) -> None:
    spec, _, variables, facts = _draw_case(data)

    verdict = evaluate(spec, facts, variables)
    assert (verdict.plan == []) == (verdict.status in ("compliant", "not_applicable")), verdict
    assert verdict.restart_required == any(step.action == "reboot" for step in verdict.plan)
    assert verdict.status != "unknown" or verdict.missing
    if not verdict.plan:
        return
    after = apply_plan(spec, facts, verdict.plan)
    again = evaluate(spec, after, variables)
    assert again.status == "compliant", (verdict.to_dict(), again.to_dict())
    assert again.plan == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_missing_facts_are_facts_the_request_asked_for(data: st.DataObject) -> None:
    spec, os, variables, facts = _draw_case(data)
    request = fact_request(spec, os, variables)
    asked = ({f"file:{p}" for p in request.files} | {f"registry:{k}\\{n}" for k, n in request.registry_values}
             | {f"registry_key:{k}" for k in request.registry_keys})
    verdict = evaluate(spec, facts, variables)
    assert set(verdict.missing) <= asked
    assert evaluate(spec, facts, variables) == verdict  # deterministic


# ------------------------------------------------------------------------------------------------ issue 12


def _below_the_fix(data: st.DataObject, spec: ArticleSpec, os: OsFacts) -> tuple[str, FileFacts]:
    """One decisive file of the host's rows put below its fix, judged from the row alone: a lower number on
    the row's own line (any branch tag), or, for size_date rows, another size and an older date."""
    rows = [r for r in rows_for(spec, os) if r.path and r.check != "info"]
    row = data.draw(st.sampled_from(rows), label="row below the fix")
    path = expand_path(row.path or "", os)
    if row.version is not None:
        major, minor, build = row.version.build_line
        floor = row.branch_floor.revision if row.branch_floor else 0
        revision = data.draw(st.one_of(st.integers(0, row.version.revision - 1),
                                       st.integers(floor, row.version.revision - 1)), label="revision")
        version = f"{major}.{minor}.{build}.{revision}{data.draw(st.sampled_from(TAGS), label='tag')}"
        return path, FileFacts(path, True, version, None, data.draw(_times(row), label="written"))
    assert row.size is not None and row.modified is not None
    size = data.draw(st.integers(0, 5_000_000).filter(lambda n: n != row.size), label="size")
    return path, FileFacts(path, True, None, size, row.modified - datetime.timedelta(minutes=1))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_change_of_issue_12_makes_a_host_below_the_fix_compliant(data: st.DataObject) -> None:
    # Whatever the boot time, pending renames, hotfix records, installer answer and the other files say, a
    # host with one article file below its fix is never compliant (the issue's changes only relax verdicts
    # for hosts whose files carry the fix).
    spec, os, variables, facts = _draw_case(data)
    path, below = _below_the_fix(data, spec, os)
    facts.files[path.casefold()] = below
    verdict = evaluate(spec, facts, variables)
    assert verdict.status != "compliant", verdict.to_dict()
    code, meaning = data.draw(st.sampled_from([(0, "success"), (3010, "restart_required"),
                                               (2359302, "already_installed"), (-2145124329, "not_applicable")]),
                              label="installer answer")
    answered = with_install_answer(verdict, spec.hotfix_ids[0], code, meaning)
    assert answered.status != "compliant", answered.to_dict()
