"""An open-loop HTTP load generator: requests arrive on a schedule, whatever the server does.

A closed loop (`loadgen.run_load`) sends each worker's next request only when the
previous one has come back, so when the server slows down the arrivals slow down with
it: the queue that real users would have built never forms, and the few slow requests
stand for the many that were never sent. Gil Tene calls this coordinated omission. Here
one scheduler starts each request at its intended time (a seeded Poisson process, as
independent users arrive) and never waits for earlier ones, so a slow server meets a
growing queue and its latency shows it.

Latency is measured from the intended send time, not the actual one: if the generator
or the machine stalls, the requests that should have gone out meanwhile were already
waiting, as a user would have been, and the stall counts against them. `send_lag_s`
records how late the generator itself was; when it is not small, the schedule was not
kept and the figures describe the generator as much as the server.

The two loops answer different questions. The closed loop asks how fast the server can
go at a fixed concurrency (its ceiling is ``concurrency / latency``); the open loop asks
what latency users see at a given arrival rate, and `most_in_flight` is the concurrency
that rate turned out to need. The result is a `LoadResult`, so the same summaries, plots
and `percentile_bound` apply to both.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .loadgen import LoadResult, RequestSpec, new_session, percentile

__all__ = ["MAX_SCHEDULED", "OpenLoopResult", "poisson_offsets", "run_open_loop"]

MAX_SCHEDULED = 10_000_000  # expected requests in one schedule; more is a typo, not a benchmark


def _check_number(name: str, value: float, *, zero_allowed: bool = False) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and (value > 0 or (zero_allowed and value == 0))):
        raise ValueError(f"{name} must be a finite number {'>=' if zero_allowed else '>'} 0, got {value!r}")


def poisson_offsets(rate_rps: float, window_s: float, seed: int) -> list[float]:
    """Intended send times, in seconds from the start, of a Poisson process at `rate_rps`
    over `window_s`: sorted, in ``[0, window_s)``, the same for the same seed.

    Exponential gaps model users who arrive independently of each other and of the
    server; a fixed interval would be a rhythm no real traffic has."""
    _check_number("rate_rps", rate_rps)
    _check_number("window_s", window_s)
    if rate_rps * window_s > MAX_SCHEDULED:
        raise ValueError(
            f"rate_rps * window_s must be at most {MAX_SCHEDULED:,} requests, got {rate_rps!r} * {window_s!r}"
        )
    rng = random.Random(seed)
    offsets: list[float] = []
    t = rng.expovariate(rate_rps)
    while t < window_s:
        offsets.append(t)
        t += rng.expovariate(rate_rps)
    return offsets


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else value * 1000


@dataclass(kw_only=True)
class OpenLoopResult(LoadResult):
    """What an open-loop run measured. `concurrency` is `most_in_flight`, `n_requests`
    the number scheduled; latencies count from each request's intended send time."""

    rate_rps: float  # the arrival rate asked for
    window_s: float  # the sending window
    send_lag_s: list[float] = field(default_factory=list)  # actual minus intended send time, in send order
    most_in_flight: int = 0  # the most requests sent and not yet finished at any moment

    @property
    def achieved_rps(self) -> float:
        """Requests answered below 400 per second of the sending window."""
        return self.ok / self.window_s

    def to_dict(self, *, include_latencies: bool = False) -> dict[str, Any]:
        """`LoadResult.to_dict` plus the rate asked and achieved, the generator's lag and `most_in_flight`."""
        lag = self.send_lag_s
        return {
            **super().to_dict(include_latencies=include_latencies),
            "rate_rps": self.rate_rps,
            "window_s": self.window_s,
            "achieved_rps": self.achieved_rps,
            "send_lag_p50_ms": _ms(percentile(lag, 50)),
            "send_lag_p99_ms": _ms(percentile(lag, 99)),
            "send_lag_max_ms": _ms(max(lag, default=math.nan)),
            "most_in_flight": self.most_in_flight,
        }


