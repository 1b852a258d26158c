#!/usr/bin/env python3
"""Write the raw-command baseline: what operators run today on legacy Windows, one ``ansible.builtin.raw``
task per check over the WinRM cmd shell, each task opening its own shell.

    tools/devenv python bench/baseline/generate.py           # rewrite bench/baseline/
    tools/devenv python bench/baseline/generate.py --check   # exit 1 when the files are stale

The checks are exactly the ones ``kbfix.windows.kb_article`` reads, because they come from the same place:
``engine.fact_request`` for every Windows identity (version, service pack, architecture, product type, R2)
the baseline can tell apart with one ``wmic os`` call, and ``indicators.pending_restart_plan`` for the pending
restart. One task per requested fact:

* file: ``wmic datafile where "Name='...'" get Version`` (``get FileSize,LastModified`` for rows the article
  gives only a size and date for);
* hotfix id: ``wmic qfe where "HotFixID='KB...'" get HotFixID``;
* registry value: ``reg query "KEY" /v NAME``; registry key (hotfix record, prerequisite, restart flags):
  ``reg query "KEY"``.

The baseline only reads: it does not judge versions (doing that in Jinja would add controller work), so
its figures are a lower bound of what a real raw-command audit costs.

Identities whose fact requests are equal share a *variant*; a check task runs when the host's variant of
that article is one that asks for it. The mapping (``vars/variants.yml``) is data, the task files are plain.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.article import engine
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import FactRequest, OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec, load_spec
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import indicators

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent
ARTICLES = ("KB253729", "KB828753", "KB938475", "KB977381")

# The site choices the audit is run with (the same go to playbooks/audit.yml as inventory variables).
VARIABLES: dict[str, dict[str, Any]] = {
    "KB828753": {"reconnectable_servers": ["fs01"]},
    "KB938475": {"asynchronous_credits": 512},
}

# Every NT build a WinRM host can report. Service packs beyond the last released one cost nothing to list.
BUILDS = ("4.0.1381", "5.0.2195", "5.1.2600", "5.2.3790", "6.0.6000", "6.0.6001", "6.0.6002", "6.1.7600",
          "6.1.7601")
ARCHITECTURES = ("x86", "x64", "ia64")
# A path placeholder: the Windows directory is only known on the host (C:\WINDOWS, C:\WINNT, D:\Windows).
ROOT_SENTINEL = "C:\\KBFIXROOT"
ROOT_WQL = "{{ kbfix_bench_os.windir_wql }}"


@dataclass(frozen=True)
class Check:
    kind: str  # file_version | file_size | hotfix | value | key
    target: str  # path, hotfix id, key
    name: str = ""  # value name

    def command(self) -> str:
        if self.kind in ("file_version", "file_size"):
            # WQL needs every backslash doubled; the Windows directory is filled in on the host.
            path = self.target.replace("\\", "\\\\").replace(ROOT_SENTINEL.replace("\\", "\\\\"), ROOT_WQL)
            # Quoted: to PowerShell a bare FileSize,LastModified is an array, passed on as two arguments.
            props = "Version" if self.kind == "file_version" else '"FileSize,LastModified"'
            return f"wmic datafile where \"Name='{path}'\" get {props}"
        if self.kind == "hotfix":
            return f"wmic qfe where \"HotFixID='{self.target}'\" get HotFixID"
        if self.kind == "value":
            return f'reg query "{self.target}" /v {self.name}'
        return f'reg query "{self.target}"'

    def label(self) -> str:
        if self.kind.startswith("file"):
            leaf = self.target.rsplit("\\", 1)[-1]
            what = "version" if self.kind == "file_version" else "size and date"
            return f"{leaf} {what} ({self.target.replace(ROOT_SENTINEL, '%SystemRoot%')})"
        if self.kind == "hotfix":
            return f"hotfix {self.target} in Win32_QuickFixEngineering"
        if self.kind == "value":
            return f"{self.target}\\{self.name}"
        return f"key {self.target}"


def identities() -> Iterator[tuple[str, OsFacts]]:
    """(identity string as the playbook builds it, OsFacts) for every host the baseline can tell apart."""
    for build in BUILDS:
        for sp in range(5):
            for arch in ARCHITECTURES:
                for product_type in (1, 2, 3):
                    for r2 in (False, True) if build == "5.2.3790" else (False,):
                        os = OsFacts(version=build, service_pack=sp, architecture=arch,  # type: ignore[arg-type]
                                     product_type=product_type, r2=r2, system_root=ROOT_SENTINEL)
                        yield identity(build, sp, arch, product_type, r2), os


def identity(version: str, sp: int, arch: str, product_type: int, r2: bool) -> str:
    return f"{version}|{sp}|{arch}|{product_type}|{'R2' if r2 else ''}"


def checks_for(spec: ArticleSpec, request: FactRequest) -> list[Check]:
    version_paths = {engine.expand_path(r.path, _ROOT_OS).casefold()
                     for r in spec.files if r.path is not None and r.check == "version"}
    out = [Check("file_version" if p.casefold() in version_paths else "file_size", p) for p in request.files]
    out += [Check("hotfix", h) for h in request.hotfix_ids]
    out += [Check("value", key, name) for key, name in request.registry_values]
    out += [Check("key", key) for key in request.registry_keys]
    return out


_ROOT_OS = OsFacts(version="5.1.2600", service_pack=0, architecture="x86", product_type=1, system_root=ROOT_SENTINEL)


def article_plan(spec: ArticleSpec, variables: Mapping[str, Any]) -> tuple[dict[str, str], dict[Check, list[str]]]:
    """(identity -> variant, check -> variants asking for it), variants numbered in order of appearance."""
    variant_of_request: dict[FactRequest, str] = {}
    variants: dict[str, str] = {}
    wanted: dict[Check, list[str]] = {}
    for ident, os in identities():
        request = engine.fact_request(spec, os, variables)
        if request == FactRequest():
            continue  # not applicable: no check runs
        if request not in variant_of_request:
            variant = f"v{len(variant_of_request) + 1}"
            variant_of_request[request] = variant
            for check in checks_for(spec, request):
                wanted.setdefault(check, []).append(variant)
        variants[ident] = variant_of_request[request]
    return variants, wanted


def pending_checks() -> dict[Check, list[str]]:
    """check -> the Windows releases (major.minor) it is read on: the pending-restart indicators that
    kb_article reads with the article's facts (``indicators.pending_restart_plan(os, "article")``)."""
    wanted: dict[Check, list[str]] = {}
    for release in dict.fromkeys(".".join(b.split(".")[:2]) for b in BUILDS):
        os = OsFacts(version=f"{release}.0", service_pack=0, architecture="x86", product_type=3)
        plan = indicators.pending_restart_plan(os, "article")
        checks = [Check("value", v[0], v[1]) for v in plan.values] + [Check("key", k) for k in plan.keys]
        for check in checks:
            wanted.setdefault(check, []).append(release)
    return wanted


