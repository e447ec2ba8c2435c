"""The procedure: one upstream process, then each pattern's service in turn, same load.

For each pattern and concurrency level: reset the service's counters, clear the
upstream's journal, run the closed-loop load, then read the service's loop lag and peak
RSS and, from the journal, the calls the upstream received and how many were open at
once. The upstream alone runs first, under the same load, as the ceiling every ratio is
taken against.

With ``Config.upstream_url`` the upstream is a server that is already running (any
OpenAI-compatible one, its key in the variable ``Config.upstream_key_env``): the services
call it, the upstream-alone rows measure it, and the ratios and added latencies are
taken against its latency as measured at the start. Such a server keeps no journal the
benchmark may rely on, so its rows have no upstream counts and no upstream CPU.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import eventloop
from .errors import BenchError
from .loadgen import LoadResult, RequestSpec, ideal_throughput, new_session, run_load
from .patterns import PATTERNS, Pattern
from .processes import start_upstream
from .procfs import cpu_seconds, cpu_stall_seconds
from .services import Service, start_service
from .streams import StreamsResult, hold_streams
from .transport import TransportComparison, compare_transports

UPSTREAM_KEY = "bench-upstream-key"  # the bundled upstream accepts any key unless told one


@dataclass
class Config:
    latency_s: float = 0.5
    levels: list[int] = field(default_factory=lambda: [10, 100])
    window_s: float = 3.0  # each level is measured over this window, every pattern over the same time
    patterns: list[str] = field(default_factory=lambda: list(PATTERNS))
    streams: int = 1000  # concurrent streams held open on the hardened service (0: skip)
    stream_ttft_s: float = 0.5
    stream_chunk_delay_s: float = 0.5  # slow on purpose: the test is about holding connections
    stream_tokens: int = 16
    transport_rounds: int = 5  # rounds of the side-by-side transport comparison (0: skip)
    transport_calls: int = 200  # calls per transport and round
    transport_concurrency: int = 50  # of those, in flight at once (also the pool size whose checks are counted)
    model: str = "gpt-4o-mini"  # what every service and the upstream-alone rows ask for
    upstream_url: str | None = None  # None: start the bundled upstream; else a running server (ends in /v1)
    upstream_key_env: str | None = None  # with upstream_url: the NAME of the variable holding its key


@dataclass
class Row:
    pattern: str
    title: str
    workers: int
    concurrency: int
    load: LoadResult
    upstream_requests: int | None  # what the upstream received during the level (None: no journal)
    lag_ms: dict[str, float] = field(default_factory=dict)  # the service's event loop (worst worker)
    peak_rss_mib: float = math.nan
    service_cpu_ms: float = math.nan  # CPU per completed request: the service's processes
    upstream_cpu_ms: float = math.nan  # and the upstream's
    unresponsive: bool = False  # after the window, the service could not answer its stats route in time
    cpu_stall_pct: float = math.nan  # share of the window some task on the machine waited for a CPU (Linux PSI)
    upstream_peak: int | None = None  # the most calls open at the upstream at one instant (None: no journal)

    def to_dict(self, latency_s: float, ceiling: LoadResult | None) -> dict[str, Any]:
        load = self.load
        # The latencies include failed requests; with no answer at all they would describe
        # only how fast the service fails (even below the upstream's latency), so none is given.
        # A percentile the window's unfinished requests may exceed is a lower bound (see
        # `LoadResult.percentile_bound`) and says so.
        added: dict[str, Any] = {}
        for p in (50, 95, 99):
            value, lower_bound = load.percentile_bound(p)
            added[f"added_p{p}_ms"] = (value - latency_s) * 1000 if load.ok else math.nan
            added[f"added_p{p}_at_least"] = lower_bound and bool(load.ok)
        return {
            "pattern": self.pattern,
            "title": self.title,
            "workers": self.workers,
            "concurrency": self.concurrency,
            **load.to_dict(),
            "ok_throughput_rps": load.ok / load.wall_s if load.wall_s else 0.0,
            "ideal_rps": ideal_throughput(self.concurrency, latency_s),
            **added,
            "upstream_requests": self.upstream_requests,
            "upstream_peak_in_flight": self.upstream_peak,
            "lag_ms": self.lag_ms,
            "unresponsive": self.unresponsive,
            "cpu_stall_pct": self.cpu_stall_pct,
            "peak_rss_mib": self.peak_rss_mib,
            "service_cpu_ms": self.service_cpu_ms,
            "upstream_cpu_ms": self.upstream_cpu_ms,
            "vs_upstream": _ratios(self, ceiling),
        }


def _ratios(row: Row, ceiling: LoadResult | None) -> dict[str, float | None]:
    if ceiling is None or not ceiling.throughput:
        return {}
    ok_rps = row.load.ok / row.load.wall_s if row.load.wall_s else 0.0
    return {
        "throughput": ok_rps / ceiling.throughput,
        "p50": row.load.p50 / ceiling.p50 if ceiling.p50 else None,
        "p99": row.load.p99 / ceiling.p99 if ceiling.p99 else None,
    }


# --- what the upstream saw: the bundled upstream's journal -----------------------------
# It records when each call was received and when its answer was complete. The most calls
# open at one instant, *peak in flight*, is a structural fact about a pattern, not a timing:
# the silent blocker holds one call at a time whatever the load, asyncio.to_thread at most
# its executor's threads, a def route at most AnyIO's tokens, AsyncOpenAI as many as callers.


def peak_in_flight(intervals: Iterable[tuple[float, float | None]]) -> int:
    """The most intervals open at one instant; an interval ``(start, None)`` is still open.

    Intervals are half-open, ``[start, end)``: a call that ends at the instant another
    begins did not overlap it.
    """
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((math.inf if end is None else end, -1))
    events.sort()  # at equal times -1 sorts before +1: an end frees its place first
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


@dataclass(frozen=True)
class UpstreamView:
    requests: int  # calls the upstream received: sent, and billed, whatever became of the answer
    peak_in_flight: int  # the most calls open at the upstream at one instant


def view_of_journal(entries: Iterable[Mapping[str, Any]], *, endpoint: str | None = None) -> UpstreamView:
    """Count and peak in flight of journal entries (``received_at``, ``finished_at``), of one endpoint or all."""
    mine = [e for e in entries if endpoint is None or e.get("endpoint") == endpoint]
    return UpstreamView(len(mine), peak_in_flight((e["received_at"], e.get("finished_at")) for e in mine))


class _Control:
    """The service's and the upstream's counters, reached over HTTP; without a bundled
    upstream (`upstream_pid` None) there is no journal and no upstream CPU to read."""

    def __init__(self, session: aiohttp.ClientSession, upstream_url: str, upstream_pid: int | None) -> None:
        self.session = session
        self.upstream_pid = upstream_pid
        self.journal_url = upstream_url.removesuffix("/v1") + "/_upstream/journal" if upstream_pid else None

    async def clear_journal(self) -> None:
        if self.journal_url is not None:
            async with self.session.delete(self.journal_url) as response:
                response.raise_for_status()

    async def upstream_view(self) -> UpstreamView | None:
        if self.journal_url is None:
            return None
        async with self.session.get(self.journal_url) as response:
            return view_of_journal((await response.json())["entries"])

    def upstream_cpu_seconds(self) -> float:
        return math.nan if self.upstream_pid is None else cpu_seconds(self.upstream_pid)

    async def each_worker(
        self, service: Service, method: str, path: str, timeout_s: float = 3.0
    ) -> list[dict[str, Any]]:
        """Call `path` once on every worker: each call is a new connection, accepted by whichever
        worker is free, so keep calling until every worker has answered. Raises TimeoutError
        when a worker's loop is too busy to answer within `timeout_s`."""
        wanted, answers = set(service.pids()), {}
        async with asyncio.timeout(timeout_s):
            for _ in range(200):
                async with self.session.request(method, service.base_url + path, headers={"Connection": "close"}) as r:
                    stats = await r.json()
                answers[stats["pid"]] = stats
                if wanted <= set(answers):
                    break
        return list(answers.values())


