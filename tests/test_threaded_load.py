"""threaded_load: a def-route service under load, watched from its loop and at the upstream, and the tables
notebook 02 prints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from support.bench.loadgen import LoadResult
from support.bench.measure import Measurement
from support.serve import serve_in_thread
from support.side_by_side import upstream_run
from support.target import Target, connect
from support.threaded_load import WatchedRun, format_limiter_runs, format_thread_costs, load_watched
from support.threads import Peaks, ProcStatus, proc_status
from tests.conftest import MODEL, Binder

LATENCY_S = 0.2


def test_load_watched_reads_the_service_loop_s_limiter(bind: Binder) -> None:
    fix_a = bind("fix_sync_route", latency=LATENCY_S, threads=4)  # 4 tokens for 8 clients
    with serve_in_thread(fix_a.app) as server:
        idle = proc_status().threads
        run = asyncio.run(
            load_watched(server, concurrency=8, n_requests=8, latency_s=LATENCY_S, idle_threads=idle, noop_after_s=0.05)
        )
    assert run.measured.load.ok == 8
    assert run.peaks.total_tokens == 4  # the service loop's limiter, not this thread's 40
    assert run.peaks.borrowed_tokens == 4 and run.peaks.tasks_waiting >= 1
    assert 1 <= run.workers <= 4 + 2
    # The no-op went in while every token was held by a call of LATENCY_S: it waited for one.
    assert run.noop_wait_s is not None and run.noop_wait_s >= LATENCY_S / 4


def test_without_a_noop_there_is_no_noop_wait(bind: Binder) -> None:
    fix_a = bind("fix_sync_route", latency=0.01)
    with serve_in_thread(fix_a.app) as server:
        run = asyncio.run(
            load_watched(server, concurrency=2, n_requests=4, latency_s=0.01, idle_threads=proc_status().threads)
        )
    assert run.noop_wait_s is None and run.measured.load.ok == 4
    assert run.peak_in_flight is None  # no target: no journal read


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "THREADS"):
        monkeypatch.delenv(variable, raising=False)  # import_service sets them; restored afterwards
    with connect(None, MODEL, latency=LATENCY_S) as bundled:
        yield bundled


def test_load_watched_reads_the_upstreams_peak_and_prints_the_server_alone(target: Target) -> None:
    fix_a = target.import_service("fix_sync_route", THREADS=3)  # 3 tokens for 7 clients
    with serve_in_thread(fix_a.app) as server:
        load = {"concurrency": 7, "n_requests": 9, "latency_s": LATENCY_S, "idle_threads": proc_status().threads}
        run = asyncio.run(load_watched(server, target=target, **load))
    alone = asyncio.run(upstream_run(target, concurrency=7, n_requests=9, latency_s=LATENCY_S))
    assert run.peak_in_flight == 3 and alone.peak == 7  # the journal: the limiter's ceiling, the clients' own
    text = format_limiter_runs({"3 tokens": run}, alone=alone)
    assert [line.split()[0] for line in text.splitlines()[1:3]] == ["3", "server"]  # the load table's rows
    assert text.splitlines()[-2].endswith("; at most 3 calls in flight at the upstream")
    assert text.splitlines()[-1] == "server alone: at most 7 calls in flight at the upstream"


def watched(concurrency: int, tokens: int, workers: int, wall_s: float, vm_kib: int, rss_kib: int) -> WatchedRun:
    load = LoadResult(concurrency=concurrency, n_requests=80, wall_s=wall_s, latencies_s=[1.0] * 80)
    load.statuses[200] = 80
    peaks = Peaks(vm_size_kib=vm_kib, vm_rss_kib=rss_kib, borrowed_tokens=tokens, tasks_waiting=3, total_tokens=tokens)
    peaks.cpu_s = 0.8
    return WatchedRun(Measurement(load, latency_s=2.0, probe_s=0.002), peaks, workers, None)


RUNS = {
    "40 tokens": watched(80, 40, 40, 4.8, 100_000 + 40 * 8192, 100_000 + 40 * 100),
    "80 tokens": watched(80, 80, 80, 2.6, 100_000 + 80 * 8192, 100_000 + 80 * 100),
}


def test_format_limiter_runs_puts_each_run_against_its_rounds() -> None:
    text = format_limiter_runs(RUNS)
    assert text.splitlines()[0].startswith("pattern")  # the load table first
    assert (
        "40 tokens: 2.40 latencies (ideal 2); tokens borrowed at most 40 of 40, up to 3 tasks waiting; "
        "40 worker threads" in text
    )
    assert "80 tokens: 1.30 latencies (ideal 1);" in text


def test_format_thread_costs_shows_growth_and_the_cost_of_one_more_thread() -> None:
    text = format_thread_costs(
        RUNS, ProcStatus(threads=5, vm_size_kib=100_000, vm_rss_kib=100_000), compare=("40 tokens", "80 tokens")
    )
    header, first, second, last = text.splitlines()
    assert header.split() == ["run", "worker", "threads", "VmSize", "+MiB", "VmRSS", "+MiB", "CPU", "ms/request"]
    assert first.split() == ["40", "tokens", "40", "320.0", "3.9", "10.0"]
    assert second.split() == ["80", "tokens", "80", "640.0", "7.8", "10.0"]
    assert last == "each of the 40 extra threads of '80 tokens': 8.0 MiB reserved, 0.10 MiB resident"


def test_format_thread_costs_without_proc_memory() -> None:
    text = format_thread_costs(RUNS, ProcStatus(threads=5, vm_size_kib=None, vm_rss_kib=None))
    assert text.splitlines()[1].split() == ["40", "tokens", "40", "-", "-", "10.0"]
    assert "extra threads" not in text
