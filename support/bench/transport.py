"""The SDK's CPU per call with each HTTP transport, measured side by side in one process.

Whole-service figures on a small shared machine move by tens of percent between runs.
This isolates the one thing the transport changes: the client-side CPU time of an
``AsyncOpenAI`` call (request building, the transport, response parsing). The two
transports alternate round by round, in alternating order, against the same upstream,
so drift on the machine hits both alike; the median round decides.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

TRANSPORTS: dict[str, type[httpx2.AsyncClient]] = {"httpx": DefaultAsyncHttpxClient, "aiohttp": DefaultAioHttpClient}
MESSAGES = [{"role": "user", "content": "Why should an async route await an async client?"}]


@dataclass
class TransportComparison:
    calls: int
    concurrency: int
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # CPU per call, one value per round

    def median_ms(self, transport: str) -> float:
        return statistics.median(self.cpu_ms[transport])

    @property
    def aiohttp_vs_httpx(self) -> float:
        """aiohttp's median CPU per call as a fraction of httpx's."""
        return self.median_ms("aiohttp") / self.median_ms("httpx")

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "concurrency": self.concurrency,
            "cpu_ms_per_call": self.cpu_ms,
            "median_ms": {name: self.median_ms(name) for name in self.cpu_ms},
            "aiohttp_vs_httpx": self.aiohttp_vs_httpx,
        }


async def _cpu_per_call(client: AsyncOpenAI, calls: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - started) / calls * 1000


async def compare_transports(
    upstream_url: str, *, rounds: int = 5, calls: int = 200, concurrency: int = 50
) -> TransportComparison:
    """CPU per call of each transport, `rounds` times each, against the upstream at `upstream_url`."""
    result = TransportComparison(calls, concurrency, {name: [] for name in TRANSPORTS})
    clients = {
        name: AsyncOpenAI(base_url=upstream_url, api_key="bench", http_client=factory())
        for name, factory in TRANSPORTS.items()
    }
    try:
        for client in clients.values():  # first-call costs (platform probe, pool) out of the way
            await _cpu_per_call(client, concurrency, concurrency)
        for round_ in range(rounds):
            order = list(TRANSPORTS) if round_ % 2 == 0 else list(reversed(TRANSPORTS))
            for name in order:
                result.cpu_ms[name].append(await _cpu_per_call(clients[name], calls, concurrency))
    finally:
        for client in clients.values():
            await client.close()
    return result
