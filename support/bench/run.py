"""The procedure: one upstream process, then each pattern's service in turn, same load, in rounds.

Every pattern is measured in `Config.rounds` rounds, interleaved round-robin: round 1
runs the upstream alone and then every pattern, round 2 does it again, and so on, so that
drift on the machine (another process waking up, a throttled core) hits every pattern
alike. Each round's rows are compared with the upstream alone *of the same round*; the
report gives the median over rounds and the spread (`support.bench.summary`).

For each pattern, round and level: start the service (pinned to a core of its own when
the machine has two or more, see `affinity`), reset its counters, clear the upstream's
journal, run the load (a ramp, then the window), then read the service's loop lag and peak RSS, from the
journal the calls the upstream received and how many were open at once, and from /proc
how busy the machine was meanwhile (`machine`: a *contended* window is one no conclusion
may rest on). The load is a closed loop of `C` clients at each of `Config.levels`, then
an open loop of Poisson arrivals at `Config.open_rate_rps` (`openloop`), whose latencies
run from each request's intended send time. The upstream alone runs the open loop only when
it is not the bundled one: with the journal, each row's added latency is taken over the
upstream's own time on that row's calls, and anything that keeps up achieves the rate.

The bundled upstream draws its latencies from a seeded lognormal (median
`Config.latency_s`, 99th percentile `Config.latency_p99_s`): with one constant latency a
closed loop's clients move in lockstep and every percentile measures their burst.

With ``Config.upstream_url`` the upstream is a server that is already running (any
OpenAI-compatible one, its key in the variable ``Config.upstream_key_env``): the services
call it, the upstream-alone rows measure it, and added latencies are taken against those
rows. Such a server keeps no journal the benchmark may rely on, so its rows have no
upstream counts and no upstream CPU.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from . import affinity, eventloop, machine
from .config import CLOSED, OPEN, Config
from .errors import BenchError
from .hey import hey_path, run_hey
from .loadgen import LoadResult, RequestSpec, new_session, run_load
from .openloop import run_open_loop
from .patterns import PATTERNS, Pattern
from .processes import start_upstream
from .procfs import cpu_seconds
from .results import BenchResult, CrossCheck, Row, UpstreamView, view_of_journal
from .services import Service, start_service
from .streams import StreamsResult, hold_streams
from .transport import compare_transports

UPSTREAM_KEY = "bench-upstream-key"  # the bundled upstream accepts any key unless told one


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

    async def upstream_view(self, since: float) -> UpstreamView | None:
        if self.journal_url is None:
            return None
        async with self.session.get(self.journal_url) as response:
            return view_of_journal((await response.json())["entries"], since=since)

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


@dataclass(frozen=True)
class Target:
    """Where one pattern's requests go in one round, and who serves them."""

    pattern: Pattern  # with the path, body and headers actually sent
    url: str
    service: Service | None  # None: the upstream alone
    round: int

    def spec(self) -> RequestSpec:
        return RequestSpec("POST", self.url, json=self.pattern.body, headers=self.pattern.headers)


