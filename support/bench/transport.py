"""The SDK's CPU per call with each HTTP transport, measured side by side in one process,
and the structural reason for the difference: how many pooled connections each examines per call.

Whole-service figures on a small shared machine move by tens of percent between runs.
This isolates the one thing the transport changes: the client-side CPU time of an
``AsyncOpenAI`` call (request building, the transport, response parsing). The two
transports alternate round by round, in alternating order, against the same upstream,
so drift on the machine hits both alike; the median round decides. That CPU figure is a
measurement; `connections_examined` is a count, the same on any machine:

- httpx2's pool (``httpcore2/_async/connection_pool.py``,
  ``AsyncConnectionPool._assign_requests_to_connections``) runs whenever a request enters
  or leaves the pool and asks every idle connection ``has_expired()``, which probes its
  socket (``is_readable``): the work per call grows with the pool;
- aiohttp's connector (``aiohttp/connector.py``, ``BaseConnector._get``) pops one
  connection from the host's queue and checks that one (``ResponseHandler.is_connected``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx2
from aiohttp.client_proto import ResponseHandler
from httpcore2._async.connection import AsyncHTTPConnection
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

TRANSPORTS: dict[str, type[httpx2.AsyncClient]] = {"httpx": DefaultAsyncHttpxClient, "aiohttp": DefaultAioHttpClient}
# What each transport's pool calls once per connection it examines (see the module's docstring).
EXAMINE: dict[str, tuple[type, str]] = {
    "httpx": (AsyncHTTPConnection, "has_expired"),
    "aiohttp": (ResponseHandler, "is_connected"),
}
MESSAGES = [{"role": "user", "content": "Why should an async route await an async client?"}]


@dataclass
class TransportComparison:
    calls: int
    concurrency: int
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # CPU per call, one value per round
    # transport -> pool size -> connections examined per call, with that many idle connections pooled
    examined: dict[str, dict[int, float]] = field(default_factory=dict)

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
            "examined_per_call": {name: {str(k): v for k, v in by.items()} for name, by in self.examined.items()},
        }


def _caller(client: AsyncOpenAI, model: str, headers: dict[str, str] | None = None) -> Callable[[], Any]:
    return lambda: client.chat.completions.create(
        model=model,
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers=headers,
    )


async def _cpu_per_call(client: AsyncOpenAI, model: str, calls: int, concurrency: int) -> float:
    gate, call = asyncio.Semaphore(concurrency), _caller(client, model)

    async def one() -> None:
        async with gate:
            await call()

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - started) / calls * 1000


async def connections_examined(
    upstream_url: str, *, pool_size: int, calls: int = 3, api_key: str = "bench", model: str = "gpt-4o-mini"
) -> dict[str, float]:
    """Per transport: connections its pool examines per call, with `pool_size` idle connections pooled.

    `pool_size` concurrent calls open that many connections; then `calls` calls one after
    the other, while counting the pool's per-connection check (`EXAMINE`). Those calls ask
    the bundled upstream to answer at once (``x-upstream-latency: 0``, and the fill's 0.1 s;
    another server ignores the header): a count does not depend on how long a call takes."""
    examined: dict[str, float] = {}
    for name, factory in TRANSPORTS.items():
        async with AsyncOpenAI(base_url=upstream_url, api_key=api_key, http_client=factory()) as client:
            # the fill's calls overlap for a tenth of a second: long enough to open `pool_size` connections
            fill = _caller(client, model, {"x-upstream-latency": "0.1"})
            call = _caller(client, model, {"x-upstream-latency": "0"})
            await asyncio.gather(*(fill() for _ in range(pool_size)))
            cls, method = EXAMINE[name]
            checked = 0
            original = getattr(cls, method)

            def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                nonlocal checked
                checked += 1
                return _original(self, *args, **kwargs)

            with mock.patch.object(cls, method, counting):
                for _ in range(calls):
                    await call()
            examined[name] = checked / calls
    return examined


async def compare_transports(
    upstream_url: str,
    *,
    rounds: int = 5,
    calls: int = 200,
    concurrency: int = 50,
    api_key: str = "bench",
    model: str = "gpt-4o-mini",
) -> TransportComparison:
    """CPU per call of each transport, `rounds` times each, against the upstream at `upstream_url`;
    and the connections each examines per call with one and with `concurrency` connections pooled."""
    result = TransportComparison(calls, concurrency, {name: [] for name in TRANSPORTS})
    for pool_size in sorted({1, concurrency}):
        examined = await connections_examined(upstream_url, pool_size=pool_size, api_key=api_key, model=model)
        for name, per_call in examined.items():
            result.examined.setdefault(name, {})[pool_size] = per_call
    clients = {
        name: AsyncOpenAI(base_url=upstream_url, api_key=api_key, http_client=factory())
        for name, factory in TRANSPORTS.items()
    }
    try:
        for client in clients.values():  # first-call costs (platform probe, pool) out of the way
            await _cpu_per_call(client, model, concurrency, concurrency)
        for round_ in range(rounds):
            order = list(TRANSPORTS) if round_ % 2 == 0 else list(reversed(TRANSPORTS))
            for name in order:
                result.cpu_ms[name].append(await _cpu_per_call(clients[name], model, calls, concurrency))
    finally:
        for client in clients.values():
            await client.close()
    return result
