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
from dataclasses import dataclass
from typing import Any

from openai._constants import DEFAULT_CONNECTION_LIMITS, DEFAULT_MAX_RETRIES

from .pools import Transport, pooled_client
from .stream_leaks import PROMPT, plain_call
from .tables import text_table
from .upstream import RunningUpstream, run_upstream

__all__ = ["SDK_KEEPALIVE_EXPIRY", "Case", "StaleCall", "cases", "format_stale_calls", "stale_call", "stale_calls"]

# How long the SDK's pool keeps an idle connection (openai/_constants.py, DEFAULT_CONNECTION_LIMITS:
# httpx2.Limits' own default; None would mean for ever); the aiohttp transport passes it on
# as aiohttp's keepalive_timeout.
SDK_KEEPALIVE_EXPIRY: float = DEFAULT_CONNECTION_LIMITS.keepalive_expiry or float("inf")


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
        outcome, seconds = await plain_call(client, model)
    await asyncio.sleep(0.05)  # a silent connection is recorded once the client hangs up
    attempts = [
        f"connection {e.connection}: {e.outcome}" + (f" ({e.fault})" if e.fault else "")
        for e in upstream.journal.entries()
        if e.seq not in before and e.endpoint == "chat.completions"
    ]
    settings = upstream.settings
    path = settings.stale_mode if settings.stale_after is not None else "closed by the server"
    return StaleCall(transport, path, max_retries, keepalive_expiry, outcome, seconds, attempts)


@dataclass(frozen=True)
class Case:
    """What the path does to an idle connection, and how the client is set up."""

    path: str  # "reset" or "silent" (a middlebox forgot it), or "closed by the server"
    max_retries: int
    keepalive_expiry: float


def cases(stale_after: float) -> list[Case]:
    """The cases a notebook compares: each path without retries and with the SDK's default
    retries, then a client that retires idle connections before the path forgets them."""
    kept = SDK_KEEPALIVE_EXPIRY
    sooner = stale_after / 2
    return [
        Case("reset", 0, kept),
        Case("reset", DEFAULT_MAX_RETRIES, kept),
        Case("silent", 0, kept),
        Case("silent", DEFAULT_MAX_RETRIES, kept),
        Case("reset", 0, sooner),
        Case("silent", 0, sooner),
        Case("closed by the server", 0, kept),
    ]


async def stale_calls(
    api_key: str,
    model: str,
    transport: Transport,
    *,
    stale_after: float,
    idle_s: float,
    read_timeout: float,
    **upstream_settings: Any,
) -> list[StaleCall]:
    """Every one of `cases`, each on a bundled upstream of its own (so the journal is the
    case's): a middlebox forgetting connections idle past `stale_after`, or a server
    closing them itself after that long (its ``keep_alive``)."""
    if not stale_after < idle_s < SDK_KEEPALIVE_EXPIRY:
        raise ValueError(
            f"need stale_after < idle_s < {SDK_KEEPALIVE_EXPIRY} s (the SDK's keepalive_expiry), "
            f"got {stale_after} and {idle_s}"
        )
    calls = []
    for case in cases(stale_after):
        if case.path == "closed by the server":
            path: dict[str, Any] = {"keep_alive": stale_after}
        else:
            path = {"stale_after": stale_after, "stale_mode": case.path, "keep_alive": idle_s * 4}
        async with run_upstream(api_key=api_key, **upstream_settings, **path) as upstream:
            calls.append(
                await stale_call(
                    upstream,
                    api_key,
                    model,
                    transport,
                    idle_s=idle_s,
                    max_retries=case.max_retries,
                    keepalive_expiry=case.keepalive_expiry,
                    read_timeout=read_timeout,
                )
            )
    return calls


def format_stale_calls(calls: list[StaleCall]) -> str:
    """A table of `calls`: the case, what the caller got, what the upstream saw."""
    header = ["transport", "the idle connection was", "retries", "keepalive_expiry", "the caller got", "after"]
    rows = [[*header, "the upstream saw"]]
    for call in calls:
        rows.append(
            [
                call.transport,
                call.path,
                str(call.max_retries),
                f"{call.keepalive_expiry:g} s",
                call.outcome,
                f"{call.seconds:.2f} s",
                "; ".join(call.attempts),
            ]
        )
    return text_table(rows, numeric_from=99)
