# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.article_import: an article's text in, a thin article role with a checked spec out.

Everything happens on the controller: the importer (``plugin_utils/importer``) reads the article and loads the
spec it made with the collection's own loader; this module decides what to write (never over an existing role
without ``force``; nothing in check mode) and what to show (``--diff`` against an existing spec).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ArgumentError
from ..importer.build import import_article
from ..importer.render import plain, role_files

_MAX_ARTICLE_BYTES = 8 * 1024 * 1024


def read_article(path: Path) -> str:
    """An article file as text: UTF-8 (with or without BOM), else the Windows code page browsers saved in."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArgumentError("src", f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_ARTICLE_BYTES:
        raise ArgumentError("src", f"{path.name} is larger than {_MAX_ARTICLE_BYTES // 2**20} MiB: not an article")
    if b"\x00" in raw[:4096]:
        raise ArgumentError("src", f"{path.name} is not text (a saved page, copied text or Markdown)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def run_import(src: Path, dest: Path, *, force: bool, check_mode: bool, diff: bool) -> dict[str, Any]:
    if not src.is_file():
        raise ArgumentError("src", f"{src} is not a file")
    if dest.exists() and not dest.is_dir():
        raise ArgumentError("dest", f"{dest} is not a directory")
    result = import_article(read_article(src), src.name)
    role = dest / result.spec_id
    files = role_files(result.spec_id, result.data)
    files[f"files/{result.spec_id}.yml"] = result.text
    spec_path = role / "files" / f"{result.spec_id}.yml"
    before = spec_path.read_text(encoding="utf-8") if spec_path.is_file() else ""
    if role.exists() and not force:
        raise ArgumentError("force", f"{role} exists: the role is not overwritten without force=true "
                                     "(run with --check --diff to see what would change)")
    changed = any(not (role / name).is_file() or (role / name).read_text(encoding="utf-8") != text
                  for name, text in files.items())
    if changed and not check_mode:
        for name, text in files.items():
            _write(role / name, text)
    out: dict[str, Any] = {"changed": changed, "path": str(spec_path), "role": str(role),
                           "spec": plain(result.data), "report": result.report}
    if diff:
        out["diff"] = {"before": before, "after": result.text,
                       "before_header": str(spec_path) if before else "(no spec)", "after_header": str(spec_path)}
    return out


def _write(path: Path, text: str) -> None:
    """Replace a file whole: a reader never sees half a spec."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
