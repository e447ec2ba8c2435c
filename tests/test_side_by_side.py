"""side_by_side: services and the upstream alone under one load, in rounds, and the tables notebook 04 prints."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from support.bench.loadgen import LoadResult
from support.bench.measure import Measurement
from support.side_by_side import UPSTREAM_ALONE, PatternRun, format_ceilings, format_runs, interleaved_runs
from support.target import Target, connect
from tests.conftest import MODEL


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "THREADS"):
        monkeypatch.delenv(variable, raising=False)  # import_service sets them; restored afterwards
    with connect(None, MODEL, latency=0.05) as bundled:
        yield bundled


def test_interleaved_runs_repeat_each_pattern_and_the_upstream_alone(target: Target) -> None:
    apps = {
        "A": target.import_service("fix_sync_route", THREADS=2).app,
        "C": target.import_service("fix_async_client").app,
    }
    repeats = {"A": 2, "C": 1, UPSTREAM_ALONE: 1}
    runs = asyncio.run(interleaved_runs(apps, repeats, target, concurrency=4, n_requests=8, latency_s=0.05))
    assert {name: len(attempts) for name, attempts in runs.items()} == {"A": 2, "C": 1, UPSTREAM_ALONE: 1}
    assert all(run.measured.load.ok == 8 for attempts in runs.values() for run in attempts)
    a, c, alone = runs["A"][0], runs["C"][0], runs[UPSTREAM_ALONE][0]
    # Each run's peak comes from its journal: never more than its 4 clients, A's never more than its 2 threads.
    assert a.peak is not None and 1 <= a.peak <= 2
    assert c.peak is not None and 1 <= c.peak <= 4 and alone.peak is not None and 1 <= alone.peak <= 4
    # A def route starts AnyIO workers; an awaited AsyncOpenAI does not; the upstream alone starts no service.
    assert 1 <= a.threads["anyio"] <= 2 + 1 and c.threads["anyio"] == 0 and alone.threads == Counter()


def run(throughput: float, peak: int | None, threads: Counter[str]) -> PatternRun:
    load = LoadResult(concurrency=10, n_requests=100, wall_s=100 / throughput, latencies_s=[0.5] * 100)
    return PatternRun(Measurement(load, latency_s=0.5, probe_s=None), peak, threads, cpu_per_request_s=0.004)


RESULTS = {
    "A": run(10.0, 4, Counter(anyio=4)),
    "C": run(15.0, None, Counter(executor=2)),
    UPSTREAM_ALONE: run(20.0, 10, Counter()),
}


def test_format_runs_shows_each_pattern_against_the_upstream_alone() -> None:
    lines = format_runs(RESULTS).splitlines()
    assert lines[0].startswith("pattern") and "vs upstream alone" in lines[0] and "CPU ms/request" in lines[0]
    assert lines[1].split() == ["A", "10.0", "50%", "4", "4", "0", "4.0"]
    assert lines[2].split() == ["C", "15.0", "75%", "-", "0", "2", "4.0"]
    assert lines[3].split() == [
        UPSTREAM_ALONE.split()[0],
        UPSTREAM_ALONE.split()[1],
        "20.0",
        "100%",
        "10",
        "0",
        "0",
        "4.0",
    ]


def test_format_ceilings_adds_the_configured_ceiling() -> None:
    configured = {"A": "AnyIO limiter 40", "C": "SDK pool 1000"}
    lines = format_ceilings(RESULTS, configured).splitlines()
    assert lines[0].split() == ["fix", "configured", "ceiling", "peak", "in", "flight", "threads", "vs", "upstream"]
    assert len(lines) == 3  # no row for the upstream alone
    assert lines[1].split() == ["A", "AnyIO", "limiter", "40", "4", "4", "50%"]
    assert lines[2].split() == ["C", "SDK", "pool", "1000", "-", "2", "75%"]


def test_without_the_upstream_alone_there_is_no_ratio() -> None:
    only_a = {"A": RESULTS["A"]}
    assert format_runs(only_a).splitlines()[1].split()[2] == "-"
    assert format_ceilings(only_a, {"A": "x"}).splitlines()[1].split()[4] == "-"
