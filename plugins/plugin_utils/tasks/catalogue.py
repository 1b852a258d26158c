# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The known articles: the collection's own (its article roles) and the user's (the directories listed in
``kbfix_article_paths``), by id, each with where it comes from.

In a directory of ``kbfix_article_paths`` every article role ``kbNNNNNN/files/kbNNNNNN.yml`` and every spec
file ``kbNNNNNN.yml`` is an article. An article named by id in ``articles`` (or all of them, ``all``) reads
its variables from the host variables ``<role>_<name>`` (a spec file outside a role: ``<file stem>_<name>``),
as the article roles do. docs/writing-articles.md, "Your own articles".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..article.spec import ArticleSpec, load_spec, preload
from ..errors import ArgumentError, SpecError
from .article_runner import ArticleRequest, load_spec_file

ARTICLE_PATHS_VARIABLE = "kbfix_article_paths"
ALL_ARTICLES = "all"  # an entry of ``articles`` that stands for every known article

ARTICLE_ID = re.compile(r"KB\d{4,}", re.IGNORECASE)
_SPEC_NAME = re.compile(r"kb\d{4,}\.ya?ml", re.IGNORECASE)

Origin = Literal["collection", "user"]


@dataclass(frozen=True)
class KnownArticle:
    """One article the fleet can name by id: its spec file, the prefix of its host variables, and where it
    was found."""

    id: str
    title: str
    path: Path
    prefix: str  # the article role's name (or the spec file's stem): variables are <prefix>_<name>
    origin: Origin
    # The kbfix_article_paths entry it was found in ("" for the collection's own).
    search_dir: str = ""
    variables: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "path": str(self.path), "origin": self.origin,
                "search_dir": self.search_dir or None,
                "variables": [f"{self.prefix}_{name}" for name in self.variables]}


def _known(spec: ArticleSpec, path: Path, origin: Origin, search_dir: str = "") -> KnownArticle:
    in_role = path.parent.name == "files" and path.parents[1].name.casefold() == path.stem.casefold()
    prefix = path.parents[1].name if in_role else path.stem
    return KnownArticle(spec.id, spec.title, path, prefix, origin, search_dir, tuple(v.name for v in spec.variables))


def is_article_id(text: str) -> bool:
    """``KB977381`` names an article; a spec is named by a .yml file name."""
    return ARTICLE_ID.fullmatch(text.strip()) is not None


def is_all(text: Any) -> bool:
    return isinstance(text, str) and text.strip().casefold() == ALL_ARTICLES


# ------------------------------------------------------------------------------------- the collection's


_COLLECTION: dict[Path, dict[str, KnownArticle]] = {}


def preload_specs(roles_dir: Path) -> None:
    """Parse and validate the collection's own article specs now (``roles/*/files/kb*.yml``), and index them
    by id: the action plugin calls this when Ansible imports it in the controller's main process, before
    workers fork, so each worker only hashes the file it is given (``article.spec.load_spec`` caches by
    content hash) and finds an article named by id without reading the others."""
    preload(sorted(roles_dir.glob("*/files/kb*.yml")))
    collection_articles(roles_dir)


def collection_articles(roles_dir: Path) -> dict[str, KnownArticle]:
    """The articles of ``roles_dir`` (``<role>/files/kb*.yml``) by upper-case id; read once per process. A
    spec that does not load is left out here (its role reports the error)."""
    known = _COLLECTION.get(roles_dir)
    if known is None:
        known = {}
        for path in sorted(roles_dir.glob("*/files/kb*.yml")):
            try:
                spec = load_spec(path)
            except SpecError:
                continue
            known[spec.id.upper()] = _known(spec, path, "collection")
        _COLLECTION[roles_dir] = known
    return known


# ------------------------------------------------------------------------------------------ the user's


