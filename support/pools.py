"""An SDK client's connection pool, seen from inside and from the kernel.

A leaked connection shows in two places: the HTTP transport's pool lends it to a
response nobody closes (so it is never offered to the next request), and the kernel
keeps its socket open (a descriptor in this process). `pool_snapshot` reads both, so a
notebook can show one growing with the other and a test can tell a leak from a busy
pool. The pool view reads private attributes of the two transports the SDK ships
(httpx2's connection pool and aiohttp's connector), because neither publishes a count;
the kernel view (psutil) is the check that does not depend on them.

- `pooled_client`: an `AsyncOpenAI` on either transport with a small pool, so that what
  takes hours with the SDK's default of 1,000 connections shows in seconds;
- `pool_snapshot`: connections lent out and kept idle, sockets to the server, descriptors;
- `sdk_default_pool_wait`: how long the SDK waits for a free connection by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
import psutil
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient
from openai._constants import DEFAULT_TIMEOUT

__all__ = ["TRANSPORTS", "PoolSnapshot", "Transport", "pool_snapshot", "pooled_client", "sdk_default_pool_wait"]

Transport = Literal["httpx2", "aiohttp"]
TRANSPORTS: tuple[Transport, ...] = ("httpx2", "aiohttp")


def pooled_client(
    base_url: str,
    api_key: str,
    transport: Transport,
    *,
    max_connections: int,
    pool_timeout: float,
    keepalive_expiry: float | None = 5.0,
    read_timeout: float = DEFAULT_TIMEOUT.read or 600.0,
    **options: Any,
) -> AsyncOpenAI:
    """An `AsyncOpenAI` whose pool holds at most `max_connections` and whose requests wait
    at most `pool_timeout` seconds for one; `keepalive_expiry` retires a connection idle that
    long, `read_timeout` bounds each wait for the server (the SDK's default: 600 s). The SDK's
    ``Default*Client`` classes keep everything else at the SDK's defaults; `options` go to
    `AsyncOpenAI`."""
    limits = httpx2.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=keepalive_expiry
    )
    timeout = httpx2.Timeout(read_timeout, connect=DEFAULT_TIMEOUT.connect, pool=pool_timeout)
    http_client: httpx2.AsyncClient
    if transport == "httpx2":
        http_client = DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
    elif transport == "aiohttp":
        http_client = DefaultAioHttpClient(limits=limits, timeout=timeout)
    else:
        raise ValueError(f"unknown transport {transport!r}: expected one of {', '.join(TRANSPORTS)}")
    return AsyncOpenAI(base_url=base_url, api_key=api_key, http_client=http_client, timeout=timeout, **options)


@dataclass(frozen=True)
class PoolSnapshot:
    """One look at a client's pool and this process's sockets."""

    lent: int  # connections serving a response that is still open (not available to others)
    idle: int  # connections kept alive, free for the next request
    sockets: int  # this process's TCP sockets to the server (the kernel's count)
    descriptors: int  # this process's open file descriptors

    @property
    def total(self) -> int:
        return self.lent + self.idle


def pool_snapshot(client: AsyncOpenAI, base_url: str | None = None) -> PoolSnapshot:
    """Count `client`'s pooled connections and this process's sockets to `base_url`
    (default: the client's own base URL)."""
    lent, idle = _pool_counts(client)
    split = urlsplit(base_url or str(client.base_url))
    port = split.port or (443 if split.scheme == "https" else 80)
    process = psutil.Process()
    sockets = sum(1 for c in process.net_connections(kind="tcp") if c.raddr and c.raddr.port == port)
    return PoolSnapshot(lent=lent, idle=idle, sockets=sockets, descriptors=process.num_fds())


def _pool_counts(client: AsyncOpenAI) -> tuple[int, int]:
    transport: Any = client._client._transport  # the httpx2 client the SDK sends through
    pool = getattr(transport, "_pool", None)
    if pool is not None:  # httpx2's default transport: an httpcore2 connection pool
        connections = pool.connections
        lent = sum(1 for c in connections if not c.is_idle())
        return lent, len(connections) - lent
    session = getattr(transport, "client", None)  # the SDK's aiohttp transport: a ClientSession, made lazily
    connector = getattr(session, "connector", None)
    if connector is None:
        return 0, 0
    return len(connector._acquired), sum(len(idle) for idle in connector._conns.values())


def sdk_default_pool_wait() -> float | None:
    """Seconds the SDK's default timeout lets a request wait for a free connection
    (``openai/_constants.py``, ``DEFAULT_TIMEOUT``): the read timeout's 600 s, since it sets
    no pool timeout of its own. A leaked pool makes every call wait that long per attempt."""
    return DEFAULT_TIMEOUT.pool
