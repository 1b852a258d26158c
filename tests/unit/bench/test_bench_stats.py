"""The benchmark's pure helpers (bench/stats.py): what make bench reports is computed by these."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "bench" / "stats.py"
_spec = importlib.util.spec_from_file_location("kbfix_bench_stats", _PATH)
assert _spec is not None and _spec.loader is not None
stats = importlib.util.module_from_spec(_spec)
sys.modules["kbfix_bench_stats"] = stats  # dataclasses look their module up by name
_spec.loader.exec_module(stats)


def test_median_of_odd_and_even_counts_ignores_unmeasured():
    assert stats.median([3, 1, 2]) == 2.0
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([None, 5, None]) == 5.0
    assert stats.median([]) is None
    assert stats.median([None]) is None


def test_ratio_is_none_without_a_positive_denominator():
    assert stats.ratio(30, 5) == 6.0
    assert stats.ratio(1, 4) == 0.25
    assert stats.ratio(3, 0) is None
    assert stats.ratio(None, 2) is None
    assert stats.ratio(2, None) is None


@pytest.mark.parametrize(("value", "limit", "kind", "met"), [
    (5, 5, "at_most", True), (6, 5, "at_most", False),
    (8.0, 8, "at_least", True), (7.9, 8, "at_least", False),
    (None, 8, "at_least", None),
])
def test_target_met(value, limit, kind, met):
    target = stats.Target("t", value, limit, kind)
    assert target.met is met
    assert target.to_dict()["met"] is met


def test_medians_by_groups_repetitions_and_counts_them():
    samples = [
        {"host": "a", "article": "KB1", "req": 5, "s": 1.0},
        {"host": "a", "article": "KB1", "req": 7, "s": 3.0},
        {"host": "a", "article": "KB1", "req": 6, "s": 2.0},
        {"host": "b", "article": "KB1", "req": 9, "s": None},
    ]
    rows = stats.medians_by(samples, ("host", "article"), ("req", "s"))
    assert rows == [
        {"host": "a", "article": "KB1", "req": 6.0, "s": 2.0, "n": 3},
        {"host": "b", "article": "KB1", "req": 9.0, "s": None, "n": 1},
    ]


def test_table_pads_columns_and_right_aligns_numbers():
    text = stats.table(("host", "requests", "seconds"), [("xp", 5, 0.123), ("server-2008", 13.0, None)])
    lines = text.splitlines()
    assert lines[0] == "| host        | requests | seconds |"
    assert lines[1] == "|-------------|---------:|--------:|"
    assert lines[2] == "| xp          |        5 |    0.12 |"
    assert lines[3] == "| server-2008 |       13 |       - |"
    assert len({len(line) for line in lines}) == 1


def test_fmt_cells():
    assert stats.fmt(None) == "-"
    assert stats.fmt(True) == "yes"
    assert stats.fmt(False) == "NO"
    assert stats.fmt(12.0) == "12"
    assert stats.fmt(0.5, digits=1) == "0.5"
    assert stats.fmt("3.1x") == "3.1x"
