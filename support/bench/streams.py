"""Hold many streaming connections open on one service process, and watch its memory.

Every client opens ``POST /v1/chat/stream`` and reads it to the end, the clients starting
evenly over a short ramp (all at once with no ramp: a burst no real traffic sends). Two
figures matter: the time from each client's own start to its first event (the service
must not make a stream wait while it opens others), and the peak RSS above the idle
baseline, per stream: it has to stay bounded for a process to hold thousands.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .loadgen import percentile
from .patterns import HARDENED
from .services import Service


@dataclass
class StreamsResult:
    streams: int
    ramp_s: float = 0.0  # the clients started evenly over this long
    completed: int = 0  # streams that ended with the service's `done` event
    statuses: dict[str, int] = field(default_factory=dict)
    first_event_s: list[float] = field(default_factory=list)
    duration_s: list[float] = field(default_factory=list)
    most_open: int = 0  # streams open at the same moment, as the clients saw it
    baseline_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    lag_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def kib_per_stream(self) -> float:
        return (self.peak_rss_mib - self.baseline_rss_mib) * 1024 / max(1, self.most_open)

    def summary(self) -> str:
        return (
            f"{self.completed}/{self.streams} completed (ramp {self.ramp_s:g} s), {self.most_open} open at once, "
            "peak RSS "
            f"{self.peak_rss_mib:.0f} MiB ({self.baseline_rss_mib:.0f} idle, {self.kib_per_stream:.0f} KiB/stream), "
            f"first event p99 {percentile(self.first_event_s, 99) * 1000:.0f} ms, "
            f"loop lag p99 {self.lag_ms.get('p99', float('nan')):.1f} ms"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "ramp_s": self.ramp_s,
            "completed": self.completed,
            "statuses": self.statuses,
            "most_open": self.most_open,
            "baseline_rss_mib": self.baseline_rss_mib,
            "peak_rss_mib": self.peak_rss_mib,
            "kib_per_stream": self.kib_per_stream,
            "first_event_p50_s": percentile(self.first_event_s, 50),
            "first_event_p99_s": percentile(self.first_event_s, 99),
            "duration_p50_s": percentile(self.duration_s, 50),
            "duration_max_s": max(self.duration_s, default=None),
            "lag_ms": self.lag_ms,
            "wall_s": self.wall_s,
        }


async def hold_streams(
    service: Service,
    n: int,
    *,
    control_session: aiohttp.ClientSession,
    ramp_s: float = 0.0,
    timeout_s: float = 120.0,
) -> StreamsResult:
    """Open `n` streams on `service`, the i-th at ``i * ramp_s / n`` seconds, read each to its end,
    and measure the service. A stream's first-event time runs from its own start."""
    if n < 1 or not ramp_s >= 0:
        raise ValueError(f"need n >= 1 and ramp_s >= 0, got n={n}, ramp_s={ramp_s}")
    result = StreamsResult(n, ramp_s)
    url = service.base_url + HARDENED["path"] + "/stream"
    async with control_session.post(service.base_url + "/_bench/reset") as response:
        await response.read()
    service.reset_peak_rss()
    result.baseline_rss_mib = service.peak_rss_mib()
    open_now = 0

    async def one(session: aiohttp.ClientSession, delay_s: float) -> None:
        nonlocal open_now
        await asyncio.sleep(delay_s)
        started = time.perf_counter()
        status: str = "?"
        try:
            async with session.post(url, json=HARDENED["body"], headers=HARDENED["headers"]) as response:
                status = str(response.status)
                open_now += 1
                result.most_open = max(result.most_open, open_now)
                first = True
                async for line in response.content:
                    if first and line.startswith(b"data:"):
                        result.first_event_s.append(time.perf_counter() - started)
                        first = False
                    if line.startswith(b"event: done"):
                        result.completed += 1
                open_now -= 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            status = type(exc).__name__
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.duration_s.append(time.perf_counter() - started)

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        await asyncio.gather(*(one(session, i * ramp_s / n) for i in range(n)))
    result.wall_s = time.perf_counter() - started
    result.peak_rss_mib = service.peak_rss_mib()
    async with control_session.get(service.base_url + "/_bench/stats") as response:
        stats = await response.json()
    result.lag_ms = {key: stats["lag_ms"][key] for key in ("p50", "p99", "max")}
    return result