async def run_level(
    target: Target,
    level: tuple[str, float],
    config: Config,
    control: _Control,
    session: aiohttp.ClientSession,
) -> Row:
    """One window of load on `target`: a closed loop of C clients or an open loop at R per second,
    after a ramp of `Config.ramp_s` whose requests are not counted. Counters (CPU, the machine's
    busy time, the service's loop lag) are read from the moment the window opens."""
    pattern, service = target.pattern, target.service
    if service is not None:
        # before the ramp, a blocked loop may still owe the last level its answers: wait for them
        await control.each_worker(service, "POST", "/_bench/reset", timeout_s=60)
        service.reset_peak_rss()
    await control.clear_journal()
    watched = ([] if service is None else service.pids()) + ([control.upstream_pid] if control.upstream_pid else [])
    opened: dict[str, Any] = {}

    def window_opens() -> None:
        opened.update(
            since=time.time(),
            cpu=(service.cpu_seconds() if service else math.nan, control.upstream_cpu_seconds()),
            watch=machine.Watch(watched),
        )

    mode, amount = level
    load: LoadResult
    if mode == OPEN:
        load = await run_open_loop(
            target.spec(),
            rate_rps=amount,
            window_s=config.window_s,
            ramp_s=config.ramp_s,
            on_window=window_opens,
            drain_s=config.open_drain_s,
            seed=target.round,
            session=session,
        )
    else:
        clients = int(amount)
        load = await run_load(
            target.spec(),
            concurrency=clients,
            n_requests=1000 * clients,  # a cap the window ends first
            window_s=config.window_s,
            ramp_s=config.ramp_s,
            on_window=window_opens,
            session=session,
        )
    cpu_used = (service.cpu_seconds() if service else math.nan, control.upstream_cpu_seconds())
    window = opened["watch"].stop()
    await asyncio.sleep(0.2)  # let calls cut by the window reach the upstream's journal
    seen = await control.upstream_view(since=opened["since"])
    row = Row(
        pattern.name,
        pattern.title,
        pattern.workers,
        load.concurrency,
        load,
        seen.requests if seen else None,
        mode=mode,
        rate_rps=amount if mode == OPEN else None,
        round=target.round,
    )
    row.upstream_peak = seen.peak_in_flight if seen else None
    row.upstream_durations_s = seen.durations_s if seen else []
    per_request = 1000 / max(1, load.completed)
    row.service_cpu_ms = (cpu_used[0] - opened["cpu"][0]) * per_request
    row.upstream_cpu_ms = (cpu_used[1] - opened["cpu"][1]) * per_request
    row.window, row.contention = window, machine.contention_reasons(window)
    if service is not None:
        row.peak_rss_mib = service.peak_rss_mib()
        try:
            stats = await control.each_worker(service, "GET", f"/_bench/stats?since={opened['since']}")
            row.lag_ms = {key: max(s["lag_ms"][key] for s in stats) for key in ("p50", "p99", "max")}
        except TimeoutError:  # still working through a backlog the clients have left: a blocked loop
            row.unresponsive = True
    return row


class _Bench:
    """One benchmark run's shared state: its upstream, key, core placement and progress report."""

    def __init__(
        self,
        config: Config,
        upstream_url: str,
        key: str,
        control: _Control,
        placement: affinity.Placement | None,
        report: Callable[[str], None],
    ) -> None:
        self.config, self.upstream_url, self.key, self.control = config, upstream_url, key, control
        self.placement, self.report = placement, report

    def start(self, pattern: Pattern) -> tuple[Service, str]:
        """Start `pattern`'s service, on the service's core when pinning (one worker only:
        two workers pinned to one core would defeat them); return it and where it runs."""
        service = start_service(pattern, self.upstream_url, api_key=self.key, model=self.config.model)
        if self.placement is None or pattern.workers > 1:
            return service, "all"
        for pid in service.pids():
            affinity.pin(pid, self.placement.service)
        return service, "core " + ",".join(map(str, sorted(self.placement.service)))

    def target(self, pattern: Pattern, service: Service | None, round_: int) -> Target:
        if service is None:  # the upstream alone
            body: dict[str, Any] = _plain_call(self.config.model)
            headers = {"Authorization": f"Bearer {self.key}"}
            sent = Pattern(pattern.name, pattern.title, None, "/chat/completions", body, headers)
            return Target(sent, self.upstream_url + "/chat/completions", None, round_)
        return Target(pattern, service.base_url + pattern.path, service, round_)

    async def measure(self, pattern: Pattern, round_: int) -> list[Row]:
        """Every level of `pattern` in one round, on a service started for it."""
        rows: list[Row] = []
        service, cores = None, "all"
        try:
            for level in self.config.level_keys():
                if pattern.app is None and level[0] == OPEN and self.control.journal_url is not None:
                    # The open loop's added latency is taken over the upstream's journal, and anything
                    # that keeps up achieves the arrival rate: the upstream alone would add nothing.
                    continue
                started = time.perf_counter()
                if pattern.app is not None and service is None:
                    service, cores = self.start(pattern)
                target = self.target(pattern, service, round_)
                async with new_session() as session:  # the ramp opens its connections and pays first-call costs
                    row = await run_level(target, level, self.config, self.control, session)
                row.cores = cores if service is not None else "others"
                rows.append(row)
                if row.unresponsive and service is not None:  # its backlog would skew the next level: restart
                    service.stop()
                    service = None
                self.report(_progress(row, time.perf_counter() - started))
        finally:
            if service is not None:
                service.stop()
        return rows

    async def cross_check(self, patterns: list[str], mean_latency_s: float) -> list[CrossCheck]:
        """The upstream alone, and the hardened service when it ran, at the highest closed level:
        the same number of requests from the same number of clients, started cold (no ramp, since
        hey has none), by our load generator and then by hey, on the same service."""
        checks: list[CrossCheck] = []
        clients = max(self.config.levels)
        n = max(clients, round(clients * self.config.window_s / mean_latency_s))  # about one window's worth
        for name in [p for p in ("upstream", "hardened") if p in patterns]:
            pattern = PATTERNS[name]
            service, _ = self.start(pattern) if pattern.app else (None, "")
            try:
                target = self.target(pattern, service, 0)
                async with new_session() as session:
                    ours = await run_load(target.spec(), concurrency=clients, n_requests=n, session=session)
                theirs = await asyncio.to_thread(run_hey, target.spec(), concurrency=clients, n_requests=n)
            finally:
                if service is not None:
                    service.stop()
            checks.append(CrossCheck(name, clients, ours, theirs))
            self.report(f"cross-check      {checks[-1].summary()}")
        return checks


