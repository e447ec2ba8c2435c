"""Measure a service the way its users feel it: a closed-loop load plus a health probe.

The load (`support.bench.loadgen`) says how many requests per second get through and how
long they take; the probe, one ``GET /health`` sent while the load is in flight, says
whether the service's event loop was free meanwhile. Figures are reported next to the
ideal of a closed loop, ``concurrency / latency``, so they read the same on any machine.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from ..tables import text_table
from .loadgen import LoadResult, RequestSpec, ideal_throughput, new_session, run_load

__all__ = ["Measurement", "format_table", "measure"]

DEFAULT_BODY = {"prompt": "Why should an async route await an async client?"}


@dataclass
class Measurement:
    """One pattern under one load."""

    load: LoadResult
    latency_s: float  # the upstream's own latency: the floor of every request
    probe_s: float | None  # how long GET /health took while the load ran

    @property
    def ideal_throughput(self) -> float:
        return ideal_throughput(self.load.concurrency, self.latency_s)

    @property
    def ratio(self) -> float:
        """Throughput as a fraction of the closed-loop ideal."""
        return self.load.ratio_to_ideal(self.latency_s)

    @property
    def ideal_wall_s(self) -> float:
        return self.min_rounds(self.load.concurrency) * self.latency_s

    def min_rounds(self, in_flight: int) -> int:
        """Upstream latencies this closed loop needs at best when at most `in_flight` calls
        can run at once (a pool's size, a limiter's tokens): ``⌈n / min(in_flight, concurrency)⌉``.

        The latency model behind the notebooks' lower bounds: a pool smaller than the
        number of clients serves the requests in that many rounds, however fast it is.
        """
        if in_flight < 1:
            raise ValueError(f"in_flight must be >= 1, got {in_flight}")
        return math.ceil(self.load.n_requests / min(in_flight, self.load.concurrency))


async def measure(
    base_url: str,
    *,
    concurrency: int,
    n_requests: int,
    latency_s: float,
    path: str = "/chat",
    body: Any = None,
    probe_path: str | None = "/health",
    probe_after_s: float | None = None,
    timeout_s: float = 300.0,
) -> Measurement:
    """Send `n_requests` to ``POST base_url+path``, `concurrency` at a time, and probe once.

    The probe goes out `probe_after_s` after the load starts (default: half the
    upstream latency, when the first requests are surely in flight).
    """
    spec = RequestSpec("POST", base_url + path, json=DEFAULT_BODY if body is None else body)
    async with new_session() as session:
        load_task = asyncio.create_task(
            run_load(spec, concurrency=concurrency, n_requests=n_requests, timeout_s=timeout_s, session=session)
        )
        probe_s = None
        if probe_path is not None:
            await asyncio.sleep(latency_s / 2 if probe_after_s is None else probe_after_s)
            started = time.perf_counter()
            async with session.get(base_url + probe_path) as response:
                await response.read()
            probe_s = time.perf_counter() - started
        load = await load_task
    return Measurement(load=load, latency_s=latency_s, probe_s=probe_s)


def format_table(rows: dict[str, Measurement]) -> str:
    """An aligned text table of measurements, one row per named pattern."""
    header = ("pattern", "conc.", "requests", "ok", "wall s", "req/s", "ideal", "ratio", "p50 s", "p99 s", "probe s")
    lines = [header]
    for name, m in rows.items():
        load = m.load
        lines.append(
            (
                name,
                str(load.concurrency),
                str(load.n_requests),
                str(load.ok),
                f"{load.wall_s:.2f}",
                f"{load.throughput:.1f}",
                f"{m.ideal_throughput:.1f}",
                f"{m.ratio:.0%}",
                f"{load.p50:.3f}",
                f"{load.p99:.3f}",
                "-" if m.probe_s is None else f"{m.probe_s:.3f}",
            )
        )
    return text_table(lines)
