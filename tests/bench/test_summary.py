"""support.bench.summary: medians over rounds, their spread, and the flag on a wide one."""

from __future__ import annotations

import math

import pytest

from support.bench.summary import SPREAD_LIMIT, spread_of, summarize


def test_the_median_and_the_range_leave_missing_rounds_out() -> None:
    spread = spread_of([0.9, None, 1.0, math.nan, 0.95])
    assert (spread.median, spread.low, spread.high, spread.n) == (0.95, 0.9, 1.0, 3)
    assert spread.relative == pytest.approx(0.1 / 0.95)


def test_a_spread_past_the_limit_is_wide_and_one_at_it_is_not() -> None:
    assert SPREAD_LIMIT == 0.10
    assert not spread_of([1.0, 1.1, 1.1]).wide  # 0.1 / 1.1: just under the limit
    assert spread_of([1.0, 1.0, 1.11]).wide


def test_no_value_no_figure() -> None:
    empty = spread_of([None, math.nan])
    assert empty.n == 0 and math.isnan(empty.median) and math.isnan(empty.relative) and not empty.wide
    assert math.isnan(spread_of([0.0, 0.0]).relative)  # no positive median to divide by


def test_rows_group_by_pattern_and_load_in_order_of_appearance() -> None:
    def row(pattern: str, mode: str, level: float, round_: int) -> dict[str, object]:
        closed = mode == "closed"
        return {
            "pattern": pattern,
            "mode": mode,
            "concurrency": level if closed else 80 + round_,
            "rate_rps": None if closed else level,
            "round": round_,
        }

    rows = [row(p, m, x, r) for r in (1, 2) for p in ("upstream", "async") for m, x in (("closed", 100), ("open", 150))]
    groups = summarize(rows)
    assert [(g.pattern, g.level, len(g.rows)) for g in groups] == [
        ("upstream", "C=100", 2),
        ("upstream", "150/s", 2),
        ("async", "C=100", 2),
        ("async", "150/s", 2),
    ]  # an open loop's rows group by rate, though its most-in-flight differs from round to round
