"""A closed-loop HTTP load generator, cheap enough not to be the bottleneck.

Exactly `concurrency` workers each send their next request as soon as the previous one
completes, so throughput cannot exceed ``concurrency / latency`` (`ideal_throughput`);
how close a server gets to that ceiling shows how much it adds. One aiohttp session,
keep-alive connections, no connector limit, the body serialized once per run.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import eventloop

__all__ = [
    "DEADLINE",
    "LoadResult",
    "RequestSpec",
    "ideal_throughput",
    "new_session",
    "percentile",
    "run_load",
    "run_load_sync",
]

DEADLINE = "DeadlineExceeded"  # status of a request still in flight when `timeout_s` ran out


@dataclass(frozen=True)
class RequestSpec:
    """The one request every worker sends, again and again."""

    method: str
    url: str
    json: Any | None = None  # serialized once per run, not once per request
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    """What a run measured. Failures count as completed requests with their latency."""

    concurrency: int
    n_requests: int  # requests asked for; `completed` may be fewer after the deadline
    wall_s: float = 0.0  # first send to last completion
    latencies_s: list[float] = field(default_factory=list)  # completion order, failures included
    statuses: Counter[int | str] = field(default_factory=Counter)  # HTTP status or exception class name
    errors: int = 0  # exceptions, HTTP status >= 400, and requests cut by the deadline
    timed_out: bool = False
    unfinished: int = 0  # with a window: requests still in flight when it closed (not in the latencies)
    unfinished_waits_s: list[float] = field(default_factory=list)  # how long each had waited by then

    @property
    def completed(self) -> int:
        """Requests that finished: answered, failed, or cut by the deadline."""
        return len(self.latencies_s)

    @property
    def ok(self) -> int:
        """Requests answered with an HTTP status below 400."""
        return sum(n for k, n in self.statuses.items() if isinstance(k, int) and k < 400)

    @property
    def throughput(self) -> float:
        """Completed requests per second of wall time (0 if nothing completed)."""
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    def ratio_to_ideal(self, latency_s: float) -> float:
        """Throughput as a fraction of the closed-loop ceiling ``concurrency / latency_s``."""
        return self.throughput / ideal_throughput(self.concurrency, latency_s)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100) of the latencies; see `percentile`."""
        return percentile(self.latencies_s, p)

    def percentile_bound(self, p: float) -> tuple[float, bool]:
        """The p-th percentile of every request the run sent, and whether it is only a lower bound.

        `percentile` counts finished requests only. A request still in flight when the
        window closed took at least as long as it had waited: if more of them waited
        longer than the finished requests' percentile than the percentile may leave
        out, that figure describes the lucky few that finished, and the truth is at
        least the percentile with each unfinished request counted at its wait so far.
        """
        finished = self.percentile(p)
        allowed = (1 - p / 100) * (self.completed + len(self.unfinished_waits_s))
        longer = sum(1 for w in self.unfinished_waits_s if not w <= finished)  # all of them if nothing finished
        if longer <= allowed:
            return finished, False
        return percentile(self.latencies_s + self.unfinished_waits_s, p), True

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def to_dict(self, *, include_latencies: bool = False) -> dict[str, Any]:
        """A JSON-serializable summary (NaN becomes None; status keys become strings)."""
        fields = ("concurrency", "n_requests", "completed", "ok", "errors", "timed_out", "unfinished", "wall_s")
        out: dict[str, Any] = {
            **{name: getattr(self, name) for name in fields},
            "throughput_rps": self.throughput,
            **{f"p{p}_s": None if math.isnan(v := self.percentile(p)) else v for p in (50, 95, 99)},
            "max_s": max(self.latencies_s, default=None),
            "statuses": {str(k): n for k, n in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
        }
        if include_latencies:
            out["latencies_s"] = list(self.latencies_s)
        return out


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) of `values` by linear interpolation between the
    closest ranks (numpy's default, ``method="linear"``); NaN when there are none."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    xs = sorted(values)
    if not xs:
        return math.nan
    h = (len(xs) - 1) * p / 100
    lo = int(h)
    return xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


def ideal_throughput(concurrency: int, latency_s: float) -> float:
    """The closed-loop ceiling: each of `concurrency` workers completes one request per `latency_s`."""
    if latency_s <= 0:
        raise ValueError(f"latency_s must be > 0, got {latency_s}")
    return concurrency / latency_s


def new_session() -> aiohttp.ClientSession:
    """The session `run_load` makes when given none; create one yourself (inside a
    coroutine) to keep connections warm across runs: warm up, then measure."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),  # 0: never caps concurrency; keep-alive
        timeout=aiohttp.ClientTimeout(total=None),  # run_load's deadline bounds every request
        cookie_jar=aiohttp.DummyCookieJar(),  # nothing to remember between requests
    )


class _ClosedLoop:
    """One run's state: the workers share the request counter and record into one result."""

    def __init__(
        self,
        spec: RequestSpec,
        result: LoadResult,
        windowed: bool,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.spec, self.result, self.windowed, self.on_progress = spec, result, windowed, on_progress
        self.recording = True  # False during a ramp: completions then are not the steady state
        self.body = None if spec.json is None else json.dumps(spec.json).encode()
        self.headers = dict(spec.headers)
        if self.body is not None and not any(k.lower() == "content-type" for k in self.headers):
            self.headers["Content-Type"] = "application/json"
        self.started = 0
        self.first_send = self.last_done = math.nan

    def record(self, t0: float, status: int | str) -> None:
        if not self.recording:
            return
        self.last_done = time.perf_counter()
        self.result.latencies_s.append(self.last_done - t0)
        self.result.statuses[status] += 1
        if not isinstance(status, int) or status >= 400:
            self.result.errors += 1
        if self.on_progress is not None:
            self.on_progress(self.result.completed, self.result.n_requests)

    async def worker(self, client: aiohttp.ClientSession) -> None:
        while self.started < self.result.n_requests:
            self.started += 1
            t0 = time.perf_counter()
            if math.isnan(self.first_send):
                self.first_send = t0
            status: int | str
            try:
                async with client.request(self.spec.method, self.spec.url, data=self.body, headers=self.headers) as r:
                    await r.read()
                    status = r.status
            except asyncio.CancelledError:
                if not self.recording:
                    raise
                if self.windowed:
                    self.result.unfinished += 1
                    self.result.unfinished_waits_s.append(time.perf_counter() - t0)
                else:
                    self.record(t0, DEADLINE)
                raise
            except Exception as exc:  # the failure is the measurement: count it, keep going
                status = type(exc).__name__
            self.record(t0, status)

    @property
    def wall_s(self) -> float:
        return 0.0 if math.isnan(self.first_send) else self.last_done - self.first_send


def _check_arguments(concurrency: int, n_requests: int, timeout_s: float, window_s: float | None) -> None:
    for name, value in (("concurrency", concurrency), ("n_requests", n_requests)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if window_s is not None and not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")


async def run_load(
    spec: RequestSpec,
    *,
    concurrency: int,
    n_requests: int,
    timeout_s: float = 60.0,
    window_s: float | None = None,
    ramp_s: float = 0.0,
    on_window: Callable[[], None] | None = None,
    session: aiohttp.ClientSession | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Send `n_requests` copies of `spec` from `concurrency` closed-loop workers, reading
    each body in full. At `timeout_s` the workers still running are cancelled and their
    in-flight requests counted as `DEADLINE` errors: a stuck server cannot hang the caller.

    With `window_s`, the run is a measurement window instead: it ends after `window_s`
    (or `n_requests`), and requests still in flight then are counted as `unfinished`,
    neither errors nor latencies. Patterns whose queues would take minutes to drain are
    then compared over the same time. `on_progress(completed, n_requests)` follows each
    completion. A `session` passed in is used as is (warm connections) and left open.

    With `ramp_s` (and a window), the clients run that long before the window opens, and
    nothing completed during the ramp is recorded: the window measures the steady state.
    Started together, the clients would otherwise fill the window's first latency with
    their first calls, which holds fewer completions than the steady state (a bias of
    about half a call per client, large in a short window). The window's throughput is
    then completions over the window's length; `on_window()` is called when it opens
    (to read counters there)."""
    _check_arguments(concurrency, n_requests, timeout_s, window_s)
    if not ramp_s >= 0 or (ramp_s and window_s is None):
        raise ValueError(f"ramp_s must be >= 0, and needs a window_s, got ramp_s={ramp_s!r}")
    result = LoadResult(concurrency=concurrency, n_requests=n_requests)
    run = _ClosedLoop(spec, result, windowed=window_s is not None, on_progress=on_progress)
    run.recording = not ramp_s
    client = session or new_session()
    try:
        tasks = [asyncio.create_task(run.worker(client)) for _ in range(concurrency)]
        try:
            if ramp_s:
                done, pending = await asyncio.wait(tasks, timeout=ramp_s, return_when=asyncio.FIRST_EXCEPTION)
                run.recording, run.first_send = True, time.perf_counter()  # the window's start
            if on_window is not None:
                on_window()
            done, pending = await asyncio.wait(
                tasks, timeout=window_s or timeout_s, return_when=asyncio.FIRST_EXCEPTION
            )
            closed_at = time.perf_counter()
        finally:  # also when run_load itself is cancelled: never leave workers behind
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        result.timed_out = window_s is None and bool(pending) and not any(t.exception() for t in done)
        for task in done:
            if (exc := task.exception()) is not None:  # a bug (e.g. in on_progress), not a failed request
                raise exc
    finally:
        if session is None:
            await client.close()
    # a window that closed with clients still working lasted its whole length, not to its last completion
    result.wall_s = closed_at - run.first_send if ramp_s and pending else run.wall_s
    return result


def run_load_sync(spec: RequestSpec, **kwargs: Any) -> LoadResult:
    """`run_load` for scripts: runs its own event loop (uvloop)."""
    return eventloop.run(run_load(spec, **kwargs))
