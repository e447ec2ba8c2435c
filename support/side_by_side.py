"""Several services, and the upstream alone, under the same load inside this process.

Notebook 04 compares the three fixes where a reader can watch: each service served in
a thread of the notebook's own process, the load generator on the notebook's loop, the
bundled upstream counting what it received. Besides throughput, each run records what
explains it: the most calls the upstream handled at once (its journal read by
`support.upstream_calls.most_in_flight`), the threads the service started, by kind,
and this process's CPU time per request. The same load sent straight to the upstream is the ceiling. (The benchmark,
``python -m support.bench``, does this with every pattern in its own process.)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .bench.loadgen import RequestSpec, run_load
from .bench.measure import DEFAULT_BODY, Measurement, measure
from .serve import serve_in_thread
from .tables import text_table
from .target import Target
from .threads import thread_kinds
from .upstream_calls import most_in_flight

__all__ = [
    "UPSTREAM_ALONE",
    "PatternRun",
    "format_ceilings",
    "format_runs",
    "interleaved_runs",
    "service_run",
    "upstream_run",
]

UPSTREAM_ALONE = "upstream alone"  # the name of the runs that skip the service: the ceiling


@dataclass(frozen=True)
class PatternRun:
    """One load on one pattern, and the figures that explain its throughput."""

    measured: Measurement
    peak: int | None  # most calls in flight at the upstream (bundled upstream only)
    threads: Counter[str]  # threads started during the run, by `thread_kinds` kind
    cpu_per_request_s: float  # this process's CPU time (service, upstream, load) per request


def _peak(target: Target) -> int | None:
    return most_in_flight(target.journal.entries()) if target.bundled else None


async def service_run(app: Any, target: Target, *, concurrency: int, n_requests: int, latency_s: float) -> PatternRun:
    """Serve `app` in a thread, put the closed-loop load of `support.bench.measure` on it,
    and record the upstream's peak in flight, the threads started and the CPU spent."""
    if target.bundled:
        target.journal.clear()
    before = thread_kinds()
    with serve_in_thread(app) as server:
        cpu_started = time.process_time()
        measured = await measure(server.base_url, concurrency=concurrency, n_requests=n_requests, latency_s=latency_s)
        cpu_s = time.process_time() - cpu_started
        threads = thread_kinds() - before  # started by this service (and kept, idle)
    return PatternRun(measured, _peak(target), threads, cpu_s / n_requests)


async def upstream_run(target: Target, *, concurrency: int, n_requests: int, latency_s: float) -> PatternRun:
    """The same load, with the same question, straight to the upstream's
    ``/chat/completions``: no service can be faster than the server behind it."""
    spec = RequestSpec(
        "POST",
        target.base_url + "/chat/completions",
        json={"model": target.model, "messages": [{"role": "user", "content": DEFAULT_BODY["prompt"]}]},
        headers={"Authorization": f"Bearer {target.api_key}"},  # sent, never printed
    )
    if target.bundled:
        target.journal.clear()
    cpu_started = time.process_time()
    load = await run_load(spec, concurrency=concurrency, n_requests=n_requests)
    cpu_s = time.process_time() - cpu_started
    measured = Measurement(load=load, latency_s=latency_s, probe_s=None)
    return PatternRun(measured, _peak(target), Counter(), cpu_s / n_requests)


async def interleaved_runs(
    apps: Mapping[str, Any],
    repeats: Mapping[str, int],
    target: Target,
    *,
    concurrency: int,
    n_requests: int,
    latency_s: float,
) -> dict[str, list[PatternRun]]:
    """Run each named app `repeats[name]` times, and the upstream alone
    `repeats[UPSTREAM_ALONE]` times, in rounds: every pattern once per round, so that a
    busy moment on a shared machine does not hit one pattern only. Returns every run."""
    runs: dict[str, list[PatternRun]] = {name: [] for name in [*apps, UPSTREAM_ALONE]}
    for attempt in range(max(repeats.values(), default=0)):
        for name, app in apps.items():
            if attempt < repeats.get(name, 0):
                runs[name].append(
                    await service_run(app, target, concurrency=concurrency, n_requests=n_requests, latency_s=latency_s)
                )
        if attempt < repeats.get(UPSTREAM_ALONE, 0):
            runs[UPSTREAM_ALONE].append(
                await upstream_run(target, concurrency=concurrency, n_requests=n_requests, latency_s=latency_s)
            )
    return runs


def format_runs(results: Mapping[str, PatternRun]) -> str:
    """One row per pattern: throughput, as a fraction of the upstream alone's (when it
    is among `results`), peak in flight at the upstream, threads started by kind, and
    CPU per request."""
    ceiling = results[UPSTREAM_ALONE].measured.load.throughput if UPSTREAM_ALONE in results else None
    rows = [
        [
            "pattern",
            "req/s",
            "vs upstream alone",
            "peak in flight",
            "AnyIO threads",
            "executor threads",
            "CPU ms/request",
        ]
    ]
    for name, run in results.items():
        throughput = run.measured.load.throughput
        rows.append(
            [
                name,
                f"{throughput:.1f}",
                f"{throughput / ceiling:.0%}" if ceiling else "-",
                "-" if run.peak is None else str(run.peak),
                str(run.threads["anyio"]),
                str(run.threads["executor"]),
                f"{run.cpu_per_request_s * 1e3:.1f}",
            ]
        )
    return text_table(rows)


def format_ceilings(results: Mapping[str, PatternRun], configured: Mapping[str, str]) -> str:
    """One row per pattern named in `configured`: the ceiling its libraries configure
    (text), the peak in flight measured at the upstream, the threads it started, and
    its throughput against the upstream alone."""
    ceiling = results[UPSTREAM_ALONE].measured.load.throughput if UPSTREAM_ALONE in results else None
    rows = [["fix", "configured ceiling", "peak in flight", "threads", "vs upstream"]]
    for name, setting in configured.items():
        run = results[name]
        rows.append(
            [
                name,
                setting,
                "-" if run.peak is None else str(run.peak),
                str(run.threads["anyio"] + run.threads["executor"]),
                f"{run.measured.load.throughput / ceiling:.0%}" if ceiling else "-",
            ]
        )
    return text_table(rows, numeric_from=2)