def article_dirs(value: Any, base: Path) -> list[Path]:
    """``kbfix_article_paths`` as directories (relative ones from ``base``, the playbook's directory)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ArgumentError(ARTICLE_PATHS_VARIABLE, f"must be a list of directories, got {value!r}")
    dirs = []
    for index, entry in enumerate(value):
        where = f"{ARTICLE_PATHS_VARIABLE}[{index}]"
        if not isinstance(entry, str) or not entry.strip() or "\x00" in entry:
            raise ArgumentError(where, f"must be a directory path, got {entry!r}")
        path = (base / entry).resolve()
        if not path.is_dir():
            raise ArgumentError(where, f"{entry!r} is not a directory" + (
                "" if Path(entry).is_absolute() else f" (relative to {base})"))
        dirs.append(path)
    return dirs


def _spec_files(directory: Path) -> Iterable[Path]:
    for path in sorted(directory.iterdir()):
        if path.is_file() and _SPEC_NAME.fullmatch(path.name):
            yield path
        elif path.is_dir():
            # An article role: kbNNNNNN/files/kbNNNNNN.yml (the importer writes these).
            for suffix in (".yml", ".yaml"):
                spec = path / "files" / f"{path.name.lower()}{suffix}"
                if _SPEC_NAME.fullmatch(spec.name) and spec.is_file():
                    yield spec


def user_articles(dirs: Sequence[Path]) -> list[KnownArticle]:
    """Every article in these directories, in order. A spec that does not load fails naming its file."""
    found = []
    for index, directory in enumerate(dirs):
        for path in _spec_files(directory):
            try:
                spec = load_spec(path)
            except SpecError as exc:
                raise ArgumentError(f"{ARTICLE_PATHS_VARIABLE}[{index}]", f"{path}: {exc}") from None
            found.append(_known(spec, path, "user", str(directory)))
    return found


def known_articles(roles_dir: Path, dirs: Sequence[Path]) -> dict[str, KnownArticle]:
    """The collection's articles and the user's, by upper-case id. An id found twice is an error naming both
    places: which one a fleet run audits must never depend on search order."""
    known = dict(collection_articles(roles_dir))
    for article in user_articles(dirs):
        other = known.get(article.id.upper())
        if other is not None:
            first = f"{other.path} (this collection)" if other.origin == "collection" else str(other.path)
            raise ArgumentError(ARTICLE_PATHS_VARIABLE, f"{article.id} is found twice: {first} and {article.path}; "
                                                        "keep one")
        known[article.id.upper()] = article
    return known


# --------------------------------------------------------------------------------- named in a task


def article_request(known: Mapping[str, KnownArticle], article_id: str, label: str, common: Mapping[str, Any],
                    host_value: Callable[[str], Any]) -> ArticleRequest:
    """An entry of ``articles`` that names a known article by id: its spec, and each variable the task's
    ``variables`` do not give from the host variable ``<prefix>_<name>`` (``host_value(name)``: its value, None
    when it is not set). So a play passes ids and templates nothing per article: the inventory that serves
    the roles serves this too."""
    entry = known.get(article_id.strip().upper())
    if entry is None:
        raise ArgumentError(label, f"{article_id!r} is not a known article ({', '.join(sorted(known)) or 'none'}; "
                                   f"add its directory to {ARTICLE_PATHS_VARIABLE}); or name a spec file (.yml)")
    spec = load_spec_file(entry.path, label)
    variables: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for variable in spec.variables:
        if variable.name in common:
            continue
        fields[variable.name] = f"{entry.prefix}_{variable.name}"
        value = host_value(fields[variable.name])
        if value is not None:
            variables[variable.name] = value
    return ArticleRequest(entry.path, variables, label, label, fields)


def collection_request(roles_dir: Path, article_id: str, label: str, common: Mapping[str, Any],
                       host_value: Callable[[str], Any]) -> ArticleRequest:
    """``article_request`` among the collection's own articles."""
    return article_request(collection_articles(roles_dir), article_id, label, common, host_value)


def expand_all(items: Sequence[Any], known: Mapping[str, KnownArticle]) -> list[tuple[str, Any]]:
    """The ``articles`` entries with ``all`` replaced by every known article not named otherwise, each with
    its label (``articles[0]``; ``articles[0](KB977381)`` for one that ``all`` stands for)."""
    named = {item.strip().upper() for item in items if isinstance(item, str) and is_article_id(item)}
    out: list[tuple[str, Any]] = []
    for index, item in enumerate(items):
        if not is_all(item):
            out.append((f"articles[{index}]", item))
            continue
        out += [(f"articles[{index}]({article.id})", article.id) for key, article in sorted(known.items())
                if key not in named]
        named.update(known)
    return out
