"""The procedure: one upstream process, then each pattern's service in turn, same load, in rounds.

Every pattern is measured in `Config.rounds` rounds, interleaved round-robin: round 1
runs the upstream alone and then every pattern, round 2 does it again, and so on, so that
drift on the machine (another process waking up, a throttled core) hits every pattern
alike. Each round's rows are compared with the upstream alone *of the same round*; the
report gives the median over rounds and the spread (`support.bench.summary`).

For each pattern, round and level: start the service (pinned to a core of its own when
the machine has two or more, see `affinity`), warm it up, reset its counters, clear the
upstream's journal, run the load, then read the service's loop lag and peak RSS, from the
journal the calls the upstream received and how many were open at once, and from /proc
how busy the machine was meanwhile (`machine`: a *contended* window is one no conclusion
may rest on). The load is a closed loop of `C` clients at each of `Config.levels`, then
an open loop of Poisson arrivals at `Config.open_rate_rps` (`openloop`), whose latencies
run from each request's intended send time.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..upstream.latency import mean_latency
from . import affinity, eventloop, machine
from .errors import BenchError
from .hey import hey_path, run_hey
from .loadgen import LoadResult, RequestSpec, new_session, percentile, run_load
from .openloop import OpenLoopResult, run_open_loop
from .patterns import PATTERNS, Pattern
from .processes import start_upstream
from .procfs import cpu_seconds
from .services import Service, start_service
from .streams import StreamsResult, hold_streams
from .transport import TransportComparison, compare_transports

UPSTREAM_KEY = "bench-upstream-key"  # the bundled upstream accepts any key unless told one
CLOSED, OPEN = "closed", "open"


@dataclass
class Config:
    latency_s: float = 0.5  # the bundled upstream's median latency per call
    latency_p99_s: float | None = 1.0  # its 99th percentile (a seeded lognormal); None: every call takes latency_s
    levels: list[int] = field(default_factory=lambda: [10, 100])  # closed-loop clients
    open_rate_rps: float | None = 150.0  # open-loop arrivals per second (None: no open loop)
    open_drain_s: float = 10.0  # after an open-loop window, how long requests in flight may still finish
    window_s: float = 5.0  # each level is measured over this window, every pattern over the same time
    ramp_s: float = 1.0  # the load runs this long before each window opens (not counted: the steady state)
    rounds: int = 3  # each pattern is measured this many times, interleaved round-robin
    patterns: list[str] = field(default_factory=lambda: list(PATTERNS))
    pin: bool = True  # the service on a core of its own (with two or more cores)
    cross_check: bool = False  # also drive the upstream alone and the hardened service with hey
    calibrate: bool = True  # measure the CPU cost of a raw HTTP request on this machine first
    streams: int = 1000  # streams opened on the hardened service over `stream_ramp_s` (0: skip)
    stream_ramp_s: float = 1.0
    stream_ttft_s: float = 0.5
    stream_chunk_delay_s: float = 0.5  # slow on purpose: the test is about holding connections
    stream_tokens: int = 16
    transport_rounds: int = 5  # rounds of the side-by-side transport comparison (0: skip)
    transport_calls: int = 200  # calls per transport and round
    transport_concurrency: int = 50  # of those, in flight at once (also the pool size whose checks are counted)
    model: str = "gpt-4o-mini"  # what every service and the upstream-alone rows ask for
    upstream_url: str | None = None  # None: start the bundled upstream; else a running server (ends in /v1)
    upstream_key_env: str | None = None  # with upstream_url: the NAME of the variable holding its key

    def level_keys(self) -> list[tuple[str, float]]:
        """Every load a pattern is measured under: ``("closed", C)`` per level, then ``("open", R)``."""
        keys: list[tuple[str, float]] = [(CLOSED, c) for c in self.levels]
        return keys + ([(OPEN, self.open_rate_rps)] if self.open_rate_rps else [])


@dataclass
class Row:
    pattern: str
    title: str
    workers: int
    concurrency: int  # closed loop: the clients; open loop: the most requests in flight at once
    load: LoadResult  # an OpenLoopResult in the open loop
    upstream_requests: int | None  # what the upstream received during the level (None: no journal)
    mode: str = CLOSED
    rate_rps: float | None = None  # the open loop's arrival rate
    round: int = 1
    lag_ms: dict[str, float] = field(default_factory=dict)  # the service's event loop (worst worker)
    peak_rss_mib: float = math.nan
    service_cpu_ms: float = math.nan  # CPU per completed request: the service's processes
    upstream_cpu_ms: float = math.nan  # and the upstream's
    unresponsive: bool = False  # after the window, the service could not answer its stats route in time
    upstream_peak: int | None = None  # the most calls open at the upstream at one instant (None: no journal)
    upstream_durations_s: list[float] = field(default_factory=list)  # its time on each call of the window
    window: machine.MachineWindow | None = None  # how busy the machine was meanwhile
    contention: list[str] = field(default_factory=list)  # why this window was contended (empty: it was not)
    cores: str = "all"  # where the service ran

    @property
    def level(self) -> tuple[str, float]:
        """Which load: ``("closed", C)`` or ``("open", R)``, as in `Config.level_keys`."""
        return (OPEN, self.rate_rps or 0.0) if self.mode == OPEN else (CLOSED, self.concurrency)

    @property
    def ok_rps(self) -> float:
        """Successful requests per second: of the window's wall time (closed loop) or of the
        sending window (open loop: it keeps up when this is the arrival rate)."""
        if isinstance(self.load, OpenLoopResult):
            return self.load.achieved_rps
        return self.load.ok / self.load.wall_s if self.load.wall_s else 0.0

    @property
    def cpu_stall_pct(self) -> float:
        return self.window.stall_pct if self.window is not None else math.nan

    def to_dict(self, reference: Mapping[int, float] | None, ceiling: Row | None) -> dict[str, Any]:
        """The row's figures; its added latencies are over `reference` (percentile -> seconds:
        the upstream alone in the same round, or the configured distribution for that row itself)."""
        load = self.load
        # The latencies include failed requests; with no answer at all they would describe
        # only how fast the service fails (even below the upstream's latency), so none is given.
        # A percentile the window's unfinished requests may exceed is a lower bound (see
        # `LoadResult.percentile_bound`) and says so.
        added: dict[str, Any] = {}
        for p in (50, 95, 99):
            value, lower_bound = load.percentile_bound(p)
            known = bool(load.ok) and reference is not None and p in reference
            added[f"added_p{p}_ms"] = (value - reference[p]) * 1000 if known and reference else math.nan
            added[f"added_p{p}_at_least"] = lower_bound and known
        return {
            "pattern": self.pattern,
            "title": self.title,
            "workers": self.workers,
            "mode": self.mode,
            "round": self.round,
            "rate_rps": self.rate_rps,
            **load.to_dict(),
            "concurrency": self.concurrency,
            "ok_throughput_rps": self.ok_rps,
            **added,
            "upstream_requests": self.upstream_requests,
            "upstream_peak_in_flight": self.upstream_peak,
            "lag_ms": self.lag_ms,
            "unresponsive": self.unresponsive,
            "cpu_stall_pct": self.cpu_stall_pct,
            "machine": None if self.window is None else self.window.to_dict(),
            "contention": self.contention,
            "cores": self.cores,
            "peak_rss_mib": self.peak_rss_mib,
            "service_cpu_ms": self.service_cpu_ms,
            "upstream_cpu_ms": self.upstream_cpu_ms,
            "vs_upstream": _ratios(self, ceiling),
        }


def _ratios(row: Row, ceiling: Row | None) -> dict[str, float | None]:
    if ceiling is None or not ceiling.ok_rps:
        return {}
    return {
        "throughput": row.ok_rps / ceiling.ok_rps,
        "p50": row.load.p50 / ceiling.load.p50 if ceiling.load.p50 else None,
        "p99": row.load.p99 / ceiling.load.p99 if ceiling.load.p99 else None,
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
    durations_s: list[float] = field(default_factory=list)  # of the calls received since `since`, finished


def view_of_journal(
    entries: Iterable[Mapping[str, Any]], *, endpoint: str | None = None, since: float = -math.inf
) -> UpstreamView:
    """Count and peak in flight of journal entries (``received_at``, ``finished_at``), of one endpoint
    or all, and how long the upstream took over each finished call it received from `since` on
    (``time.time()``, the journal's clock)."""
    mine = [e for e in entries if endpoint is None or e.get("endpoint") == endpoint]
    durations = [
        e["finished_at"] - e["received_at"] for e in mine if e["received_at"] >= since and e.get("finished_at")
    ]
    return UpstreamView(len(mine), peak_in_flight((e["received_at"], e.get("finished_at")) for e in mine), durations)


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


@dataclass
class CrossCheck:
    """The same closed load driven by our generator and by hey (a compiled one), back to back."""

    pattern: str
    concurrency: int
    ours: LoadResult
    hey: LoadResult

    @property
    def agreement(self) -> float:
        """hey's throughput as a fraction of ours (1.0: they agree)."""
        return self.hey.throughput / self.ours.throughput if self.ours.throughput else math.nan

    def summary(self) -> str:
        return (
            f"{self.pattern} at C={self.concurrency}: ours {self.ours.throughput:.1f} req/s "
            f"(p99 {self.ours.p99 * 1000:.0f} ms), hey {self.hey.throughput:.1f} req/s "
            f"(p99 {self.hey.p99 * 1000:.0f} ms): hey/ours {self.agreement:.1%}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "concurrency": self.concurrency,
            "ours": self.ours.to_dict(),
            "hey": self.hey.to_dict(),
            "agreement": self.agreement,
        }


@dataclass
class BenchResult:
    config: Config
    rows: list[Row]
    streams: StreamsResult | None
    transports: TransportComparison | None
    elapsed_s: float
    measured_latency_s: float = math.nan  # median of plain calls, one at a time, before the patterns ran
    placement: str = "not pinned"  # where the service, the upstream and the load generator ran
    host: dict[str, Any] = field(default_factory=dict)  # `machine.describe_machine`
    calibration: machine.Calibration | None = None
    cross_checks: list[CrossCheck] = field(default_factory=list)

    @property
    def bundled(self) -> bool:
        """True when the benchmark started the bundled upstream (a journal, a known latency)."""
        return self.config.upstream_url is None

    @property
    def latency_s(self) -> float:
        """The upstream's median latency: the bundled upstream's setting, or the running server's as measured."""
        return self.config.latency_s if self.bundled else self.measured_latency_s

    @property
    def mean_latency_s(self) -> float:
        """What a closed loop's ceiling divides by: the distribution's mean (a running server: its median)."""
        return mean_latency(self.config.latency_s, self.config.latency_p99_s) if self.bundled else self.latency_s

    @property
    def contended(self) -> bool:
        """True when any window of the run was contended: no conclusion may rest on the run."""
        return any(row.contention for row in self.rows)

    def ceiling(self, row: Row) -> Row | None:
        """The upstream alone under the same load in the same round."""
        return next(
            (r for r in self.rows if r.pattern == "upstream" and r.level == row.level and r.round == row.round), None
        )

    def reference(self, row: Row) -> dict[int, float] | None:
        """What `row`'s latencies are compared with (percentile -> seconds): with the bundled
        upstream, its own time on the very calls the window made (its journal), so that the
        random draws of its latencies cancel out; without it, the upstream alone in the same round."""
        if row.upstream_durations_s:
            return {p: percentile(row.upstream_durations_s, p) for p in (50, 95, 99)}
        ceiling = self.ceiling(row)
        if row.pattern == "upstream" or ceiling is None:
            return None
        return {p: ceiling.load.percentile(p) for p in (50, 95, 99)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.__dict__,
            "upstream": {
                "bundled": self.bundled,
                "latency_s": self.latency_s,
                "latency_p99_s": self.config.latency_p99_s if self.bundled else None,
                "mean_latency_s": self.mean_latency_s,
                "measured_s": self.measured_latency_s,
            },
            "machine": self.host,
            "placement": self.placement,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "contended": self.contended,
            "rows": [r.to_dict(self.reference(r), self.ceiling(r)) for r in self.rows],
            "cross_checks": [c.to_dict() for c in self.cross_checks],
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


def _bundled_args(config: Config, *extra: str) -> tuple[str, ...]:
    """The bundled upstream's flags beyond its latencies: the model every call asks for, the spread."""
    spread = ("--latency-p99", str(config.latency_p99_s)) if config.latency_p99_s else ()
    return ("--models", config.model, *spread, *extra)


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
                f"{result.measured_latency_s * 1000:.0f} ms per plain call (median of 5)"
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
