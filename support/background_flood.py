"""A burst of tickets whose follow-ups run as background tasks, and what two health probes see meanwhile (15).

`flood` sends `support.apps.background` a burst of tickets at once on one of its routes
(a ``def`` task with the sync client, or an ``async def`` task with `AsyncOpenAI`). While
the follow-ups run, it probes the ``def`` health route and the ``async def`` one over and
over, each on a connection of its own, and samples the service loop's AnyIO thread limiter
from inside that loop. It starts once no token of that limiter is borrowed, stops when
every ticket has its summary, and reports the probes' times, the limiter's peaks, and
(bundled upstream) the most model calls in flight at once.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from anyio import to_thread

from .serve import RunningServer
from .tables import text_table
from .target import Target
from .threads import run_in, server_loop, watch
from .upstream_calls import calls_from_now, most_in_flight

__all__ = ["PROBES", "ROUTES", "Flood", "flood", "table"]

ROUTES = {"def task, sync client": "/tickets/sync-task", "async def task, AsyncOpenAI": "/tickets"}
PROBES = ("/health/def", "/health")
TICKET = {"prompt": "The export button does nothing since the update; I need my invoices by Friday."}


@dataclass
class Flood:
    """What one burst of tickets did to the service."""

    task: str  # a key of ROUTES
    tickets: int
    statuses: Counter[int]  # of the POSTs
    accepted_s: float  # until every POST was answered
    done_s: float  # until every ticket had its summary
    failed: int  # follow-ups whose model call failed
    total_tokens: int  # the service loop's limiter
    borrowed_peak: int
    waiting_peak: int
    probes: dict[str, list[float]] = field(default_factory=dict)  # path -> seconds of each probe, in order
    upstream_peak: int | None = None  # most model calls in flight at once (bundled upstream only)

    def worst(self, path: str) -> float:
        return max(self.probes[path])

    def median(self, path: str) -> float:
        return statistics.median(self.probes[path])


async def _probe(base_url: str, path: str, stop: asyncio.Event, times: list[float], timeout_s: float) -> None:
    """GET `path` one after another (a short pause between) until `stop` is set, at least once."""
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as http:
        await http.get(path)  # open the connection before timing
        while True:
            started = time.perf_counter()
            response = await http.get(path)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"probe {path} answered {response.status_code}")
            if stop.is_set():
                return
            await asyncio.sleep(0.02)


async def _borrowed() -> int:
    return int(to_thread.current_default_thread_limiter().borrowed_tokens)


async def _quiet(loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
    """Wait until no thread of `loop`'s limiter is borrowed: a def task that has written its
    summary may still be returning its token, and the next flood must not count it."""
    deadline = time.monotonic() + timeout_s
    while await run_in(loop, _borrowed()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the service's limiter still had tokens borrowed after {timeout_s:g} s")
        await asyncio.sleep(0.01)


async def _counts(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/tickets")
    counts: dict[str, int] = response.json()
    return counts


async def flood(
    server: RunningServer, task: str, tickets: int, *, target: Target | None = None, timeout_s: float = 60.0
) -> Flood:
    """Send `tickets` tickets at once to the route of `task` (a key of `ROUTES`) on the served
    `support.apps.background`, probe both health routes until every summary exists."""
    if task not in ROUTES:
        raise ValueError(f"task must be one of {sorted(ROUTES)}, not {task!r}")
    if tickets < 1:
        raise ValueError("tickets must be at least 1")
    calls = calls_from_now(target) if target is not None else None
    stop = asyncio.Event()
    probes: dict[str, list[float]] = {path: [] for path in PROBES}
    limits = httpx.Limits(max_connections=tickets + 1)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout_s, limits=limits) as http:
        before = await _counts(http)
        await _quiet(server_loop(server), timeout_s)
        async with watch(server_loop(server), interval=0.005) as peaks:
            probing = [asyncio.create_task(_probe(server.base_url, p, stop, probes[p], timeout_s)) for p in PROBES]
            started = time.perf_counter()
            replies = await asyncio.gather(*(http.post(ROUTES[task], json=TICKET) for _ in range(tickets)))
            accepted_s = time.perf_counter() - started
            deadline = started + timeout_s
            while (counts := await _counts(http))["waiting"] > before["waiting"]:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{counts['waiting']} tickets still waiting after {timeout_s:g} s")
                await asyncio.sleep(0.01)
            done_s = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*probing)
        failed = counts["failed"] - before["failed"]
    entries = await calls.settled(at_least=tickets, timeout=timeout_s) if calls is not None else []
    return Flood(
        task,
        tickets,
        Counter(r.status_code for r in replies),
        accepted_s,
        done_s,
        failed,
        peaks.total_tokens,
        peaks.borrowed_tokens,
        peaks.tasks_waiting,
        probes,
        most_in_flight(entries) if entries else None,
    )


def table(floods: list[Flood]) -> str:
    """The floods side by side: the POSTs, the limiter, the probes (worst and median), the upstream."""
    rows = [
        [
            "follow-up",
            "tickets",
            "202s",
            "tokens borrowed",
            "tasks waiting",
            "model calls at once",
            *(f"{p} worst s" for p in PROBES),
            *(f"{p} median s" for p in PROBES),
            "all summarised s",
        ]
    ]
    for f in floods:
        rows.append(
            [
                f.task,
                str(f.tickets),
                str(f.statuses.get(202, 0)),
                f"{f.borrowed_peak} of {f.total_tokens}",
                str(f.waiting_peak),
                "-" if f.upstream_peak is None else str(f.upstream_peak),
                *(f"{f.worst(p):.3f}" for p in PROBES),
                *(f"{f.median(p):.3f}" for p in PROBES),
                f"{f.done_s:.2f}",
            ]
        )
    return text_table(rows, numeric_from=1)
