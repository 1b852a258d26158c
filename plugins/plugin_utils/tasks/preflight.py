# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``kb_article``'s pre-flight: every check of an enforcement plan that needs no request, for every article of
the task, before the first write.

Without it a plan failed where its step ran: the hotfix installed, and only then a registry value found too
large for the host's WinRM envelope, leaving the host with half a remediation. Here each planned step is built
as its executor will build it (the package's location and installer line, the registry value's request) and
checked (sizes, types, ranges, paths, package choice); the first refusal fails the task with the host
untouched. Only reads (the gather that made the plans) have been sent.

Pure library: no Ansible imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, cast

from ..article.model import InstallDetails, OsFacts, RegistryDetails, RegistryValue, Verdict
from ..article.scope import package_for
from ..article.spec import ArticleSpec, require_installable
from ..errors import ArgumentError, ArticleFault, KbfixError
from ..package.policy import PackagePolicy
from ..transport.base import Transport
from . import installer


class Article(Protocol):
    """An article as the pre-flight needs it (``article_runner.PreparedArticle``)."""

    @property
    def id(self) -> str: ...

    @property
    def spec(self) -> ArticleSpec: ...

    @property
    def label(self) -> str: ...

    @property
    def variable_fields(self) -> Mapping[str, str]: ...


def install_request(details: InstallDetails, source: installer.PackageLocation | None, timeout: float,
                    article_id: str, policy: PackagePolicy) -> installer.InstallRequest:
    """The installer run an ``install_package`` step asks for, its package located and its line checked; a
    controller package is judged by ``policy`` and the spec's pinned hash, refusals naming ``package_source``."""
    package = details.package
    if source is None:
        raise ArgumentError("package_source", f"is required to install {article_id} ({package})")
    location = source.joined(package)
    if location.kind == "controller" and not Path(location.path).is_file():
        raise ArgumentError("package_source", f"{package} is not in {source.path} on the controller")
    kind = cast(installer.InstallerKind, details.installer)
    if location.kind != "controller":
        installer.check_arguments(kind, location.path, details.arguments, "package_source")
    return installer.InstallRequest(
        hotfix_id=details.hotfix_id, package=location, installer=kind, arguments=details.arguments,
        exit_codes=installer.exit_codes(details.success_codes), timeout=timeout,
        policy=policy, sha256=details.sha256, source_field="package_source",
    )


def check_plans(transport: Transport, os: OsFacts, articles: Sequence[Article], verdicts: Sequence[Verdict],
                source: installer.PackageLocation | None, timeout: float, enforceable: Sequence[str],
                policy: PackagePolicy) -> None:
    """Raise ``ArticleFault`` (naming the article and the field) for the first planned step of any article
    that could not be carried out, before any step of any article is. A controller package is judged here
    (hash, identity, signature), so a forged package of the second article refuses the run before the first
    article's registry values are written; the installer judges it again just before staging it."""
    for article, verdict in zip(articles, verdicts, strict=True):
        if verdict.status not in enforceable:
            continue
        try:
            for step in verdict.plan:
                if step.action == "install_package":
                    package = package_for(article.spec, os)
                    if package is not None:
                        require_installable(article.spec, package)
                    request = install_request(step.details_as(InstallDetails), source, timeout, article.id, policy)
                    installer.check_controller_package(request, os)
                elif step.action == "set_registry":
                    _check_value(transport, article, step.details_as(RegistryDetails))
        except KbfixError as exc:
            nothing_done = {"verdicts_before": [v.to_dict() for v in verdicts], "changes": []}
            raise ArticleFault(article.id, exc, nothing_done) from exc


def _check_value(transport: Transport, article: Article, details: RegistryDetails) -> None:
    try:
        transport.check_write(details.key, details.name, RegistryValue(details.type, details.data))
    except ArgumentError as exc:
        # Name the variable the value came from, where the user wrote it, rather than the spec's "data".
        variable = _variable_of(article, details.key, details.name)
        if variable is None or exc.field != "data":
            raise
        raise ArgumentError(article.variable_fields.get(variable, f"{article.label}.variables.{variable}"),
                            f"{details.key}\\{details.name}: {exc.message}") from None


def _variable_of(article: Article, key: str, name: str) -> str | None:
    for entry in article.spec.registry:
        if entry.key.casefold() == key.casefold() and entry.name.casefold() == name.casefold():
            return entry.value_from
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_variable_text(article: Article, variables: Mapping[str, object]) -> None:
    """Article variables are names, paths and numbers (server names, credits, timeouts): a control character
    in one is a paste error, and in a REG_MULTI_SZ entry a CR LF would reach the host as part of a server name
    the redirector never matches. Refused naming the variable where the user wrote it (and the entry)."""
    for name, value in variables.items():
        where = article.variable_fields.get(name, f"{article.label}.variables.{name}")
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            match = _CONTROL.search(item) if isinstance(item, str) else None
            if match:
                field = where if index is None else f"{where}[{index}]"
                raise ArticleFault(article.id, ArgumentError(
                    field, f"contains the control character {match.group()!r}, which no name in an article "
                           "variable can hold"))
