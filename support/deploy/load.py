"""Load on a multi-worker service: a burst at one instant, and a sustained load.

Which worker accepts a new connection is the kernel's choice: the workers all wait on the
one listening socket, and the first to wake takes what is queued. So a burst that arrives
at one instant can land on one worker, which sheds past its own limit while the others
idle; under a sustained load the connections spread and every worker's limit fills.
Each request here goes on a connection of its own, as separate callers' would.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Load", "burst", "sustained"]


@dataclass
class Load:
    """What the callers got: statuses, and for each admitted (200) call when it was sent and answered."""

    statuses: Counter[int] = field(default_factory=Counter)
    admitted: list[tuple[float, float]] = field(default_factory=list)  # time.time() seconds

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())


async def _post(http: httpx.AsyncClient, url: str, body: Any, load: Load) -> int:
    sent = time.time()
    try:
        status = (await http.post(url, json=body)).status_code
    except httpx.HTTPError:
        status = 0  # no answer at all
    load.statuses[status] += 1
    if status == 200:
        load.admitted.append((sent, time.time()))
    return status


def _client(headers: Mapping[str, str], timeout_s: float) -> httpx.AsyncClient:
    # No kept-alive connections: every call opens its own, and the kernel picks its worker.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(headers=dict(headers), timeout=timeout_s, limits=limits)


async def burst(
    url: str, body: Any, *, n: int, headers: Mapping[str, str] | None = None, timeout_s: float = 30.0
) -> Load:
    """`n` POSTs sent at the same instant."""
    load = Load()
    async with _client(headers or {}, timeout_s) as http:
        await asyncio.gather(*(_post(http, url, body, load) for _ in range(n)))
    return load


async def sustained(
    url: str,
    body: Any,
    *,
    clients: int,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    backoff_s: float = 0.05,
    timeout_s: float = 30.0,
) -> Load:
    """`clients` callers, each posting again as soon as it has an answer (after `backoff_s`
    when refused), until `seconds` have passed."""
    load = Load()
    end = time.monotonic() + seconds

    async def caller(http: httpx.AsyncClient) -> None:
        while time.monotonic() < end:
            if await _post(http, url, body, load) != 200:
                await asyncio.sleep(backoff_s)

    async with _client(headers or {}, timeout_s) as http:
        await asyncio.gather(*(caller(http) for _ in range(clients)))
    return load