async def run_level(
    pattern: Pattern,
    target_url: str,
    concurrency: int,
    config: Config,
    control: _Control,
    service: Service | None,
    session: aiohttp.ClientSession,
) -> Row:
    spec = RequestSpec("POST", target_url, json=pattern.body, headers=pattern.headers)
    n_requests = 100 * concurrency  # a cap the window ends first
    if service is not None:
        # before measuring, a blocked loop may still owe the warm-up its answers: wait for them
        await control.each_worker(service, "POST", "/_bench/reset", timeout_s=60)
        service.reset_peak_rss()
    await control.clear_journal()
    cpu_before = (service.cpu_seconds() if service else math.nan, control.upstream_cpu_seconds())
    stall_before, started = cpu_stall_seconds(), time.perf_counter()
    load = await run_load(
        spec, concurrency=concurrency, n_requests=n_requests, window_s=config.window_s, session=session
    )
    cpu_used = (service.cpu_seconds() if service else math.nan, control.upstream_cpu_seconds())
    stall_pct = 100 * (cpu_stall_seconds() - stall_before) / (time.perf_counter() - started)
    await asyncio.sleep(0.2)  # let calls cut by the window reach the upstream's journal
    seen = await control.upstream_view()
    row = Row(pattern.name, pattern.title, pattern.workers, concurrency, load, seen.requests if seen else None)
    row.upstream_peak = seen.peak_in_flight if seen else None
    per_request = 1000 / max(1, load.completed)
    row.service_cpu_ms = (cpu_used[0] - cpu_before[0]) * per_request
    row.upstream_cpu_ms = (cpu_used[1] - cpu_before[1]) * per_request
    row.cpu_stall_pct = stall_pct
    if service is not None:
        row.peak_rss_mib = service.peak_rss_mib()
        try:
            stats = await control.each_worker(service, "GET", "/_bench/stats")
            row.lag_ms = {key: max(s["lag_ms"][key] for s in stats) for key in ("p50", "p99", "max")}
        except TimeoutError:  # still working through a backlog the clients have left: a blocked loop
            row.unresponsive = True
    return row


