"""What building an SDK client costs, and where the time goes.

Building an `AsyncOpenAI` is synchronous work on the event loop; a service that builds
one per request pays it on every request, while the loop serves nothing else.
`construction_cost` times a batch (wall and CPU) and profiles a second batch to find
the share of one function, e.g. ``load_verify_locations`` (each client loads the CA
bundle into an SSL context of its own).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ConstructionCost", "construction_cost"]


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class ConstructionCost:
    """Per-client construction time, and one function's part of it."""

    wall_s: float  # per client, timed batch
    cpu_s: float  # per client, this process's CPU time, timed batch
    hotspot_calls: int  # calls of the hotspot function in the profiled batch
    hotspot_share: float  # its own time as a fraction of all profiled own time


async def construction_cost(build: Callable[[], Closable], batch: int, *, hotspot: str) -> ConstructionCost:
    """Build `batch` clients with `build` and time them; build `batch` more under cProfile
    and measure the share of the functions whose name contains `hotspot`; close all.

    Timing and profiling are separate batches because the profiler slows what it
    watches. Every client is closed before this returns, even if building one fails.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    clients: list[Closable] = []
    try:
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(batch):
            clients.append(build())  # one by one: a failure still closes those already built
        wall_s = (time.perf_counter() - wall_started) / batch
        cpu_s = (time.process_time() - cpu_started) / batch

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            for _ in range(batch):
                clients.append(build())
        finally:
            profiler.disable()
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    # pstats rows: {(file, line, function): (primitive calls, calls, own time, cumulative time, callers)}
    rows = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # typeshed omits Stats.stats
    own_total = sum(row[2] for row in rows.values())
    hot = [row for (_, _, function), row in rows.items() if hotspot in function]
    return ConstructionCost(
        wall_s=wall_s,
        cpu_s=cpu_s,
        hotspot_calls=sum(row[1] for row in hot),
        hotspot_share=sum(row[2] for row in hot) / own_total if own_total > 0 else 0.0,
    )