def raw_task(name: str, check: Check, when: str | None) -> dict[str, Any]:
    # A missing file, value or key is an answer, not a failure (reg query then exits 1).
    task: dict[str, Any] = {"name": name, "ansible.builtin.raw": check.command(), "changed_when": False,
                            "failed_when": False}
    if when is not None:
        task["when"] = when
    return task


def article_tasks(article: str, wanted: Mapping[Check, list[str]]) -> list[dict[str, Any]]:
    var = f"kbfix_bench_variant_{article.lower()}"
    lookup = f"{{{{ kbfix_bench_variants.{article}[kbfix_bench_os_id] | default('none') }}}}"
    tasks: list[dict[str, Any]] = [{
        "name": f"{article}: which of the article's tables applies to this host",
        "ansible.builtin.set_fact": {var: lookup},
    }]
    for check, variants in wanted.items():
        tasks.append(raw_task(f"{article}: {check.label()}", check, f"{var} in {variants!r}"))
    return tasks


def pending_tasks() -> list[dict[str, Any]]:
    releases = list(dict.fromkeys(".".join(b.split(".")[:2]) for b in BUILDS))
    return [raw_task(f"Pending restart: {check.label()}", check,
                     None if on == releases else f"kbfix_bench_os.release in {on!r}")
            for check, on in pending_checks().items()]


HEADER = ("# Generated by bench/baseline/generate.py from the article specs and the engine's fact requests:\n"
          "# do not edit, run the generator.\n")


def render(documents: Mapping[str, Any]) -> dict[str, str]:
    return {name: HEADER + "---\n" + yaml.safe_dump(data, sort_keys=False, width=200, allow_unicode=True)
            for name, data in documents.items()}


def documents() -> dict[str, Any]:
    specs = {a: load_spec(TOP / "roles" / a.lower() / "files" / f"{a.lower()}.yml") for a in ARTICLES}
    docs: dict[str, Any] = {}
    all_variants: dict[str, dict[str, str]] = {}
    for article, spec in specs.items():
        variants, wanted = article_plan(spec, VARIABLES.get(article, {}))
        all_variants[article] = variants
        docs[f"tasks/{article.lower()}.yml"] = article_tasks(article, wanted)
    docs["vars/variants.yml"] = {"kbfix_bench_variants": all_variants}
    docs["tasks/pending.yml"] = pending_tasks()
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render(documents()).items():
        path = HERE / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run bench/baseline/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
