"""Who can stop an upstream call: a client that leaves, a deadline, the SDK's timeout.

Each experiment has two sides. The caller's side is what its ``await`` returned or
raised (`caller_outcome`, `under_deadline`). The upstream's side is in the bundled upstream's journal:
whether the call ran to the end and was billed, or saw its client disconnect
(`support.upstream_calls` waits until the journal has the final word). `client_leaves`
runs the first experiment of notebook 03: an HTTP client that gives up on a service
before the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from .serve import serve_in_thread
from .target import Target
from .upstream.journal import JournalEntry
from .upstream_calls import calls_from_now

__all__ = ["caller_outcome", "client_leaves", "under_deadline"]


async def caller_outcome(awaitable: Awaitable[object]) -> str:
    """``"answered"``, or the name of the exception the awaitable raised: what the caller
    saw, as a value a table or an assertion can hold. (`support.outcomes.outcome` is the
    sync counterpart, with the exception's message.)"""
    try:
        await awaitable
    except Exception as exc:
        return type(exc).__name__
    return "answered"


async def under_deadline(start: Callable[[], Awaitable[object]], deadline_s: float) -> tuple[str, float]:
    """Start a call and give it `deadline_s`, the way a route would bound it; return what
    the caller saw (``"answered"`` or ``"TimeoutError"``) and how long it waited.

    ``asyncio.timeout`` cancels the task that awaits the call. Whether that stops the
    call itself depends on how it was started: the upstream's journal tells.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline_s):
            await start()
        caller = "answered"
    except TimeoutError:
        caller = "TimeoutError"
    return caller, time.perf_counter() - started


async def client_leaves(
    app: Any,
    target: Target,
    *,
    json: Any,
    read_timeout_s: float,
    path: str = "/chat",
    settle_timeout_s: float = 30.0,
) -> tuple[str, list[JournalEntry]]:
    """Serve `app`, ``POST path`` with a client that stops waiting after `read_timeout_s`,
    and return what that client got and the upstream calls the request caused, once the
    upstream is done with them (none to read from a server that is not bundled).

    The service keeps running until the upstream has settled: a service that stopped
    first would cut its own upstream call and hide what the departed client left behind.
    """
    with serve_in_thread(app) as service:
        calls = calls_from_now(target)
        impatience = httpx2.Timeout(10.0, read=read_timeout_s)  # gives up waiting for the response
        async with httpx2.AsyncClient(base_url=service.base_url, timeout=impatience) as impatient:
            got = await caller_outcome(impatient.post(path, json=json))
        return got, await calls.settled(timeout=settle_timeout_s)
