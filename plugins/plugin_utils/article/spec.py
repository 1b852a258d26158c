# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Article specs: load, validate, resolve role variables.

A spec (``roles/kbNNNNNN/files/kbNNNNNN.yml``, format in docs/spec-format.md) is data: which Windows
versions an article applies to, the files and versions its fix installs, its registry settings, packages
and prerequisites. Loading validates all of it, so that a typo fails when the spec is read, naming the file
and the field (``kb977381.yml: files[3].version: '6.0.6001' is not a four-part version``), and never halfway
through a fleet run.

This module is the entry point: it reads files and keeps what it validated. The work is split by job:
``spec_model`` (the data classes), ``spec_reader`` (typed field access), ``spec_sections`` and
``spec_files`` (the sections), ``variables`` (role variables).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import yaml

from ..errors import SpecError
from .spec_model import FIELDS, ArticleSpec, FileRow, Package, VariableValue
from .spec_sections import spec_from_data as load_spec_data
from .variables import coerce_variable, resolve_variables

# The data classes callers name most; the rest are in spec_model.
__all__ = [
    "FIELDS", "ArticleSpec", "FileRow", "VariableValue", "coerce_variable", "load_spec", "load_spec_data", "preload",
    "require_installable", "resolve_variables",
]


# Every worker process loads the specs again (one per host and task): libyaml's safe loader parses them
# about four times faster than the pure-Python one (docs/performance.md).
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Validated specs by (file name, SHA-256 of the content). ArticleSpec is frozen, so sharing one is safe.
# Ansible forks a worker per host and task; specs loaded in the controller's main process before the fork
# (``preload``, from the action plugin's import) are found here by every worker, which then only hashes the
# file. An edited file has another digest and is parsed and validated again.
_LOADED: dict[tuple[str, str], ArticleSpec] = {}


def load_spec(path: str | Path) -> ArticleSpec:
    """Read and validate a spec file. Errors name the file's base name and the field."""
    path = Path(path)
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(source, "", f"cannot read: {exc.strerror or exc}") from None
    key = (source, hashlib.sha256(raw).hexdigest())
    known = _LOADED.get(key)
    if known is not None:
        return known
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(source, "", f"cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader, C-accelerated when available
    except yaml.YAMLError as exc:
        # Only where and what, never the parser's snippet of the text: the file may not be a spec at all.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SpecError(source, "", f"not valid YAML{where}: {problem}") from None
    spec = _LOADED[key] = load_spec_data(data, source)
    return spec


def preload(paths: Iterable[str | Path]) -> None:
    """Load these specs now (the controller's main process, before workers fork); a bad one is skipped here
    and reports its error where a task loads it."""
    for path in paths:
        try:
            load_spec(path)
        except SpecError:
            continue


def require_installable(spec: ArticleSpec, package: Package) -> None:
    """Refuse a package whose file is still the importer's placeholder: audits work, installs do not."""
    if package.needs_review:
        raise SpecError(spec.source, "packages",
                        f"{package.file!r} is a placeholder the importer could not fill in: put the real package "
                        f"file name of {package.os} ({'/'.join(package.architectures)}) in the spec before "
                        "installing")