async def run_pattern(
    pattern: Pattern,
    upstream_url: str,
    config: Config,
    control: _Control,
    report: Callable[[str], None],
    upstream_key: str = UPSTREAM_KEY,
) -> list[Row]:
    rows: list[Row] = []
    service: Service | None = None
    try:
        for concurrency in config.levels:
            started = time.perf_counter()
            if pattern.app is not None and service is None:
                service = start_service(pattern, upstream_url, api_key=upstream_key, model=config.model)
            if service is None:  # the upstream alone
                target_url, headers = upstream_url + "/chat/completions", {"Authorization": f"Bearer {upstream_key}"}
                body: dict[str, Any] = _plain_call(config.model)
            else:
                target_url, headers, body = service.base_url + pattern.path, pattern.headers, pattern.body
            loaded = Pattern(
                pattern.name, pattern.title, pattern.app, pattern.path, body, headers, pattern.workers, pattern.env
            )
            async with new_session() as session:
                warm = RequestSpec("POST", target_url, json=body, headers=headers)
                # a few calls pay the first-call costs; more would only leave a blocked loop a backlog
                await run_load(warm, concurrency=min(4, concurrency), n_requests=8, window_s=1.0, session=session)
                row = await run_level(loaded, target_url, concurrency, config, control, service, session)
            rows.append(row)
            if row.unresponsive and service is not None:  # its backlog would skew the next level: restart
                service.stop()
                service = None
            lag = "unresponsive" if row.unresponsive else f"{row.lag_ms.get('p99', math.nan):7.1f} ms"
            report(
                f"{pattern.name:16} C={concurrency:<5} {row.load.ok / row.load.wall_s if row.load.wall_s else 0:8.1f} "
                f"ok/s  p99 {row.load.p99 * 1000:7.0f} ms  errors {row.load.errors:4}  "
                f"unfinished {row.load.unfinished:4}  lag p99 {lag}  ({time.perf_counter() - started:.1f} s)"
            )
    finally:
        if service is not None:
            service.stop()
    return rows


