"""The doctor's rules: stable codes, one-line titles, and what each message says.

Every message says what happens at runtime and what to do instead. Codes never change
meaning; a retired rule keeps its code reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule", "selected"]


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    message: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in [
        Rule(
            "OA101",
            "await on a sync OpenAI client call",
            "`await` on a call of the sync OpenAI client: the request is sent, blocks the event loop and is "
            "billed, then `await` raises TypeError (\"object ChatCompletion can't be used in 'await' "
            'expression"); use AsyncOpenAI, or drop `await` in a plain `def` route',
        ),
        Rule(
            "OA102",
            "sync OpenAI client call inside async def",
            "sync OpenAI client called inside `async def`: it blocks the event loop for the whole upstream "
            "call (retry back-off included), so every other request, /health too, waits; use AsyncOpenAI "
            "with `await`, make the route a plain `def`, or `await asyncio.to_thread(client...create, ...)`",
        ),
        Rule(
            "OA103",
            "AsyncOpenAI call not awaited",
            "AsyncOpenAI call not awaited: it returns a coroutine and sends no request "
            '("\'coroutine\' object has no attribute ...", "coroutine ... was never awaited"); add `await`',
        ),
        Rule(
            "OA104",
            "OpenAI client constructed per request",
            "OpenAI client constructed per request: every request builds a new client and connection pool "
            "(loading the CA bundle into a new SSL context: CPU in the route, on the event loop in `async def`), "
            "opens new TCP/TLS connections instead of reusing warm ones, and keeps them open until the client is "
            "closed or garbage-collected; create one client in the lifespan and share it (app.state + a "
            "dependency); for per-request settings use `client.with_options(...)`, which shares the pool",
        ),
        Rule(
            "OA105",
            "module-level AsyncOpenAI in a FastAPI app, never closed",
            "AsyncOpenAI created at import time in a FastAPI module and not closed in a lifespan: its "
            'connections bind to the first event loop that uses them ("RuntimeError: Event loop is closed" '
            "under TestClient without `with` or pytest-asyncio) and are never closed; create it in the lifespan "
            "(`async with AsyncOpenAI() as client: app.state.openai = client; yield`)",
        ),
        Rule(
            "OA106",
            "asyncio.run() inside a running event loop",
            "asyncio.run() where an event loop is already running (inside `async def`, or a notebook cell: the "
            'kernel runs a loop) raises "RuntimeError: asyncio.run() cannot be called from a running event '
            'loop"; `await` the coroutine instead',
        ),
        Rule(
            "OA107",
            "sync generator over a sync OpenAI stream in a streaming response",
            "sync generator over a sync OpenAI stream, served by StreamingResponse: when the client disconnects, "
            "Starlette stops pulling from it but nothing closes the stream, so the upstream keeps generating "
            "(and billing) to the end; use AsyncOpenAI with an async generator that closes the stream "
            "(`finally: await stream.close()`)",
        ),
        Rule(
            "OA108",
            "stream left open: the loop over it exits early, or is never reached",
            "loop over an OpenAI stream that can exit early (`break`, `return` or `raise`) with nothing closing "
            "the stream: the rest of the response is never read, so its HTTP connection stays checked out of the "
            "client's pool until the stream is garbage-collected (or, on the aiohttp transport, until the whole "
            "reply has arrived, if that comes first); each early exit leaks one for that long, and once the pool "
            'is exhausted every request waits for a free connection until it times out ("works for hours, then '
            'times out"); open it with `async with await client...create(..., stream=True) as stream:` (`with` '
            "for the sync client) or `finally: await stream.close()`",
        ),
        Rule(
            "OA109",
            "own retries around an OpenAI call whose client retries too",
            "retry (tenacity, backoff or a retry loop) around an OpenAI call whose client keeps the SDK's default "
            "retries: the SDK already retries connection errors, timeouts, 408/409/429 and 5xx with back-off, so "
            "every attempt of yours makes several upstream attempts; the counts multiply and the back-offs add up, "
            "holding a failing request far longer (and sending more load to an overloaded upstream) than either "
            "layer intends; keep one layer: `max_retries=0` on the client you retry yourself "
            "(or `client.with_options(max_retries=0)` for this call), or drop your retry",
        ),
        Rule(
            "OA110",
            "timeout=None on an OpenAI client or call in a service",
            "`timeout=None` (on the client, a call, or the `http_client` a client without its own timeout adopts "
            "it from) turns off every timeout of the request (connect, read, write, pool): an upstream that "
            "stops answering, or a connection dropped without a reset, holds the request, its connection and the "
            "caller forever; no timeout error is ever raised, so the SDK's retries never start either; keep a "
            "finite timeout (an `httpx.Timeout` with a short connect timeout), and bound a whole call with "
            "`asyncio.timeout(...)` if it needs a deadline",
        ),
        Rule(
            "OA111",
            "sync token provider given to AsyncAzureOpenAI",
            "sync token provider given to AsyncAzureOpenAI: the client calls it on the event loop before every "
            "request, and a sync azure.identity credential fetches and refreshes its token with blocking I/O "
            "(an HTTP call to Entra ID or the managed-identity endpoint, or an `az` subprocess), stalling every "
            "other request while it does; use `azure.identity.aio.get_bearer_token_provider` with an "
            "`azure.identity.aio` credential, or an `async def` provider",
        ),
        Rule(
            "OA112",
            "plain-def FastAPI dependency that only returns a shared client",
            "plain `def` dependency that only returns a shared client: FastAPI runs every sync dependency in "
            "the thread pool (`solve_dependencies` awaits `run_in_threadpool(call, ...)`, "
            "fastapi/dependencies/utils.py), so each request takes a thread hop for an attribute read, and waits "
            "for a free worker thread whenever the pool is busy (with sync routes or `to_thread` calls); "
            "make it `async def`, which FastAPI awaits on the event loop",
        ),
    ]
}

# Variants of a rule's message for a specific shape of the same mistake.
VARIANTS: dict[tuple[str, str], str] = {
    ("OA104", "per-call"): (
        "OpenAI client constructed on every call of this function and dropped after it: each call builds "
        "a new client and connection pool (loading the CA bundle into a new SSL context, on the event loop in "
        "`async def`), "
        "opens new TCP/TLS connections instead of reusing warm ones, and leaves them open until the client is "
        "garbage-collected; create one client at start-up (the lifespan) and pass it in, or use "
        "`async with AsyncOpenAI() as client:` where a short-lived client is really meant"
    ),
    ("OA108", "unread"): (
        "OpenAI stream opened, then left before the loop over it (a `return`, `raise`, `break` or `continue` "
        "between the call and the loop) with nothing closing it: the SDK closes a stream's response when its "
        "iteration ends or on `close()`, and a stream never iterated has no iteration to end, so not even "
        "garbage collection closes it; on the SDK's default transport its HTTP connection stays checked out of "
        "the client's pool for good (aiohttp's gives it back once the whole reply has arrived); each such exit "
        "leaks one, and once the pool is exhausted every request waits for a free connection until it times "
        "out; decide before opening the stream, or open it with "
        "`async with await client...create(..., stream=True) as stream:` (`with` for the sync client) "
        "around the check, or close it in `finally: await stream.close()`"
    ),
    ("OA103", "async-for"): (
        "`async for` over an AsyncOpenAI call that is not awaited: \"TypeError: 'async for' requires an object "
        'with __aiter__ method, got coroutine"; write `async for chunk in await client...create(..., stream=True)`'
    ),
    ("OA103", "return"): (
        "`return` of an AsyncOpenAI call without `await` in `async def`: the caller gets a coroutine, not the "
        "result, and no request is sent until someone awaits it; write `return await ...`"
    ),
}


def selected(code: str, select: list[str] | None, ignore: list[str] | None) -> bool:
    """True when `code` passes --select (any prefix matches, or none given) and --ignore."""
    if select and not any(code.startswith(p) for p in select):
        return False
    return not (ignore and any(code.startswith(p) for p in ignore))
