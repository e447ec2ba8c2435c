"""A kept-alive connection that something on the path has forgotten, and what each client does.

Between two calls a pooled connection sits idle. A NAT, a load balancer or a proxy with a
shorter idle timeout than both ends may drop it meanwhile; the client, not told, sends the
next request on it and meets a reset (the close crossed the request on the wire) or
silence (the flow was forgotten: nothing ever answers). The bundled upstream acts that
middlebox out with ``stale_after`` and ``stale_mode``. `stale_call` makes one call on a
connection that has idled past it and reports what the caller got and what the upstream's
journal saw, attempt by attempt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from openai import APIError

from .pools import Transport, pooled_client
from .stream_leaks import PROMPT
from .upstream import RunningUpstream

__all__ = ["StaleCall", "stale_call"]


@dataclass(frozen=True)
class StaleCall:
    """One call after an idle gap, as the caller and the upstream saw it."""

    transport: Transport
    path: str  # what the path did to the idle connection: "reset", "silent", or "closed by the server"
    max_retries: int
    keepalive_expiry: float
    outcome: str  # "ok" or the SDK exception's class
    seconds: float  # the call's wall time, retries included
    attempts: list[str]  # per attempt the upstream saw: "connection 3: reset (stale_connection)"


async def stale_call(
    upstream: RunningUpstream,
    api_key: str,
    model: str,
    transport: Transport,
    *,
    idle_s: float,
    max_retries: int,
    keepalive_expiry: float,
    read_timeout: float,
) -> StaleCall:
    """Call once (opening a connection), idle `idle_s` seconds, call again and report the
    second call. The upstream is started with ``stale_after`` below `idle_s` (a middlebox
    forgets the connection) or with ``keep_alive`` below it (the server closes it), and
    nothing else calls it meanwhile (the journal's new entries are this call's)."""
    client = pooled_client(
        upstream.base_url,
        api_key,
        transport,
        max_connections=1,
        pool_timeout=read_timeout,
        keepalive_expiry=keepalive_expiry,
        read_timeout=read_timeout,
        max_retries=max_retries,
    )
    async with client:
        await client.chat.completions.create(model=model, messages=PROMPT, max_completion_tokens=4)
        await asyncio.sleep(idle_s)
        before = {e.seq for e in upstream.journal.entries()}
        started = time.perf_counter()
        try:
            await client.chat.completions.create(model=model, messages=PROMPT, max_completion_tokens=4)
            outcome = "ok"
        except APIError as error:
            outcome = type(error).__name__
        seconds = time.perf_counter() - started
    await asyncio.sleep(0.05)  # a silent connection is recorded once the client hangs up
    attempts = [
        f"connection {e.connection}: {e.outcome}" + (f" ({e.fault})" if e.fault else "")
        for e in upstream.journal.entries()
        if e.seq not in before and e.endpoint == "chat.completions"
    ]
    settings = upstream.settings
    path = settings.stale_mode if settings.stale_after is not None else "closed by the server"
    return StaleCall(transport, path, max_retries, keepalive_expiry, outcome, seconds, attempts)
