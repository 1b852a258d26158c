# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing the report files: one table of renderers (format -> file name and function), atomic writes."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from ..errors import ArgumentError
from .html_page import render_html
from .json_report import render_json
from .junit import render_junit
from .model import FleetReport, utc_now

ReportFormat = Literal["json", "junit", "html"]


@dataclass(frozen=True)
class Renderer:
    file_name: str
    render: Callable[[FleetReport, datetime.datetime], str]


# The one place a format is declared: adding a format is a module with a render function and a row here.
RENDERERS: dict[ReportFormat, Renderer] = {
    "json": Renderer("kbfix-report.json", render_json),
    "junit": Renderer("kbfix-report.xml", render_junit),
    "html": Renderer("kbfix-report.html", render_html),
}
FORMATS: tuple[ReportFormat, ...] = tuple(RENDERERS)
FILE_NAMES: dict[ReportFormat, str] = {name: renderer.file_name for name, renderer in RENDERERS.items()}


def _write_atomically(path: Path, text: str) -> None:
    # A CI job may pick the report up while a second run rewrites it: never show it half-written.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_reports(report: FleetReport, directory: str | os.PathLike[str],
                  formats: Iterable[str] = FORMATS, now: datetime.datetime | None = None) -> list[Path]:
    """Write the requested formats into ``directory`` (created if needed); returns the paths written.
    All formats carry the same generation time."""
    moment = utc_now(now)
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in RENDERERS]
    if unknown:
        raise ArgumentError("formats", f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in wanted:
        renderer = RENDERERS[cast(ReportFormat, name)]
        path = target / renderer.file_name
        _write_atomically(path, renderer.render(report, moment))
        written.append(path)
    return written