def _progress(row: Row, seconds: float) -> str:
    lag = "unresponsive" if row.unresponsive else f"{row.lag_ms.get('p99', math.nan):7.1f} ms"
    level = f"C={row.concurrency:<5}" if row.mode == CLOSED else f"R={row.rate_rps:<5g}"
    busy = f"  contended: {'; '.join(row.contention)}" if row.contention else ""
    return (
        f"{row.pattern:16} r{row.round} {level} {row.ok_rps:8.1f} ok/s  p99 {row.load.p99 * 1000:7.0f} ms  "
        f"errors {row.load.errors:4}  unfinished {row.load.unfinished:4}  lag p99 {lag}  ({seconds:.1f} s){busy}"
    )


def _plain_call(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _upstream_key(config: Config) -> str:
    if config.upstream_url is None:
        return UPSTREAM_KEY
    if not config.upstream_key_env or not (key := os.environ.get(config.upstream_key_env, "").strip()):
        raise BenchError(f"the upstream's key must be in ${config.upstream_key_env}, which is missing or empty")
    return key


def _bundled_args(config: Config, *extra: str) -> tuple[str, ...]:
    """The bundled upstream's flags beyond its latencies: the model every call asks for, the spread."""
    spread = ("--latency-p99", str(config.latency_p99_s)) if config.latency_p99_s else ()
    return ("--models", config.model, *spread, *extra)


async def measure_latency(
    session: aiohttp.ClientSession, upstream_url: str, key: str, model: str, calls: int = 5
) -> float:
    """The median time of `calls` plain chat completions sent together (after one that opens a connection)."""
    spec = RequestSpec(
        "POST", upstream_url + "/chat/completions", json=_plain_call(model), headers={"Authorization": f"Bearer {key}"}
    )
    first = await run_load(spec, concurrency=1, n_requests=1, session=session)
    load = await run_load(spec, concurrency=calls, n_requests=calls, session=session)
    if first.errors or load.errors:
        answered = dict(first.statuses + load.statuses)
        raise BenchError(f"the upstream at {upstream_url} answered {answered} to plain calls")
    return statistics.median(load.latencies_s)


async def _run(
    config: Config, report: Callable[[str], None], placement: affinity.Placement | None, host: dict[str, Any]
) -> BenchResult:
    started = time.perf_counter()
    key = _upstream_key(config)
    if config.cross_check and hey_path() is None:
        raise BenchError("the cross-check needs hey: make hey (or apt-get install hey)")
    result = BenchResult(config, [], None, None, 0.0, host=host)
    result.placement = placement.describe() if placement is not None else "not pinned"
    report(f"machine          {result.host.get('cpu_model', '?')}; {result.placement}")
    if config.calibrate:
        result.calibration = await asyncio.to_thread(machine.calibrate)
        report(f"calibration      {result.calibration.summary()}")
    upstream = None
    if config.upstream_url is None:
        upstream = start_upstream(
            latency_s=config.latency_s,
            ttft_s=config.stream_ttft_s,
            chunk_delay_s=config.stream_chunk_delay_s,
            extra_args=_bundled_args(config),
        )
    upstream_url = upstream.base_url if upstream is not None else str(config.upstream_url)
    try:
        async with new_session() as session:
            result.measured_latency_s = await measure_latency(session, upstream_url, key, config.model)
            report(
                f"upstream         {'bundled' if upstream else upstream_url}: "
                f"{result.measured_latency_s * 1000:.0f} ms per plain call (median of 5 sent together)"
            )
            control = _Control(session, upstream_url, upstream.pid if upstream is not None else None)
            bench = _Bench(config, upstream_url, key, control, placement, report)
            order = ["upstream"] + [name for name in config.patterns if name != "upstream"]
            for round_ in range(1, config.rounds + 1):
                for name in order:
                    result.rows += await bench.measure(PATTERNS[name], round_)
            if config.cross_check:
                result.cross_checks = await bench.cross_check(order, result.mean_latency_s)
            if config.transport_rounds:
                result.transports = await compare_transports(
                    upstream_url,
                    rounds=config.transport_rounds,
                    calls=config.transport_calls,
                    concurrency=config.transport_concurrency,
                    api_key=key,
                    model=config.model,
                )
                t = result.transports
                report(
                    f"transports       CPU per SDK call, median of {config.transport_rounds} rounds: "
                    f"httpx {t.median_ms('httpx'):.2f} ms, aiohttp {t.median_ms('aiohttp'):.2f} ms"
                )
            if config.streams:
                result.streams = await _streams(config, bench, session)
                report(f"streams          {result.streams.summary()}")
    finally:
        if upstream is not None:
            upstream.stop()
    result.elapsed_s = time.perf_counter() - started
    return result


async def _streams(config: Config, bench: _Bench, session: aiohttp.ClientSession) -> StreamsResult:
    """The hardened service holding `config.streams` streams: on a bundled upstream of its own with
    long replies, or on the running server (`config.upstream_url`), whose replies are what they are."""
    upstream = None
    if config.upstream_url is None:
        upstream = start_upstream(
            latency_s=config.latency_s,
            ttft_s=config.stream_ttft_s,
            chunk_delay_s=config.stream_chunk_delay_s,
            extra_args=("--reply-tokens", str(config.stream_tokens), "--models", config.model),
        )
    try:
        url = upstream.base_url if upstream is not None else bench.upstream_url
        own = _Bench(config, url, bench.key, bench.control, bench.placement, bench.report)
        service, _ = own.start(PATTERNS["hardened"])
        try:
            return await hold_streams(service, config.streams, ramp_s=config.stream_ramp_s, control_session=session)
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
    """Run the whole benchmark on its own event loop (uvloop).

    When pinning, this process (the load generator) and every process it starts run on the
    cores the service does not get, then each single-worker service is moved to its own
    core; this process's cores are given back at the end."""
    _allow_many_sockets()
    placement = affinity.plan() if config.pin else None
    host, before = machine.describe_machine(), os.sched_getaffinity(0)  # before pinning
    if placement is not None:
        affinity.pin_self(placement.others)
    try:
        return eventloop.run(_run(config, report, placement, host))
    finally:
        if placement is not None:
            affinity.pin_self(before)