@dataclass
class BenchResult:
    config: Config
    rows: list[Row]
    streams: StreamsResult | None
    transports: TransportComparison | None
    elapsed_s: float
    measured_latency_s: float = math.nan  # median of plain calls, one at a time, before the patterns ran

    @property
    def bundled(self) -> bool:
        """True when the benchmark started the bundled upstream (a journal, a known latency)."""
        return self.config.upstream_url is None

    @property
    def latency_s(self) -> float:
        """The upstream's latency the ratios and added latencies are taken against: the
        bundled upstream's setting, or the running server's as measured."""
        return self.config.latency_s if self.bundled else self.measured_latency_s

    def ceiling(self, concurrency: int) -> LoadResult | None:
        return next((r.load for r in self.rows if r.pattern == "upstream" and r.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.__dict__,
            "upstream": {"bundled": self.bundled, "latency_s": self.latency_s, "measured_s": self.measured_latency_s},
            "rows": [r.to_dict(self.latency_s, self.ceiling(r.concurrency)) for r in self.rows],
            "streams": None if self.streams is None else self.streams.to_dict(),
            "transports": None if self.transports is None else self.transports.to_dict(),
            "elapsed_s": self.elapsed_s,
        }


def _plain_call(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _upstream_key(config: Config) -> str:
    if config.upstream_url is None:
        return UPSTREAM_KEY
    if not config.upstream_key_env or not (key := os.environ.get(config.upstream_key_env, "").strip()):
        raise BenchError(f"the upstream's key must be in ${config.upstream_key_env}, which is missing or empty")
    return key


def _bundled_models(model: str) -> tuple[str, ...]:
    """``--models`` for a bundled upstream that serves `model`, the one every call asks for."""
    return ("--models", model)


async def measure_latency(
    session: aiohttp.ClientSession, upstream_url: str, key: str, model: str, calls: int = 5
) -> float:
    """The median time of `calls` plain chat completions, one at a time (after one that opens the connection)."""
    spec = RequestSpec(
        "POST", upstream_url + "/chat/completions", json=_plain_call(model), headers={"Authorization": f"Bearer {key}"}
    )
    load = await run_load(spec, concurrency=1, n_requests=calls + 1, session=session)
    if load.errors:
        raise BenchError(f"the upstream at {upstream_url} answered {dict(load.statuses)} to plain calls")
    return statistics.median(load.latencies_s[1:])


async def _run(config: Config, report: Callable[[str], None]) -> BenchResult:
    started = time.perf_counter()
    key = _upstream_key(config)
    upstream = None
    if config.upstream_url is None:
        upstream = start_upstream(
            latency_s=config.latency_s,
            ttft_s=config.stream_ttft_s,
            chunk_delay_s=config.stream_chunk_delay_s,
            extra_args=_bundled_models(config.model),
        )
    upstream_url = upstream.base_url if upstream is not None else str(config.upstream_url)
    rows: list[Row] = []
    streams, transports = None, None
    try:
        async with new_session() as session:
            measured = await measure_latency(session, upstream_url, key, config.model)
            report(
                f"upstream         {'bundled' if upstream else upstream_url}: {measured * 1000:.0f} ms per plain call"
            )
            control = _Control(session, upstream_url, upstream.pid if upstream is not None else None)
            order = ["upstream"] + [name for name in config.patterns if name != "upstream"]
            for name in order:
                rows += await run_pattern(PATTERNS[name], upstream_url, config, control, report, key)
            if config.transport_rounds:
                transports = await compare_transports(
                    upstream_url,
                    rounds=config.transport_rounds,
                    calls=config.transport_calls,
                    concurrency=config.transport_concurrency,
                    api_key=key,
                    model=config.model,
                )
                report(
                    f"transports       CPU per SDK call, median of {config.transport_rounds} rounds: "
                    f"httpx {transports.median_ms('httpx'):.2f} ms, aiohttp {transports.median_ms('aiohttp'):.2f} ms"
                )
            if config.streams:
                streams = await _streams(config, session, key)
                report(f"streams          {streams.summary()}")
    finally:
        if upstream is not None:
            upstream.stop()
    return BenchResult(config, rows, streams, transports, time.perf_counter() - started, measured)


async def _streams(config: Config, session: aiohttp.ClientSession, key: str) -> StreamsResult:
    """The hardened service holding `config.streams` streams: on a bundled upstream of its own with
    long replies, or on the running server (`config.upstream_url`), whose replies are what they are."""
    upstream = None
    if config.upstream_url is None:
        upstream = start_upstream(
            latency_s=config.latency_s,
            ttft_s=config.stream_ttft_s,
            chunk_delay_s=config.stream_chunk_delay_s,
            extra_args=("--reply-tokens", str(config.stream_tokens), *_bundled_models(config.model)),
        )
    try:
        upstream_url = upstream.base_url if upstream is not None else str(config.upstream_url)
        service = start_service(PATTERNS["hardened"], upstream_url, api_key=key, model=config.model)
        try:
            return await hold_streams(service, config.streams, control_session=session)
        finally:
            service.stop()
    finally:
        if upstream is not None:
            upstream.stop()


def _allow_many_sockets() -> None:
    """Raise this process's open-file limit to the hard limit; the processes it starts inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_benchmark(
    config: Config, report: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
) -> BenchResult:
    """Run the whole benchmark on its own event loop (uvloop)."""
    _allow_many_sockets()
    return eventloop.run(_run(config, report))
