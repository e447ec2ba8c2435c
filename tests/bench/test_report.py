"""support.bench.report: the table, the headline and the verdicts, from results built by hand.

Rows carry their round: the report takes medians over rounds, each round's ratio against
the upstream alone of the same round, and refuses a verdict on contended rounds.
"""

from __future__ import annotations

import math
from collections import Counter

from support.bench.config import Config
from support.bench.loadgen import LoadResult
from support.bench.report import HARDENED_TARGETS, headline, table, target_table
from support.bench.results import BenchResult, Row


def load(concurrency: int, ok: int, latency_s: float, wall_s: float = 1.0) -> LoadResult:
    return LoadResult(concurrency, ok, wall_s, [latency_s] * ok, Counter({200: ok}))


def row(pattern: str, concurrency: int, ok: int, *, latency_s: float = 0.55, round_: int = 1, **extra: float) -> Row:
    return Row(
        pattern,
        pattern,
        2 if pattern.endswith("_2w") else 1,
        concurrency,
        load(concurrency, ok, latency_s),
        upstream_requests=ok,
        round=round_,
        lag_ms={"p99": extra.get("lag", math.nan), "max": 1.0},
        peak_rss_mib=extra.get("rss", math.nan),
        service_cpu_ms=extra.get("cpu", math.nan),
    )


def result(*rows: Row, rounds: int = 1) -> BenchResult:
    config = Config(latency_s=0.5, latency_p99_s=None, levels=[10, 100], rounds=rounds, open_rate_rps=None)
    return BenchResult(config, list(rows), None, None, 1.0)


def test_headline_takes_medians_of_ratios_within_each_round() -> None:
    rounds = [
        # round: upstream, hardened, plain AsyncOpenAI over aiohttp, two workers
        (180, 171, 176, 178),
        (200, 192, 198, 196),
        (190, 150, 188, 187),  # a bad round for the hardened service: the median leaves it out
    ]
    rows = []
    for r, (up, hard, plain, two) in enumerate(rounds, start=1):
        rows += [
            row("upstream", 100, up, latency_s=0.5, round_=r),
            row("hardened", 100, hard, round_=r, lag=4.0, rss=87.0, cpu=0.9),
            row("async_aiohttp", 100, plain, round_=r),
            row("hardened_2w", 100, two, round_=r, rss=168.0),
        ]
    lines = headline(result(*rows, rounds=3)).splitlines()
    assert lines[0] == "upstream alone at C=100: 190.0 req/s = 95% of the ideal 200 (C / mean latency)"
    # per round: 171/180 = 95.0%, 192/200 = 96.0%, 150/190 = 78.9%; against plain: 97.2%, 97.0%, 79.8%
    assert lines[1] == (
        "hardened at C=100: 95.0% of the upstream alone (target 95%), 97.0% of AsyncOpenAI over aiohttp "
        "(target 97%), 0.90 ms CPU per request (target 1.0)"
    )
    assert lines[2].startswith("hardened with 2 workers") and "1.04x one worker's throughput" in lines[2]
    assert lines[2].endswith("peak RSS 168 MiB vs 87 MiB for one") and len(lines) == 3
    assert HARDENED_TARGETS["vs_upstream"] == 0.95 and HARDENED_TARGETS["vs_async_aiohttp"] == 0.97


def test_a_contended_run_says_so_first_and_gets_no_verdict() -> None:
    busy = row("hardened", 100, 170, cpu=0.8)
    busy.contention = ["CPU stall 35% of the window (limit 10%)"]
    run = result(row("upstream", 100, 180, latency_s=0.5), busy)
    lines = headline(run).splitlines()
    assert lines[0] == "CONTENDED windows in: hardened; a line marked (contended) is no evidence"
    assert lines[2].endswith("(contended)") and not lines[1].endswith("(contended)")
    line = target_table(run).splitlines()[2]
    assert line.split()[:4] == ["hardened", "94%:", "contended,", "no"] and "0.80: contended, no verdict" in line


