"""The procedure: one upstream process, then each pattern's service in turn, same load.

For each pattern and concurrency level: reset the service's counters, clear the
upstream's journal, run the closed-loop load, then read the service's loop lag and peak
RSS and count the requests the upstream received. The upstream alone runs first, under
the same load, as the ceiling every ratio is taken against.
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import eventloop
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


@dataclass
class Row:
    pattern: str
    title: str
    workers: int
    concurrency: int
    load: LoadResult
    upstream_requests: int  # what the upstream received during the level: sent, and billed
    lag_ms: dict[str, float] = field(default_factory=dict)  # the service's event loop (worst worker)
    peak_rss_mib: float = math.nan
    service_cpu_ms: float = math.nan  # CPU per completed request: the service's processes
    upstream_cpu_ms: float = math.nan  # and the upstream's
    unresponsive: bool = False  # after the window, the service could not answer its stats route in time
    cpu_stall_pct: float = math.nan  # share of the window some task on the machine waited for a CPU (Linux PSI)

    def to_dict(self, latency_s: float, ceiling: LoadResult | None) -> dict[str, Any]:
        load = self.load
        added = {f"added_p{p}_ms": (load.percentile(p) - latency_s) * 1000 for p in (50, 95, 99)}
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


class _Control:
    """The service's and the upstream's counters, reached over HTTP."""

    def __init__(self, session: aiohttp.ClientSession, upstream_url: str, upstream_pid: int) -> None:
        self.session = session
        self.upstream_pid = upstream_pid
        self.journal_url = upstream_url.removesuffix("/v1") + "/_upstream/journal"

    async def clear_journal(self) -> None:
        async with self.session.delete(self.journal_url) as response:
            response.raise_for_status()

    async def upstream_requests(self) -> int:
        async with self.session.get(self.journal_url) as response:
            return len((await response.json())["entries"])

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
    cpu_before = (service.cpu_seconds() if service else math.nan, cpu_seconds(control.upstream_pid))
    stall_before, started = cpu_stall_seconds(), time.perf_counter()
    load = await run_load(
        spec, concurrency=concurrency, n_requests=n_requests, window_s=config.window_s, session=session
    )
    cpu_used = (service.cpu_seconds() if service else math.nan, cpu_seconds(control.upstream_pid))
    stall_pct = 100 * (cpu_stall_seconds() - stall_before) / (time.perf_counter() - started)
    await asyncio.sleep(0.2)  # let calls cut by the window reach the upstream's journal
    row = Row(pattern.name, pattern.title, pattern.workers, concurrency, load, await control.upstream_requests())
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
    pattern: Pattern, upstream_url: str, config: Config, control: _Control, report: Callable[[str], None]
) -> list[Row]:
    rows: list[Row] = []
    service: Service | None = None
    try:
        for concurrency in config.levels:
            started = time.perf_counter()
            if pattern.app is not None and service is None:
                service = start_service(pattern, upstream_url)
            if service is None:  # the upstream alone
                target_url, headers = upstream_url + "/chat/completions", {"Authorization": f"Bearer {UPSTREAM_KEY}"}
                body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
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

    def ceiling(self, concurrency: int) -> LoadResult | None:
        return next((r.load for r in self.rows if r.pattern == "upstream" and r.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.__dict__,
            "rows": [r.to_dict(self.config.latency_s, self.ceiling(r.concurrency)) for r in self.rows],
            "streams": None if self.streams is None else self.streams.to_dict(),
            "transports": None if self.transports is None else self.transports.to_dict(),
            "elapsed_s": self.elapsed_s,
        }


async def _run(config: Config, report: Callable[[str], None]) -> BenchResult:
    started = time.perf_counter()
    upstream = start_upstream(
        latency_s=config.latency_s, ttft_s=config.stream_ttft_s, chunk_delay_s=config.stream_chunk_delay_s
    )
    upstream_url = upstream.base_url
    rows: list[Row] = []
    streams, transports = None, None
    try:
        async with new_session() as session:
            control = _Control(session, upstream_url, upstream.pid)
            order = ["upstream"] + [name for name in config.patterns if name != "upstream"]
            for name in order:
                rows += await run_pattern(PATTERNS[name], upstream_url, config, control, report)
            if config.transport_rounds:
                transports = await compare_transports(upstream_url, rounds=config.transport_rounds)
                report(
                    f"transports       CPU per SDK call, median of {config.transport_rounds} rounds: "
                    f"httpx {transports.median_ms('httpx'):.2f} ms, aiohttp {transports.median_ms('aiohttp'):.2f} ms"
                )
            if config.streams:
                streams = await _streams(config, session)
                report(f"streams          {streams.summary()}")
    finally:
        upstream.stop()
    return BenchResult(config, rows, streams, transports, time.perf_counter() - started)


async def _streams(config: Config, session: aiohttp.ClientSession) -> StreamsResult:
    """The hardened service holding `config.streams` streams, on an upstream with long replies."""
    upstream = start_upstream(
        latency_s=config.latency_s,
        ttft_s=config.stream_ttft_s,
        chunk_delay_s=config.stream_chunk_delay_s,
        extra_args=("--reply-tokens", str(config.stream_tokens)),
    )
    try:
        service = start_service(PATTERNS["hardened"], upstream.base_url)
        try:
            return await hold_streams(service, config.streams, control_session=session)
        finally:
            service.stop()
    finally:
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
