"""support.bench.report.headline: the first figures a reader checks, from a result built by hand."""

from __future__ import annotations

import math
from collections import Counter

from support.bench.loadgen import LoadResult
from support.bench.report import HARDENED_TARGETS, headline, table, target_table
from support.bench.run import BenchResult, Config, Row


def load(concurrency: int, ok: int, latency_s: float, wall_s: float = 1.0) -> LoadResult:
    return LoadResult(concurrency, ok, wall_s, [latency_s] * ok, Counter({200: ok}))


def row(pattern: str, concurrency: int, ok: int, *, latency_s: float = 0.55, **extra: float) -> Row:
    return Row(
        pattern,
        pattern,
        2 if pattern.endswith("_2w") else 1,
        concurrency,
        load(concurrency, ok, latency_s),
        upstream_requests=ok,
        lag_ms={"p99": extra.get("lag", math.nan), "max": 1.0},
        peak_rss_mib=extra.get("rss", math.nan),
        service_cpu_ms=extra.get("cpu", math.nan),
    )


def result(*rows: Row) -> BenchResult:
    return BenchResult(Config(latency_s=0.5, levels=[10, 100]), list(rows), None, None, 1.0)


def test_headline_at_the_highest_level() -> None:
    text = headline(
        result(
            row("upstream", 10, 19, latency_s=0.5),
            row("upstream", 100, 180, latency_s=0.5),
            row("hardened", 10, 10, lag=50.0),
            row("hardened", 100, 90, lag=12.5, rss=87.0, cpu=8.8),
            row("hardened_2w", 100, 99, rss=168.0),
        )
    )
    assert text.splitlines() == [
        "upstream alone at C=100: 180.0 req/s = 90% of the ideal 200",
        "hardened at C=100: 50% of the upstream alone (target 90%), added p99 50 ms (target 50), "
        "loop lag p99 12.5 ms (target 10), 8.8 ms CPU per request",
        "hardened with 2 workers: 55% of the upstream alone, peak RSS 168 MiB vs 87 MiB for one",
    ]
    assert HARDENED_TARGETS["vs_upstream"] == 0.9


def test_headline_at_a_given_level_and_without_missing_patterns() -> None:
    text = headline(result(row("upstream", 10, 19, latency_s=0.5), row("hardened", 10, 18, cpu=float("nan"))), 10)
    lines = text.splitlines()
    assert lines[0] == "upstream alone at C=10: 19.0 req/s = 95% of the ideal 20"
    assert lines[1].startswith("hardened at C=10: 95% of the upstream alone") and "loop lag p99 - ms" in lines[1]
    assert lines[1].endswith("- ms CPU per request") and len(lines) == 2  # no 2-worker row in this run
    assert headline(result(), 10) == ""


def test_target_table_says_which_pattern_met_which_target() -> None:
    blocked = row("silent", 100, 2)
    blocked.unresponsive = True
    text = target_table(
        result(
            row("upstream", 100, 180, latency_s=0.5),
            row("async", 100, 171, latency_s=0.54, lag=4.0),  # 95% of the upstream alone, added p99 40 ms
            row("hardened", 100, 90, latency_s=0.56, lag=12.5),  # 50%, added p99 60 ms
            blocked,
        )
    )
    lines = text.splitlines()
    assert lines[0].split("  ")[0] == "pattern at C=100" and "vs upstream >= 90%" in lines[0]
    assert lines[2].split() == ["async", "95%:", "met", "40:", "met", "4.0:", "met"]
    assert lines[3].split() == ["hardened", "50%:", "missed", "60:", "missed", "12.5:", "missed"]
    assert lines[4].split()[-3:] == ["no", "answer:", "missed"] and len(lines) == 5  # no row for the upstream


def test_table_without_a_journal_shows_dashes() -> None:
    external = row("async", 10, 19)
    external.upstream_requests, external.upstream_peak = None, None
    line = table(result(row("upstream", 10, 19, latency_s=0.5), external)).splitlines()[3]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[8:10] == ["-", "-"]  # upstream calls, peak in flight


def test_no_added_latency_for_a_pattern_that_answered_nothing() -> None:
    answers = LoadResult(10, 4, 1.0, [0.25] * 4, Counter({500: 4}))
    failing = Row("await_sync", "await on the sync client", 1, 10, answers, upstream_requests=4)
    figures = failing.to_dict(0.5, None)
    assert all(math.isnan(figures[f"added_p{p}_ms"]) for p in (50, 95, 99))  # not -250 ms: failures came fast
    served = row("async", 10, 4, latency_s=0.6).to_dict(0.5, None)
    assert round(served["added_p50_ms"]) == 100
    assert "| await on the sync client | 10 | 0.0 |" in table(result(row("upstream", 10, 19), failing))
    assert "| - | - |" in table(result(row("upstream", 10, 19), failing))


def test_an_added_latency_that_unfinished_requests_may_exceed_is_shown_as_a_lower_bound() -> None:
    few = LoadResult(100, 1000, 1.0, [0.51] * 4, Counter({200: 4}), unfinished=96)
    few.unfinished_waits_s = [1.4] * 96
    stuck = Row("silent", "sync call in async def", 1, 100, few, upstream_requests=4)
    figures = stuck.to_dict(0.5, None)
    assert figures["added_p99_at_least"] and round(figures["added_p99_ms"]) == 900
    text = table(result(row("upstream", 100, 190), stuck))
    assert "| >=900 | >=900 |" in text  # not the 10 ms the four lucky requests took
    assert ">=900: missed" in target_table(result(row("upstream", 100, 190), stuck))
    served = row("async", 100, 180)
    assert not served.to_dict(0.5, None)["added_p99_at_least"]