class _OpenLoop:
    """One run's state: the request tasks record into one result."""

    def __init__(self, spec: RequestSpec, result: OpenLoopResult) -> None:
        self.spec, self.result = spec, result
        self.body = None if spec.json is None else json.dumps(spec.json).encode()
        self.headers = dict(spec.headers)
        if self.body is not None and not any(k.lower() == "content-type" for k in self.headers):
            self.headers["Content-Type"] = "application/json"
        self.in_flight = 0
        self.last_done = math.nan

    def record(self, intended: float, status: int | str) -> None:
        self.last_done = time.perf_counter()
        self.result.latencies_s.append(self.last_done - intended)
        self.result.statuses[status] += 1
        if not isinstance(status, int) or status >= 400:
            self.result.errors += 1

    async def request(self, client: aiohttp.ClientSession, intended: float, counted: bool = True) -> None:
        if counted:
            self.result.send_lag_s.append(time.perf_counter() - intended)
        self.in_flight += 1
        self.result.most_in_flight = max(self.result.most_in_flight, self.in_flight)
        status: int | str
        try:
            async with client.request(self.spec.method, self.spec.url, data=self.body, headers=self.headers) as r:
                await r.read()
                status = r.status
        except Exception as exc:  # the failure is the measurement: count it
            status = type(exc).__name__
        finally:
            self.in_flight -= 1
        if counted:
            self.record(intended, status)


async def _sleep_until(deadline: float) -> None:
    # A timer may fire up to a millisecond early (uvloop counts whole milliseconds): sleep
    # again rather than send before the intended time. Always yield once, so that a
    # generator running behind schedule still lets the requests it started proceed.
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    while (left := deadline - time.perf_counter()) > 0:  # noqa: ASYNC110 (waiting for a time, not an event)
        await asyncio.sleep(left)


async def run_open_loop(
    spec: RequestSpec,
    *,
    rate_rps: float,
    window_s: float,
    seed: int = 0,
    drain_s: float = 10.0,
    ramp_s: float = 0.0,
    on_window: Callable[[], None] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> OpenLoopResult:
    """Send `spec` at the times of `poisson_offsets(rate_rps, window_s, seed)`, each in a
    task of its own, reading each body in full; latencies count from the intended times.

    After the window, the requests still in flight get up to `drain_s` to finish; those
    still running then are cancelled and counted as `unfinished` with their waits since
    their intended times, neither errors nor latencies (as `run_load` with a window).
    A `session` passed in is used as is (warm connections) and left open. Cancelling
    this coroutine cancels every request it started.

    With `ramp_s`, the arrivals start that long before the window, at the same rate, and
    nothing sent during the ramp is counted: the window opens on a service already under
    load, its connections open. `on_window()` is called when the window opens."""
    _check_number("ramp_s", ramp_s, zero_allowed=True)
    offsets = poisson_offsets(rate_rps, ramp_s + window_s, seed)
    _check_number("drain_s", drain_s, zero_allowed=True)
    counted = [offset for offset in offsets if offset >= ramp_s]
    result = OpenLoopResult(concurrency=0, n_requests=len(counted), rate_rps=rate_rps, window_s=window_s)
    run = _OpenLoop(spec, result)
    intended_of: dict[asyncio.Task[None], float] = {}
    window_of: set[asyncio.Task[None]] = set()  # the requests sent in the window
    client = session or new_session()
    try:
        start = time.perf_counter()
        opened = False
        try:
            for offset in offsets:
                intended = start + offset
                if not opened and offset >= ramp_s:
                    await _sleep_until(start + ramp_s)
                    opened = True
                    if on_window is not None:
                        on_window()
                await _sleep_until(intended)
                task = asyncio.create_task(run.request(client, intended, counted=opened))
                intended_of[task] = intended
                if opened:
                    window_of.add(task)
                task.add_done_callback(intended_of.pop)  # keep only the unfinished ones
            if not opened and on_window is not None:  # a window no arrival fell in
                on_window()
            if in_window := window_of & set(intended_of):
                drain_end = start + ramp_s + window_s + drain_s
                _, still = await asyncio.wait(in_window, timeout=max(0.0, drain_end - time.perf_counter()))
                closed = time.perf_counter()
                for task in still:
                    result.unfinished += 1
                    result.unfinished_waits_s.append(closed - intended_of[task])
        finally:  # also when this coroutine is cancelled: never leave requests behind
            tasks = list(intended_of)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if session is None:
            await client.close()
    result.concurrency = result.most_in_flight
    result.wall_s = 0.0 if math.isnan(run.last_done) else run.last_done - (start + counted[0])
    return result