def test_target_table_says_which_pattern_met_which_target() -> None:
    blocked = row("silent", 100, 2)
    blocked.unresponsive = True
    text = target_table(
        result(
            row("upstream", 100, 180, latency_s=0.5),
            row("async", 100, 171, cpu=1.4),  # 95% of the upstream alone
            row("hardened", 100, 90, cpu=0.9),  # 50%
            blocked,
        )
    )
    lines = text.splitlines()
    assert lines[0].split("  ")[0] == "pattern" and "vs upstream at C=100 >= 95%" in lines[0]
    assert lines[2].split() == ["async", "95%:", "met", "1.40:", "missed", "-", "-"]  # no open loop in this run
    assert lines[3].split() == ["hardened", "50%:", "missed", "0.90:", "met", "-", "-"]
    assert lines[4].split()[:3] == ["silent", "1%:", "missed"] and len(lines) == 5  # no row for the upstream


def test_the_table_shows_the_spread_and_flags_a_wide_one() -> None:
    rows = [row("upstream", 10, n, latency_s=0.5, round_=r) for r, n in enumerate((19, 19, 19), start=1)]
    rows += [row("async", 10, n, round_=r) for r, n in enumerate((18, 19, 15), start=1)]  # 95%, 100%, 79%
    lines = table(result(*rows, rounds=3)).splitlines()
    cells = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert cells[:5] == ["async", "C=10", "18.0", "95%", "22% wide"]
    upstream = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert upstream[3:5] == ["100%", "0%"]


def test_table_without_a_journal_shows_dashes() -> None:
    external = row("async", 10, 19)
    external.upstream_requests, external.upstream_peak = None, None
    line = table(result(row("upstream", 10, 19, latency_s=0.5), external)).splitlines()[3]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[9:11] == ["-", "-"]  # upstream calls, peak in flight


def test_added_latency_is_over_the_upstreams_own_time_on_the_same_calls() -> None:
    """With the bundled upstream's journal, a row's latencies are compared with what the upstream
    spent on that row's own calls (its random draws cancel out); without one, with the upstream
    alone in the same round."""
    journaled = row("async", 10, 19, latency_s=0.55, round_=1)
    journaled.upstream_durations_s = [0.5] * 19
    run = result(
        row("upstream", 10, 19, latency_s=0.52, round_=1),
        row("upstream", 10, 19, latency_s=0.60, round_=2),
        journaled,
        row("async", 10, 19, latency_s=0.65, round_=2),
        rounds=2,
    )
    figures = [r for r in run.to_dict()["rows"] if r["pattern"] == "async"]
    assert [round(f["added_p50_ms"]) for f in figures] == [50, 50]  # 0.55 - 0.5; 0.65 - 0.60
    upstream = [r for r in run.to_dict()["rows"] if r["pattern"] == "upstream"]
    assert all(math.isnan(f["added_p50_ms"]) for f in upstream)  # no journal: nothing to compare it with


def test_no_added_latency_for_a_pattern_that_answered_nothing() -> None:
    answers = LoadResult(10, 4, 1.0, [0.25] * 4, Counter({500: 4}))
    failing = Row("await_sync", "await on the sync client", 1, 10, answers, upstream_requests=4)
    run = result(row("upstream", 10, 19, latency_s=0.5), failing)
    figures = run.to_dict()["rows"][1]
    assert all(math.isnan(figures[f"added_p{p}_ms"]) for p in (50, 95, 99))  # not -250 ms: failures came fast
    assert "| await on the sync client | C=10 | 0.0 |" in table(run)


def test_an_added_latency_that_unfinished_requests_may_exceed_is_shown_as_a_lower_bound() -> None:
    few = LoadResult(100, 1000, 1.0, [0.51] * 4, Counter({200: 4}), unfinished=96)
    few.unfinished_waits_s = [1.4] * 96
    stuck = Row("silent", "sync call in async def", 1, 100, few, upstream_requests=4)
    run = result(row("upstream", 100, 190, latency_s=0.5), stuck)
    figures = run.to_dict()["rows"][1]
    assert figures["added_p99_at_least"] and round(figures["added_p99_ms"]) == 900
    assert "| >=900 | >=900 |" in table(run)  # not the 10 ms the four lucky requests took
