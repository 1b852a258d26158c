"""Pure helpers of the benchmark: medians, ratios, target checks and the printed tables.

No I/O here, so the numbers ``bench/run.py`` writes can be checked by a unit test
(``tests/unit/bench/test_bench_stats.py``) without a fleet.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def median(values: Iterable[float | int | None]) -> float | None:
    """The median of the values that were measured (None = not measured); None when there are none."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return float(statistics.median(present))


def ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is not positive
    (a ratio against zero requests says nothing, it is not infinity)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


@dataclass(frozen=True)
class Target:
    """One claim of the issue: ``value`` compared with ``limit`` (``at_most`` or ``at_least``)."""

    name: str
    value: float | None
    limit: float
    kind: str  # "at_most" | "at_least"
    note: str = ""  # why there is no value (shown in its place)

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.kind == "at_most" else self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "kind": self.kind, "met": self.met,
                "note": self.note}


def fmt(value: float | int | str | bool | None, digits: int = 2) -> str:
    """A table cell: ``-`` for missing, integers without decimals, floats with ``digits`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 2) -> str:
    """A plain-text table, also valid Markdown (pipes), columns padded to their widest cell; numbers
    right-aligned so the eye can compare them down a column."""
    cells = [[fmt(c, digits) if not isinstance(c, str) else c for c in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in cells if row[i] != "-") and any(row[i] != "-" for row in cells)
               for i in range(len(headers))] if cells else [False] * len(headers)
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x"))
    except ValueError:
        return False
    return True


def medians_by(samples: Iterable[Mapping[str, Any]], key: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Group repeated measurements by the ``key`` fields and give the median of each of ``fields``,
    plus ``n`` (how many repetitions went into it). Groups keep the order they first appear in."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample.get(k) for k in key), []).append(sample)
    out = []
    for ident, members in groups.items():
        row: dict[str, Any] = dict(zip(key, ident, strict=True))
        for name in fields:
            row[name] = median(m.get(name) for m in members)
        row["n"] = len(members)
        out.append(row)
    return out
