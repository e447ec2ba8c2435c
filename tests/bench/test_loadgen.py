"""support.bench.loadgen against real servers: exact counts, closed-loop bounds, failures, the deadline.

Timings are only checked against physical lower bounds (a closed loop cannot beat
concurrency / latency); how fast things are is measured by bench_upstream, not asserted.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import statistics
import time
from collections import Counter

import pytest
from fastapi import FastAPI, Request

from support.bench.loadgen import (
    DEADLINE,
    LoadResult,
    RequestSpec,
    ideal_throughput,
    new_session,
    run_load,
    run_load_sync,
)
from support.serve import serve_in_thread
from support.upstream import upstream_in_thread

LATENCY = 0.05
TIMER_SLACK = 0.002  # a server's timer may fire this much early (millisecond-granular event loops)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture(scope="module")
def upstream():
    with upstream_in_thread(latency=LATENCY) as running:
        yield running


@pytest.fixture(scope="module")
def sleeper():
    """A tiny FastAPI app that records how many requests it holds at once, and from which ports."""
    app = FastAPI()
    app.state.stats = stats = {"inflight": 0, "max_inflight": 0, "ports": set()}

    @app.get("/sleep")
    async def sleep(request: Request, s: float = 0.1) -> dict[str, bool]:
        stats["inflight"] += 1
        stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
        stats["ports"].add(request.client.port)
        try:
            await asyncio.sleep(s)
        finally:
            stats["inflight"] -= 1
        return {"ok": True}

    with serve_in_thread(app) as server:
        yield server, stats


def chat(upstream, **headers: str) -> RequestSpec:
    return RequestSpec("POST", f"{upstream.base_url}/chat/completions", BODY, {"Authorization": "Bearer t", **headers})


def test_counts_are_exact_and_the_server_saw_each_request_once(upstream):
    upstream.journal.clear()
    result = run_load_sync(chat(upstream), concurrency=4, n_requests=22)
    assert result.n_requests == result.completed == len(result.latencies_s) == 22
    assert result.statuses == Counter({200: 22})
    assert (result.ok, result.errors, result.timed_out) == (22, 0, False)
    entries = upstream.journal.entries(endpoint="chat.completions")
    assert len(entries) == 22 and {e.outcome for e in entries} == {"ok"}


def test_closed_loop_cannot_beat_its_ceiling(upstream):
    concurrency, n = 5, 23  # 5 rounds, the last one partial
    result = run_load_sync(chat(upstream), concurrency=concurrency, n_requests=n)
    rounds = math.ceil(n / concurrency)
    assert min(result.latencies_s) >= LATENCY - TIMER_SLACK
    assert result.wall_s >= rounds * (LATENCY - TIMER_SLACK)
    assert 0 < result.throughput <= ideal_throughput(concurrency, LATENCY) * 1.05
    assert result.throughput == pytest.approx(n / result.wall_s)


def test_exactly_concurrency_requests_in_flight_on_reused_connections(sleeper):
    server, stats = sleeper
    stats.update(max_inflight=0, ports=set())
    # 120 > aiohttp's default connector limit of 100: the connector must not cap concurrency.
    result = run_load_sync(RequestSpec("GET", f"{server.base_url}/sleep?s=0.5"), concurrency=120, n_requests=240)
    assert result.statuses == Counter({200: 240})
    assert stats["max_inflight"] == 120
    assert len(stats["ports"]) <= 120  # keep-alive: the second round reused the first round's connections


def test_http_errors_are_counted_by_status(upstream):
    result = run_load_sync(chat(upstream, **{"x-upstream-fault": "server_error"}), concurrency=3, n_requests=7)
    assert result.statuses == Counter({500: 7})
    assert (result.completed, result.ok, result.errors) == (7, 0, 7)


def test_unreachable_port_is_counted_by_exception_name_without_hanging():
    sock = socket.socket()  # bound but never listening: connections are refused
    sock.bind(("127.0.0.1", 0))
    try:
        started = time.perf_counter()
        result = run_load_sync(
            RequestSpec("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/"), concurrency=3, n_requests=9, timeout_s=5
        )
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    assert elapsed < 5
    assert sum(result.statuses.values()) == result.errors == 9 and result.ok == 0
    [(name, _)] = result.statuses.items()
    assert isinstance(name, str) and name.startswith("Client"), name  # e.g. ClientConnectorError


def test_deadline_cancels_stuck_workers(upstream):
    timeout = 0.5
    started = time.perf_counter()
    result = run_load_sync(
        chat(upstream, **{"x-upstream-fault": "hang"}), concurrency=3, n_requests=10, timeout_s=timeout
    )
    elapsed = time.perf_counter() - started
    assert elapsed < timeout + 1.5
    assert result.timed_out
    assert result.statuses == Counter({DEADLINE: 3})  # the 3 in flight; the other 7 never started
    assert (result.completed, result.errors) == (3, 3)
    assert all(latency >= timeout - 0.05 for latency in result.latencies_s)


def test_window_counts_requests_in_flight_as_unfinished_not_as_errors(upstream):
    result = run_load_sync(chat(upstream, **{"x-upstream-fault": "hang"}), concurrency=3, n_requests=10, window_s=0.5)
    assert (result.unfinished, result.completed, result.errors, result.timed_out) == (3, 0, 0, False)
    assert result.latencies_s == [] and result.throughput == 0
    assert len(result.unfinished_waits_s) == 3 and all(0.45 <= w < 2 for w in result.unfinished_waits_s)
    value, lower_bound = result.percentile_bound(99)
    assert lower_bound and value >= 0.45  # nothing finished: at least the waits


def test_a_percentile_is_a_lower_bound_only_when_unfinished_requests_may_exceed_it() -> None:
    healthy = LoadResult(100, 1000, 1.0, [0.5] * 200, Counter({200: 200}), unfinished=100)
    healthy.unfinished_waits_s = [0.4] * 100  # in flight at the close, each shorter than a finished call
    assert healthy.percentile_bound(99) == (0.5, False)
    stuck = LoadResult(100, 1000, 1.0, [0.01] * 4, Counter({200: 4}), unfinished=96)
    stuck.unfinished_waits_s = [1.4] * 96  # the few that finished were the lucky ones
    assert stuck.percentile(99) == pytest.approx(0.01)
    assert stuck.percentile_bound(99) == (pytest.approx(1.4), True)
    assert stuck.percentile_bound(50) == (pytest.approx(1.4), True)


def test_window_ends_early_when_the_requests_are_done(upstream):
    result = run_load_sync(chat(upstream), concurrency=2, n_requests=4, window_s=30)
    assert (result.ok, result.unfinished) == (4, 0) and result.wall_s < 30


def test_progress_session_reuse_and_json_summary(upstream):
    seen: list[tuple[int, int]] = []

    async def main() -> tuple[LoadResult, bool]:
        async with new_session() as session:
            result = await run_load(
                chat(upstream),
                concurrency=2,
                n_requests=5,
                session=session,
                on_progress=lambda done, total: seen.append((done, total)),
            )
            return result, session.closed

    result, closed = asyncio.run(main())
    assert not closed  # a session passed in is left open for the caller
    assert seen == [(i, 5) for i in range(1, 6)]
    summary = result.to_dict()
    assert "latencies_s" not in summary and json.loads(json.dumps(summary))["statuses"] == {"200": 5}
    assert summary["completed"] == 5 and summary["p50_s"] == result.p50
    assert len(result.to_dict(include_latencies=True)["latencies_s"]) == 5


def test_a_failing_progress_callback_is_raised_not_swallowed(upstream):
    def boom(done: int, total: int) -> None:
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        run_load_sync(chat(upstream), concurrency=2, n_requests=4, on_progress=boom)


def test_percentiles_interpolate_linearly():
    result = LoadResult(concurrency=1, n_requests=4, latencies_s=[4.0, 1.0, 3.0, 2.0])
    assert (result.percentile(0), result.p50, result.percentile(100)) == (1.0, 2.5, 4.0)
    assert result.percentile(25) == pytest.approx(1.75)
    assert result.p95 == pytest.approx(3.85) and result.p99 == pytest.approx(3.97)
    data = [0.3, 0.1, 0.7, 0.2, 0.9, 0.5, 0.4]
    many = LoadResult(concurrency=1, n_requests=7, latencies_s=data)
    assert [many.percentile(p) for p in (25, 50, 75)] == pytest.approx(
        statistics.quantiles(data, n=4, method="inclusive")
    )
    assert math.isnan(LoadResult(concurrency=1, n_requests=1).p50)
    assert LoadResult(concurrency=1, n_requests=1).to_dict()["p99_s"] is None
    with pytest.raises(ValueError, match="between 0 and 100"):
        result.percentile(101)


def test_throughput_and_ideal():
    result = LoadResult(
        concurrency=10, n_requests=40, wall_s=2.0, latencies_s=[0.5] * 40, statuses=Counter({200: 39, 503: 1})
    )
    assert result.throughput == 20.0 and result.ok == 39
    assert ideal_throughput(10, 0.5) == 20.0
    assert LoadResult(concurrency=1, n_requests=1).throughput == 0.0
    with pytest.raises(ValueError, match="latency_s"):
        ideal_throughput(10, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0, "n_requests": 1}, "concurrency must be an integer >= 1"),
        ({"concurrency": 1, "n_requests": 0}, "n_requests must be an integer >= 1"),
        ({"concurrency": 2.5, "n_requests": 1}, "concurrency must be an integer >= 1"),
        ({"concurrency": 1, "n_requests": 1, "timeout_s": 0}, "timeout_s must be > 0"),
    ],
)
def test_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_load_sync(RequestSpec("GET", "http://127.0.0.1:9/"), **kwargs)


def test_a_ramp_is_not_counted_and_the_window_is_its_own_length(upstream):
    """Started together, the clients' first calls would all complete one latency in; with a ramp
    the window opens on the steady state: what completed before it is not recorded, and its
    throughput is completions over the window's length."""
    opened: list[float] = []
    started = time.perf_counter()
    result = run_load_sync(
        chat(upstream),
        concurrency=4,
        n_requests=10_000,
        window_s=0.5,
        ramp_s=0.3,
        on_window=lambda: opened.append(time.perf_counter()),
    )
    assert len(opened) == 1 and 0.3 - TIMER_SLACK <= opened[0] - started < 0.4  # a timer may fire a little early
    assert result.wall_s == pytest.approx(0.5, abs=0.05)  # the window, not first send to last completion
    # 4 clients, one call per LATENCY each: about 0.5 / LATENCY calls apiece in the window, none of the ramp's
    assert 0.7 * 4 * 0.5 / LATENCY <= result.completed <= 4 * 0.5 / LATENCY + 4
    assert result.unfinished == 4 and result.errors == 0


def test_a_ramp_needs_a_window(upstream):
    with pytest.raises(ValueError, match="ramp_s must be >= 0, and needs a window_s"):
        run_load_sync(chat(upstream), concurrency=1, n_requests=1, ramp_s=0.1)
