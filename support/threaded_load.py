"""A thread-based service under load, watched from inside its own event loop.

A ``def`` route's ceiling and cost are not visible from outside the service: they are
in the loop's AnyIO limiter (tokens borrowed, tasks waiting) and in this process's OS
threads and memory. `load_watched` puts `support.bench.measure`'s closed-loop load on
a served app while `support.threads.watch` samples those from inside the app's loop,
and reads from the bundled upstream's journal the most calls it had in flight at once;
the formatters print what notebook 02 reads row by row, next to the server alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from .bench.measure import Measurement, format_table, measure
from .serve import RunningServer
from .side_by_side import PatternRun
from .tables import text_table
from .target import Target
from .threads import Peaks, ProcStatus, run_in, server_loop, time_run_sync, watch
from .upstream_calls import calls_from_now, most_in_flight

__all__ = ["WatchedRun", "format_limiter_runs", "format_thread_costs", "load_watched"]


@dataclass(frozen=True)
class WatchedRun:
    """One load on one service, and what its loop's limiter and this process saw meanwhile."""

    measured: Measurement
    peaks: Peaks  # the highest limiter and thread figures sampled, and the CPU time spent
    workers: int  # OS threads at the peak beyond the service's idle count: its worker threads
    noop_wait_s: float | None  # a no-op sent through the same limiter during the load, if asked
    peak_in_flight: int | None = None  # most calls the upstream had at once (its journal; None: no journal)


async def load_watched(
    server: RunningServer,
    *,
    concurrency: int,
    n_requests: int,
    latency_s: float,
    idle_threads: int,
    noop_after_s: float | None = None,
    target: Target | None = None,
) -> WatchedRun:
    """Measure `server` under a closed-loop load while sampling its loop's default AnyIO
    limiter and this process's threads and memory.

    `idle_threads` is the process's thread count with the service running and idle, so
    that the peak above it counts the service's worker threads. With `noop_after_s`, a
    no-op goes through ``anyio.to_thread.run_sync`` on the service's loop that long into
    the load, as a sync dependency or a sync stream's next chunk would: its wait is the
    wait for a token. With `target` (the bundled upstream), the upstream's journal gives
    the most calls it had in flight at once during the load.
    """
    loop = server_loop(server)
    calls = calls_from_now(target) if target is not None else None

    async def timed_noop(delay_s: float) -> float:
        await asyncio.sleep(delay_s)
        return await run_in(loop, time_run_sync())

    async with watch(loop) as peaks:
        noop = None if noop_after_s is None else asyncio.create_task(timed_noop(noop_after_s))
        measured = await measure(server.base_url, concurrency=concurrency, n_requests=n_requests, latency_s=latency_s)
        noop_wait_s = None if noop is None else await noop
    peak = None
    if calls is not None and calls.observable:
        peak = most_in_flight(await calls.settled(at_least=n_requests, timeout=30 + 3 * latency_s))
    return WatchedRun(measured, peaks, peaks.threads - idle_threads, noop_wait_s, peak)


def format_limiter_runs(runs: Mapping[str, WatchedRun], *, alone: PatternRun | None = None) -> str:
    """The load table (with `alone`, the same load straight to the server, as a last
    row), then one line per run: its wall time in latencies next to the latency
    model's best (``⌈n / min(tokens, clients)⌉``), the most tokens borrowed, the most
    tasks queued for one, the worker threads it started, and the most calls the
    upstream had in flight at once (when its journal was read)."""
    table = {name: run.measured for name, run in runs.items()}
    if alone is not None:
        table["server alone"] = alone.measured
    lines = [format_table(table), ""]
    for name, run in runs.items():
        m, p = run.measured, run.peaks
        line = (
            f"{name}: {m.load.wall_s / m.latency_s:.2f} latencies (ideal {m.min_rounds(p.total_tokens)}); "
            f"tokens borrowed at most {p.borrowed_tokens} of {p.total_tokens}, "
            f"up to {p.tasks_waiting} tasks waiting; {run.workers} worker threads"
        )
        if run.peak_in_flight is not None:
            line += f"; at most {run.peak_in_flight} calls in flight at the upstream"
        lines.append(line)
    if alone is not None and alone.peak is not None:
        lines.append(f"server alone: at most {alone.peak} calls in flight at the upstream")
    return "\n".join(lines)


def format_thread_costs(
    runs: Mapping[str, WatchedRun],
    before: ProcStatus,
    *,
    compare: tuple[str, str] | None = None,
) -> str:
    """Per run: worker threads, reserved (``VmSize``) and resident (``VmRSS``) memory
    grown since `before`, and process CPU per request. With `compare` (two run names),
    a last line divides the memory difference between them by their difference in
    worker threads: what one more thread costs."""

    def grown_mib(now: int, then: int | None) -> str:
        return "-" if then is None else f"{(now - then) / 1024:.1f}"

    rows = [["run", "worker threads", "VmSize +MiB", "VmRSS +MiB", "CPU ms/request"]]
    for name, run in runs.items():
        p = run.peaks
        rows.append(
            [
                name,
                str(run.workers),
                grown_mib(p.vm_size_kib, before.vm_size_kib),
                grown_mib(p.vm_rss_kib, before.vm_rss_kib),
                f"{1000 * p.cpu_s / run.measured.load.n_requests:.1f}",
            ]
        )
    lines = [text_table(rows)]
    if compare is not None:
        fewer, more = runs[compare[0]], runs[compare[1]]
        extra = more.workers - fewer.workers
        if extra > 0:
            vm_each = (more.peaks.vm_size_kib - fewer.peaks.vm_size_kib) / 1024 / extra
            rss_each = (more.peaks.vm_rss_kib - fewer.peaks.vm_rss_kib) / 1024 / extra
            lines.append(
                f"each of the {extra} extra threads of {compare[1]!r}: "
                f"{vm_each:.1f} MiB reserved, {rss_each:.2f} MiB resident"
            )
    return "\n".join(lines)
