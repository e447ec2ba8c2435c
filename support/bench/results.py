"""What a benchmark run produced: a `Row` per pattern, load and round, the hey cross-checks,
and `BenchResult`, which compares each row with the upstream alone of its round and with
the upstream's own time on the row's calls (its journal)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..upstream.latency import mean_latency
from . import machine
from .config import CLOSED, OPEN, Config
from .loadgen import LoadResult, percentile
from .openloop import OpenLoopResult
from .streams import StreamsResult
from .transport import TransportComparison

__all__ = ["BenchResult", "CrossCheck", "Row", "UpstreamView", "peak_in_flight", "view_of_journal"]


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
    measured_latency_s: float = math.nan  # median of plain calls sent together, before the patterns ran
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
