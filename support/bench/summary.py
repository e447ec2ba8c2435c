"""Rounds into one figure each: the median over a pattern's rounds, and their spread.

A figure from one round on a shared machine can move by tens of percent. The benchmark
measures every pattern in several interleaved rounds (`run`); a reader gets the median
and the spread, ``(highest - lowest) / median``, and a row whose spread exceeds
`SPREAD_LIMIT` is flagged: its rounds disagree, so its median is weak evidence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["SPREAD_LIMIT", "Spread", "Summary", "spread_of", "summarize"]

SPREAD_LIMIT = 0.10  # a row whose rounds differ by more than this, relative to their median, is flagged


@dataclass(frozen=True)
class Spread:
    """The median of some rounds' values and their range; NaN when no round had a value."""

    median: float
    low: float
    high: float
    n: int

    @property
    def relative(self) -> float:
        """``(high - low) / median``: 0 when the rounds agree; NaN without a positive median."""
        return (self.high - self.low) / self.median if self.median > 0 else math.nan

    @property
    def wide(self) -> bool:
        """The rounds disagree by more than `SPREAD_LIMIT`."""
        return self.relative > SPREAD_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "low": self.low, "high": self.high, "n": self.n, "relative": self.relative}


def spread_of(values: Iterable[float | None]) -> Spread:
    """The `Spread` of `values`, leaving out missing ones (None, NaN)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(statistics.median(xs), min(xs), max(xs), len(xs))


@dataclass
class Summary:
    """One pattern under one load, over its rounds (the rows of ``BenchResult.to_dict()``)."""

    rows: list[dict[str, Any]]

    @property
    def first(self) -> dict[str, Any]:
        return self.rows[0]

    @property
    def pattern(self) -> str:
        return str(self.first["pattern"])

    @property
    def title(self) -> str:
        return str(self.first["title"])

    @property
    def mode(self) -> str:
        return str(self.first["mode"])

    @property
    def level(self) -> str:
        """``C=100`` for a closed loop of 100 clients, ``150/s`` for an open loop at 150 arrivals per second."""
        return f"C={self.first['concurrency']}" if self.mode == "closed" else f"{self.first['rate_rps']:g}/s"

    def spread(self, figure: Callable[[dict[str, Any]], float | None]) -> Spread:
        return spread_of(figure(row) for row in self.rows)

    @property
    def vs_upstream(self) -> Spread:
        """Successful throughput as a share of the upstream alone in the same round."""
        return self.spread(lambda r: r["vs_upstream"].get("throughput"))

    @property
    def ok_rps(self) -> Spread:
        return self.spread(lambda r: r["ok_throughput_rps"])

    def added_ms(self, p: int) -> Spread:
        return self.spread(lambda r: r[f"added_p{p}_ms"])

    def added_at_least(self, p: int) -> bool:
        """Some round's added latency at `p` was only a lower bound (requests left unfinished)."""
        return any(r[f"added_p{p}_at_least"] for r in self.rows)

    def lag_ms(self, key: str = "p99") -> Spread:
        return self.spread(lambda r: (r["lag_ms"] or {}).get(key))

    @property
    def unresponsive(self) -> bool:
        return any(r["unresponsive"] for r in self.rows)

    @property
    def service_cpu_ms(self) -> Spread:
        return self.spread(lambda r: r["service_cpu_ms"])

    @property
    def peak_rss_mib(self) -> Spread:
        return self.spread(lambda r: r["peak_rss_mib"])

    @property
    def errors(self) -> int:
        return sum(r["errors"] for r in self.rows)

    @property
    def unfinished(self) -> int:
        return sum(r["unfinished"] for r in self.rows)

    @property
    def ok(self) -> int:
        return sum(r["ok"] for r in self.rows)

    @property
    def upstream_peak(self) -> int | None:
        """The most calls the upstream had open at once in any round (None without its journal)."""
        peaks = [r["upstream_peak_in_flight"] for r in self.rows if r["upstream_peak_in_flight"] is not None]
        return max(peaks) if peaks else None

    @property
    def upstream_requests(self) -> Spread:
        return self.spread(lambda r: r["upstream_requests"])

    @property
    def contended_rounds(self) -> int:
        return sum(1 for r in self.rows if r["contention"])

    @property
    def stall_pct(self) -> Spread:
        return self.spread(lambda r: r["cpu_stall_pct"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "title": self.title,
            "mode": self.mode,
            "level": self.level,
            "rounds": len(self.rows),
            "vs_upstream": self.vs_upstream.to_dict(),
            "ok_rps": self.ok_rps.to_dict(),
            **{f"added_p{p}_ms": self.added_ms(p).to_dict() for p in (50, 95, 99)},
            **{f"added_p{p}_at_least": self.added_at_least(p) for p in (50, 95, 99)},
            "lag_p99_ms": self.lag_ms().to_dict(),
            "unresponsive": self.unresponsive,
            "service_cpu_ms": self.service_cpu_ms.to_dict(),
            "peak_rss_mib": self.peak_rss_mib.to_dict(),
            "errors": self.errors,
            "unfinished": self.unfinished,
            "upstream_peak_in_flight": self.upstream_peak,
            "contended_rounds": self.contended_rounds,
        }


def summarize(rows: Iterable[dict[str, Any]]) -> list[Summary]:
    """Group rows by pattern and load, in the order they first appear."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(
            (row["pattern"], row["mode"], row["concurrency"] if row["mode"] == "closed" else row["rate_rps"]), []
        ).append(row)
    return [Summary(group) for group in groups.values()]
