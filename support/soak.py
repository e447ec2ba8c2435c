"""A bounded soak: thousands of mixed calls, and what the process holds as they go.

"Works for hours, then every call times out" is a slope, not an event: each bad call
keeps a little (a connection, its socket, its buffers) and the pool runs dry much later.
A soak makes the slope visible in seconds. It sends a fixed, repeating mix of calls (plain
ones, streams read to the end, streams the caller abandons, calls that meet a fault) from a
few concurrent workers, and samples the process at the start, the middle and the end:
connections lent and idle, sockets to the server, descriptors, resident memory. Each
sample is taken after a full garbage collection, so it shows what is *retained*, not what
merely waits for the collector.

The abandoning code is a parameter: the leaky patterns of `support.stream_leaks` give a
slope, their fixes a flat line.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from openai import APIError, AsyncOpenAI

from .pools import PoolSnapshot, Transport, pool_snapshot, pooled_client
from .stream_leaks import PROMPT, Pattern, read_to_the_end
from .tables import text_table
from .threads import proc_status

__all__ = ["FAULTS", "MIX", "SoakReport", "SoakSample", "format_outcomes", "format_samples", "soak"]

# One round of the mix; call i does MIX[i % len(MIX)]. Faulted calls take the next fault in
# FAULTS, sent as the bundled upstream's x-upstream-fault header.
MIX: tuple[str, ...] = ("plain", "stream", "abandon", "plain", "stream", "fault", "plain", "abandon", "stream", "plain")
FAULTS: tuple[str, ...] = ("stream_error;after=2", "stream_drop;after=2", "server_error;status=503", "reset")


@dataclass(frozen=True)
class SoakSample:
    """The process after `done` calls, once a full collection has run."""

    done: int
    pool: PoolSnapshot
    rss_kib: int | None


@dataclass
class SoakReport:
    """One soak: what each kind of call ended in, and the samples."""

    transport: Transport
    abandon: str  # the name of the pattern that abandons streams
    calls: int
    samples: list[SoakSample] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # "plain: ok", "fault reset: APIConnectionError", ...
    wall_s: float = 0.0

    def growth(self) -> PoolSnapshot:
        """End minus start, field by field (the memory growth is `rss_growth_kib`)."""
        first, last = self.samples[0].pool, self.samples[-1].pool
        return PoolSnapshot(
            lent=last.lent - first.lent,
            idle=last.idle - first.idle,
            sockets=last.sockets - first.sockets,
            descriptors=last.descriptors - first.descriptors,
        )

    def rss_growth_kib(self) -> int | None:
        first, last = self.samples[0].rss_kib, self.samples[-1].rss_kib
        return None if first is None or last is None else last - first


async def soak(
    base_url: str,
    api_key: str,
    model: str,
    transport: Transport,
    abandon: tuple[str, Pattern],
    *,
    calls: int,
    concurrency: int,
    pool_size: int,
    pool_timeout: float,
    faults: Sequence[str] = FAULTS,
) -> SoakReport:
    """Make `calls` calls of the `MIX`, `concurrency` at a time, on a fresh client. With no
    `faults` (a server that is not the bundled upstream) faulted calls are plain ones."""
    if calls < 2 or concurrency < 1:
        raise ValueError("a soak needs at least 2 calls and 1 worker")
    client = pooled_client(
        base_url, api_key, transport, max_connections=pool_size, pool_timeout=pool_timeout, max_retries=0
    )
    report = SoakReport(transport=transport, abandon=abandon[0], calls=calls)
    started = time.perf_counter()

    async def run(indices: range) -> None:
        pending = iter(indices)

        async def worker() -> None:
            for index in pending:  # one shared iterator: each call is taken once
                kind = MIX[index % len(MIX)]
                if kind == "fault" and not faults:
                    kind = "plain"
                fault = faults[(index // len(MIX)) % len(faults)] if kind == "fault" else None
                label = f"fault {fault}" if fault else kind
                report.outcomes[f"{label}: {await _one_call(client, model, kind, abandon[1], fault)}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    try:
        report.samples.append(await _sample(client, 0))
        for first, last in ((0, calls // 2), (calls // 2, calls)):  # a sample between halves: nothing in flight
            await run(range(first, last))
            report.samples.append(await _sample(client, last))
    finally:
        report.wall_s = time.perf_counter() - started
        await client.close()
    return report


def format_samples(reports: list[SoakReport]) -> str:
    """One row per sample of each report: what the process held after so many calls."""
    rows = [["transport", "abandoning code", "calls", "lent", "idle", "sockets", "descriptors", "RSS MiB"]]
    for report in reports:
        for sample in report.samples:
            pool, rss = sample.pool, "n/a" if sample.rss_kib is None else f"{sample.rss_kib / 1024:.1f}"
            counts = [sample.done, pool.lent, pool.idle, pool.sockets, pool.descriptors]
            rows.append([report.transport, report.abandon, *map(str, counts), rss])
    return text_table(rows, numeric_from=2)


def format_outcomes(reports: list[SoakReport]) -> str:
    """What each kind of call ended in, one column per report (e.g. one per transport)."""
    kinds = sorted({outcome.split(": ")[0] for report in reports for outcome in report.outcomes})
    rows = [["call", *(f"{r.transport} ({r.abandon})" for r in reports)]]
    for kind in kinds:
        cells = []
        for report in reports:
            ended = [(o.split(": ")[1], n) for o, n in sorted(report.outcomes.items()) if o.split(": ")[0] == kind]
            cells.append(", ".join(f"{result} x{n}" for result, n in ended))
        rows.append([kind, *cells])
    return text_table(rows, numeric_from=99)


async def _one_call(client: AsyncOpenAI, model: str, kind: str, abandon: Pattern, fault: str | None) -> str:
    try:
        if kind == "plain":
            await client.chat.completions.create(model=model, messages=PROMPT, max_completion_tokens=8)
        elif kind == "stream":
            await read_to_the_end(client, model)
        elif kind == "abandon":
            await abandon(client, model)
        else:
            faulted = client.with_options(default_headers={"x-upstream-fault": fault or ""})
            await read_to_the_end(faulted, model)
    except APIError as error:
        return type(error).__name__
    return "ok"


async def _sample(client: AsyncOpenAI, done: int) -> SoakSample:
    gc.collect()
    await asyncio.sleep(0.05)  # the collector schedules abandoned streams' aclose() as tasks
    return SoakSample(done=done, pool=pool_snapshot(client), rss_kib=proc_status().vm_rss_kib)
