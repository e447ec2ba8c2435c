"""The procedure: one upstream process, then each pattern's service in turn, same load.

For each pattern and concurrency level: reset the service's counters, clear the
upstream's journal, run the closed-loop load, then read the service's loop lag and peak
RSS and count the requests the upstream received. The upstream alone runs first, under
the same load, as the ceiling every ratio is taken against.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..bench_upstream import start_upstream, stop_upstream
from ..loadgen import LoadResult, RequestSpec, ideal_throughput, new_session, run_load
from .patterns import PATTERNS, Pattern
from .services import Service, start_service
from .streams import StreamsResult, hold_streams

UPSTREAM_KEY = "bench-upstream-key"  # the bundled upstream accepts any key unless told one


@dataclass
class Config:
    latency_s: float = 0.5
    levels: list[int] = field(default_factory=lambda: [10, 100])
    rounds: int = 4  # requests per level = rounds x concurrency (at least 20)
    patterns: list[str] = field(default_factory=lambda: list(PATTERNS))
    serial_budget_s: float = 6.0  # time allowed to a pattern that serializes (it would take N x latency)
    streams: int = 1000  # concurrent streams held open on the hardened service (0: skip)
    stream_ttft_s: float = 0.2
    stream_chunk_delay_s: float = 0.05
    stream_tokens: int = 100


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

    def to_dict(self, latency_s: float, ceiling: LoadResult | None) -> dict[str, Any]:
        load = self.load
        added = {f"added_p{p}_ms": (load.percentile(p) - latency_s) * 1000 for p in (50, 95, 99)}
        return {
            "pattern": self.pattern, "title": self.title, "workers": self.workers, "concurrency": self.concurrency,
            **load.to_dict(),
            "ok_throughput_rps": load.ok / load.wall_s if load.wall_s else 0.0,
            "ideal_rps": ideal_throughput(self.concurrency, latency_s),
            **added,
            "upstream_requests": self.upstream_requests,
            "lag_ms": self.lag_ms,
            "peak_rss_mib": self.peak_rss_mib,
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

    def __init__(self, session: aiohttp.ClientSession, upstream_url: str) -> None:
        self.session = session
        self.journal_url = upstream_url.removesuffix("/v1") + "/_upstream/journal"

    async def clear_journal(self) -> None:
        async with self.session.delete(self.journal_url) as response:
            response.raise_for_status()

    async def upstream_requests(self) -> int:
        async with self.session.get(self.journal_url) as response:
            return len((await response.json())["entries"])

    async def each_worker(self, service: Service, method: str, path: str) -> list[dict[str, Any]]:
        """Call `path` once on every worker: each call is a new connection, accepted by whichever
        worker is free, so keep calling until every worker has answered."""
        wanted, answers = set(service.pids()), {}
        for _ in range(200):
            async with self.session.request(method, service.base_url + path, headers={"Connection": "close"}) as r:
                stats = await r.json()
            answers[stats["pid"]] = stats
            if wanted <= set(answers):
                break
        return list(answers.values())


async def run_level(pattern: Pattern, target_url: str, concurrency: int, config: Config, control: _Control,
                    service: Service | None, session: aiohttp.ClientSession) -> Row:
    spec = RequestSpec("POST", target_url, json=pattern.body, headers=pattern.headers)
    n_requests = max(20, config.rounds * concurrency)
    budget = config.serial_budget_s if pattern.serializes else max(60.0, 20 * n_requests * config.latency_s / concurrency)
    if service is not None:
        await control.each_worker(service, "POST", "/_bench/reset")
        service.reset_peak_rss()
    await control.clear_journal()
    load = await run_load(spec, concurrency=concurrency, n_requests=n_requests, timeout_s=budget, session=session)
    await asyncio.sleep(0.2)  # let calls cut by the budget reach the upstream's journal
    row = Row(pattern.name, pattern.title, pattern.workers, concurrency, load, await control.upstream_requests())
    if service is not None:
        stats = await control.each_worker(service, "GET", "/_bench/stats")
        row.lag_ms = {key: max(s["lag_ms"][key] for s in stats) for key in ("p50", "p99", "max")}
        row.peak_rss_mib = service.peak_rss_mib()
    return row


async def run_pattern(pattern: Pattern, upstream_url: str, config: Config, control: _Control,
                      report: Callable[[str], None]) -> list[Row]:
    service = None if pattern.app is None else start_service(pattern, upstream_url)
    headers = pattern.headers if service is not None else {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    target_url = service.base_url + pattern.path if service else upstream_url + "/chat/completions"
    body = pattern.body if service else {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    pattern_for_load = Pattern(pattern.name, pattern.title, pattern.app, pattern.path, body, headers,
                               pattern.workers, pattern.env, pattern.serializes)
    rows = []
    try:
        async with new_session() as session:
            warm = RequestSpec("POST", target_url, json=body, headers=headers)
            await run_load(warm, concurrency=min(10, max(config.levels)), n_requests=2 if pattern.serializes else 20,
                           timeout_s=config.serial_budget_s, session=session)
            for concurrency in config.levels:
                started = time.perf_counter()
                row = await run_level(pattern_for_load, target_url, concurrency, config, control, service, session)
                rows.append(row)
                report(f"{pattern.name:16} C={concurrency:<5} {row.load.ok / row.load.wall_s if row.load.wall_s else 0:8.1f} "
                       f"ok/s  p99 {row.load.p99 * 1000:7.0f} ms  errors {row.load.errors:4}  "
                       f"lag p99 {row.lag_ms.get('p99', math.nan):7.1f} ms  ({time.perf_counter() - started:.1f} s)")
    finally:
        if service is not None:
            service.stop()
    return rows


@dataclass
class BenchResult:
    config: Config
    rows: list[Row]
    streams: StreamsResult | None
    elapsed_s: float

    def ceiling(self, concurrency: int) -> LoadResult | None:
        return next((r.load for r in self.rows if r.pattern == "upstream" and r.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.__dict__,
            "rows": [r.to_dict(self.config.latency_s, self.ceiling(r.concurrency)) for r in self.rows],
            "streams": None if self.streams is None else self.streams.to_dict(),
            "elapsed_s": self.elapsed_s,
        }


async def _run(config: Config, report: Callable[[str], None]) -> BenchResult:
    started = time.perf_counter()
    args = argparse.Namespace(latency=config.latency_s, ttft=config.stream_ttft_s,
                              chunk_delay=config.stream_chunk_delay_s, log_level="warning")
    upstream, upstream_url = start_upstream(args)
    rows: list[Row] = []
    streams = None
    try:
        async with new_session() as session:
            control = _Control(session, upstream_url)
            order = ["upstream"] + [name for name in config.patterns if name != "upstream"]
            for name in order:
                rows += await run_pattern(PATTERNS[name], upstream_url, config, control, report)
            if config.streams:
                streams = await _streams(config, args, session)
                report(f"streams          {streams.summary()}")
    finally:
        stop_upstream(upstream)
    return BenchResult(config, rows, streams, time.perf_counter() - started)


async def _streams(config: Config, args: argparse.Namespace, session: aiohttp.ClientSession) -> StreamsResult:
    """The hardened service holding `config.streams` streams, on an upstream with long replies."""
    upstream, upstream_url = start_upstream(args, extra_args=("--reply-tokens", str(config.stream_tokens)))
    try:
        service = start_service(PATTERNS["hardened"], upstream_url)
        try:
            return await hold_streams(service, config.streams, control_session=session)
        finally:
            service.stop()
    finally:
        stop_upstream(upstream)


def _allow_many_sockets() -> None:
    """Raise this process's open-file limit to the hard limit; the processes it starts inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_benchmark(config: Config, report: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> BenchResult:
    """Run the whole benchmark on its own event loop (uvloop when installed)."""
    _allow_many_sockets()
    try:
        from uvloop import new_event_loop as loop_factory
    except ImportError:
        loop_factory = None  # type: ignore[assignment]
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_run(config, report))
