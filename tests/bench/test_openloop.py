"""support.bench.openloop against real servers: the schedule, latency from the intended time, the drain, cancellation.

Most servers here are tiny aiohttp apps on the test's own event loop, so a test can
stall that loop on purpose; timings are only checked against physical bounds (a reply
cannot come before the handler's sleep) and against the schedule, never as speeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from support.bench import eventloop
from support.bench.loadgen import LoadResult, RequestSpec, new_session, run_load
from support.bench.openloop import OpenLoopResult, poisson_offsets, run_open_loop
from support.upstream import upstream_in_thread

LATENCY = 0.05
TIMER_SLACK = 0.002  # a timer may fire this much early (millisecond-granular event loops)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}


@dataclass
class Server:
    url: str
    max_in_flight: int = 0
    bodies: Counter[bytes] = field(default_factory=Counter)
    content_types: set[str] = field(default_factory=set)


@contextlib.asynccontextmanager
async def sleeping_server(delay_s: float = LATENCY, status: int = 200) -> AsyncIterator[Server]:
    """An aiohttp app on the running loop that answers `status` after `delay_s`."""
    in_flight = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal in_flight
        in_flight += 1
        server.max_in_flight = max(server.max_in_flight, in_flight)
        try:
            server.bodies[await request.read()] += 1
            server.content_types.add(request.content_type)
            await asyncio.sleep(delay_s)
        finally:
            in_flight -= 1
        return web.Response(status=status, text="done")

    app = web.Application()
    app.router.add_route("*", "/", handle)
    # Cancel a handler whose client went away, and wait little for the rest at shutdown.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = Server(f"http://127.0.0.1:{runner.addresses[0][1]}/")
        yield server
    finally:
        await runner.cleanup()


def post(url: str) -> RequestSpec:
    return RequestSpec("POST", url, BODY, {"Authorization": "Bearer t"})


# --- the schedule ---------------------------------------------------------------------


def test_offsets_are_deterministic_per_seed_sorted_and_inside_the_window() -> None:
    first = poisson_offsets(50, 10, seed=1)
    assert first == poisson_offsets(50.0, 10.0, seed=1)
    assert first != poisson_offsets(50, 10, seed=2)
    assert first == sorted(first) and len(set(first)) == len(first)
    assert all(0 <= t < 10 for t in first)


def test_offsets_count_is_poisson() -> None:
    rate, window = 200, 50
    expected = rate * window  # mean and variance of a Poisson count
    for seed in range(3):
        offsets = poisson_offsets(rate, window, seed)
        assert abs(len(offsets) - expected) < 5 * math.sqrt(expected), (seed, len(offsets))
        assert offsets[-1] < window and offsets[-1] > window - 0.1  # no gap at the end of the window
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert sum(gaps) / len(gaps) == pytest.approx(1 / rate, rel=0.05)
    assert poisson_offsets(0.001, 0.01, seed=0) == []  # a window too short for any arrival is not an error


@pytest.mark.parametrize(
    ("rate", "window", "message"),
    [
        (0, 1, "rate_rps must be a finite number > 0, got 0"),
        (-5, 1, "rate_rps must be a finite number > 0, got -5"),
        (math.nan, 1, "rate_rps must be a finite number > 0, got nan"),
        (math.inf, 1, "rate_rps must be a finite number > 0, got inf"),
        ("100", 1, "rate_rps must be a finite number > 0, got '100'"),
        (True, 1, "rate_rps must be a finite number > 0, got True"),
        (10, 0, "window_s must be a finite number > 0, got 0"),
        (10, -1.5, "window_s must be a finite number > 0, got -1.5"),
        (10, math.nan, "window_s must be a finite number > 0, got nan"),
        (1e6, 1e3, "rate_rps \\* window_s must be at most 10,000,000 requests"),
    ],
)
def test_bad_schedule_arguments_raise(rate: Any, window: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        poisson_offsets(rate, window, seed=0)


@pytest.mark.parametrize("drain", [-1, math.nan, math.inf])
def test_bad_drain_raises_before_any_request(drain: float) -> None:
    spec = RequestSpec("GET", "http://127.0.0.1:9/")  # never contacted
    with pytest.raises(ValueError, match=r"^drain_s must be a finite number >= 0"):
        asyncio.run(run_open_loop(spec, rate_rps=10, window_s=1, drain_s=drain))
    with pytest.raises(ValueError, match=r"^rate_rps must be"):
        asyncio.run(run_open_loop(spec, rate_rps=0, window_s=1))


def test_an_empty_schedule_sends_nothing() -> None:
    result = asyncio.run(run_open_loop(RequestSpec("GET", "http://127.0.0.1:9/"), rate_rps=0.001, window_s=0.01))
    assert (result.n_requests, result.completed, result.wall_s, result.concurrency, result.send_lag_s) == (
        0,
        0,
        0.0,
        0,
        [],
    )
    assert json.loads(json.dumps(result.to_dict()))["send_lag_max_ms"] is None


# --- runs -----------------------------------------------------------------------------


def test_open_loop_keeps_its_schedule_against_a_steady_server() -> None:
    rate, window, seed = 100, 1.0, 7
    scheduled = poisson_offsets(rate, window, seed)

    async def main() -> tuple[OpenLoopResult, Server, float, bool]:
        async with sleeping_server() as server, new_session() as session:
            started = time.perf_counter()
            result = await run_open_loop(post(server.url), rate_rps=rate, window_s=window, seed=seed, session=session)
            return result, server, time.perf_counter() - started, session.closed

    result, server, elapsed, closed = eventloop.run(main())
    n = len(scheduled)
    assert isinstance(result, LoadResult) and not closed  # a session passed in is left open
    assert (result.n_requests, result.completed, result.unfinished, result.errors) == (n, n, 0, 0)
    assert result.statuses == Counter({200: n}) and result.ok == n
    assert server.bodies == Counter({json.dumps(BODY).encode(): n}) and server.content_types == {"application/json"}
    assert result.achieved_rps == pytest.approx(n / window)
    assert min(result.latencies_s) >= LATENCY - TIMER_SLACK
    assert len(result.send_lag_s) == n and min(result.send_lag_s) >= 0
    assert sorted(result.send_lag_s)[n // 2] < 0.005 and max(result.send_lag_s) < 0.05
    # It never waited for earlier replies: several were in flight at once, and the run
    # ended soon after the window instead of after n sequential round trips.
    assert server.max_in_flight <= result.most_in_flight == result.concurrency
    assert result.most_in_flight >= 2
    assert elapsed < window + 0.5 < n * LATENCY
    first, last = scheduled[0], scheduled[-1]
    assert last - first + LATENCY - TIMER_SLACK <= result.wall_s < elapsed
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["rate_rps"] == rate and summary["achieved_rps"] == pytest.approx(n / window)
    assert summary["most_in_flight"] == result.most_in_flight and summary["n_requests"] == n
    assert 0 <= summary["send_lag_p50_ms"] <= summary["send_lag_p99_ms"] <= summary["send_lag_max_ms"] < 50
    assert summary["statuses"] == {"200": n} and "latencies_s" not in summary


def test_a_stall_counts_against_the_requests_that_should_have_been_sent() -> None:
    """No coordinated omission: the loop blocks for 0.3 s; the open loop charges every
    request due meanwhile, a closed loop only the few it had in flight."""
    rate, window, seed, stall_at, stall_s, concurrency = 100, 1.0, 3, 0.2, 0.3, 5
    charged = 0.15  # latency that only a request delayed by the stall can reach

    async def stall(at: float, into: dict[str, float]) -> None:
        await asyncio.sleep(at)
        into["from"] = time.perf_counter()
        time.sleep(stall_s)  # noqa: ASYNC251 (on purpose: blocks the generator and the server alike)
        into["to"] = time.perf_counter()

    async def main() -> tuple[OpenLoopResult, float, dict[str, float], LoadResult]:
        async with sleeping_server() as server, new_session() as session:
            open_stall: dict[str, float] = {}
            started = time.perf_counter()
            staller = asyncio.create_task(stall(stall_at, open_stall))
            open_result = await run_open_loop(
                post(server.url), rate_rps=rate, window_s=window, seed=seed, session=session
            )
            await staller
            staller = asyncio.create_task(stall(stall_at, {}))
            closed_result = await run_load(
                post(server.url), concurrency=concurrency, n_requests=10_000, window_s=window, session=session
            )
            await staller
            return open_result, started, open_stall, closed_result

    open_result, started, stalled, closed_result = eventloop.run(main())
    assert open_result.statuses == Counter({200: open_result.n_requests})
    # Requests due while the loop was blocked, at least `charged` before it ended (the run
    # began a little after `started`, so the bounds are shrunk by 10 ms on each side):
    # none could be sent before the stall ended, so each waited at least that long.
    due = [t for t in poisson_offsets(rate, window, seed) if stalled["from"] + 0.01 <= started + t]
    due = [t for t in due if started + t + 0.01 <= stalled["to"] - charged]
    assert len(due) >= 8  # the test itself: the schedule puts enough requests in the stall
    open_charged = sum(1 for latency in open_result.latencies_s if latency >= charged)
    assert open_charged >= len(due)
    assert open_result.p99 >= charged + LATENCY > 3 * LATENCY
    assert max(open_result.send_lag_s) >= charged  # the generator reports that it ran late
    # The closed loop sends nothing while blocked: only the requests in flight at the stall pay for it.
    closed_charged = sum(1 for latency in closed_result.latencies_s if latency >= charged)
    assert 1 <= closed_charged <= concurrency < len(due)
    assert closed_result.p50 < charged <= open_result.p99


def test_requests_still_running_after_the_drain_are_unfinished_not_latencies() -> None:
    window, drain = 0.5, 0.3

    async def main() -> tuple[OpenLoopResult, float]:
        async with sleeping_server(delay_s=30) as server:
            started = time.perf_counter()
            result = await run_open_loop(post(server.url), rate_rps=20, window_s=window, seed=1, drain_s=drain)
            return result, time.perf_counter() - started

    result, elapsed = eventloop.run(main())
    n = result.n_requests
    assert n >= 3 and n == len(poisson_offsets(20, window, 1))
    assert elapsed < window + drain + 1
    assert (result.unfinished, result.completed, result.errors, result.wall_s) == (n, 0, 0, 0.0)
    assert result.latencies_s == [] and not result.statuses
    # Each had waited from its intended time (inside the window) to the end of the drain.
    assert len(result.unfinished_waits_s) == n and all(
        drain <= w < window + drain + 1 for w in result.unfinished_waits_s
    )
    value, lower_bound = result.percentile_bound(99)
    assert lower_bound and value >= drain
    assert result.to_dict()["unfinished"] == n


def test_server_errors_are_counted_by_status() -> None:
    async def main() -> OpenLoopResult:
        async with sleeping_server(delay_s=0.01, status=500) as server:
            return await run_open_loop(post(server.url), rate_rps=50, window_s=0.4, seed=2)

    result = eventloop.run(main())
    n = result.n_requests
    assert n >= 5
    assert result.statuses == Counter({500: n})
    assert (result.completed, result.errors, result.ok, result.achieved_rps) == (n, n, 0, 0.0)


def test_cancelling_the_run_cancels_every_request() -> None:
    async def main() -> tuple[int, set[asyncio.Task[Any]]]:
        # The upstream runs on its own loop, so this loop holds only the generator's tasks;
        # the session is the caller's, so closing it cannot be what stops the requests.
        with upstream_in_thread(latency=0.5) as upstream:
            async with new_session() as session:
                spec = RequestSpec("POST", f"{upstream.base_url}/chat/completions", BODY, {"Authorization": "Bearer t"})
                run = asyncio.create_task(run_open_loop(spec, rate_rps=50, window_s=2, drain_s=5, session=session))
                await asyncio.sleep(0.4)
                during = len(asyncio.all_tasks()) - 2  # the requests in flight, beside main and the run
                run.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await run
                return during, asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    started = time.perf_counter()
    during, left = eventloop.run(main())
    assert during >= 5  # the check below would catch a leak
    assert left == set()
    assert time.perf_counter() - started < 3


def test_a_ramp_sends_at_the_same_rate_but_counts_only_the_window() -> None:
    rate, ramp, window, seed = 100, 0.4, 0.6, 3
    everything = poisson_offsets(rate, ramp + window, seed)
    in_window = [offset for offset in everything if offset >= ramp]

    async def main() -> tuple[OpenLoopResult, Server, list[float], float]:
        opened: list[float] = []
        async with sleeping_server() as server:
            started = time.perf_counter()
            result = await run_open_loop(
                post(server.url),
                rate_rps=rate,
                window_s=window,
                seed=seed,
                ramp_s=ramp,
                on_window=lambda: opened.append(time.perf_counter()),
            )
            return result, server, opened, started

    result, server, opened, started = eventloop.run(main())
    assert sum(server.bodies.values()) == len(everything)  # the ramp's requests were sent
    assert (result.n_requests, result.completed, result.ok) == (len(in_window),) * 3  # and not counted
    assert len(result.send_lag_s) == len(in_window) and result.achieved_rps == pytest.approx(len(in_window) / window)
    assert len(opened) == 1 and ramp - TIMER_SLACK <= opened[0] - started < ramp + 0.05
