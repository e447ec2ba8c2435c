"""Ways to leave a stream open, the ways to close it, and what each does to the pool.

Each pattern is the body of a handler that opens a streamed chat completion. The three
leaky ones are what real code does: stop reading once it has what it wanted, or open
the stream and then leave before reading it (an early return, a check that raises, a
client that went away before the response started). `leak_experiment` runs one pattern
a few times on a client with a small pool, then shows what the pool still lends out,
what is left after a garbage collection, and whether the next plain call gets a
connection at all.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from openai import APIError, AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from .pools import PoolSnapshot, Transport, pool_snapshot, pooled_client
from .tables import text_table

__all__ = [
    "FIXES",
    "LEAKS",
    "LeakRow",
    "Pattern",
    "format_leak_rows",
    "leak_experiment",
    "lent_until_the_reply_ends",
    "plain_call",
]

Pattern = Callable[[AsyncOpenAI, str], Awaitable[None]]
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me a story."}]
SHORT_REPLY_TOKENS = 4  # a stream read to the end is this long: reading it whole takes little time


async def over_budget() -> bool:
    """Stands for any check between opening a stream and reading it that says: stop."""
    return True


async def read_to_the_end(client: AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(
        model=model, messages=PROMPT, stream=True, max_completion_tokens=SHORT_REPLY_TOKENS
    )
    async for _chunk in stream:
        pass


async def break_early(client: AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    async for _chunk in stream:
        break  # found what it wanted: a stop word, a tool call, a client that left


async def return_before_reading(client: AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    if await over_budget():  # or a raise, or a client that left before the response started
        return
    async for _chunk in stream:
        pass


async def break_inside_async_with(client: AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    async with stream:  # closes the response (and frees its connection) however the block ends
        async for _chunk in stream:
            break


async def return_with_close_in_finally(client: AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    try:
        if await over_budget():
            return
        async for _chunk in stream:
            pass
    finally:
        await stream.close()


LEAKS: dict[str, Pattern] = {
    "read to the end": read_to_the_end,
    "break early": break_early,
    "return before reading": return_before_reading,
}
FIXES: dict[str, Pattern] = {
    "break inside async with": break_inside_async_with,
    "return, close in finally": return_with_close_in_finally,
}


@dataclass(frozen=True)
class LeakRow:
    """What `repeats` runs of one pattern left behind on one transport."""

    transport: Transport
    pattern: str
    repeats: int
    failed: int  # runs that got no connection (the pool was full for the whole pool timeout)
    after: PoolSnapshot  # right after the runs
    after_gc: PoolSnapshot  # after a full garbage collection
    loop_errors: int  # errors the event loop reported while the streams were left or collected
    next_call: str  # what a plain call got afterwards: "ok" or the exception's class
    next_call_s: float
    runs_s: float  # how long the runs took: streams longer than this were still arriving at `after`


async def leak_experiment(
    base_url: str,
    api_key: str,
    model: str,
    transport: Transport,
    name: str,
    pattern: Pattern,
    *,
    repeats: int,
    pool_size: int,
    pool_timeout: float,
) -> LeakRow:
    """Run `pattern` `repeats` times, one after the other, on a fresh client whose pool
    holds `pool_size` connections, then look at the pool before and after a collection.

    Automatic collection is paused during the runs, so ``after`` shows what the pattern
    frees by itself; in a live service a collection comes sooner or later, after a number
    of allocations, so what only a collection frees is held for a while, not forever."""
    client = pooled_client(
        base_url, api_key, transport, max_connections=pool_size, pool_timeout=pool_timeout, max_retries=0
    )
    try:
        with _loop_errors() as errors, _collector_paused():
            started, failed = time.perf_counter(), 0
            for _ in range(repeats):
                try:
                    await pattern(client, model)
                except APIError:  # the SDK's APITimeoutError when no connection came in time
                    failed += 1
            await asyncio.sleep(0.05)  # let finalizers already scheduled run
            after, runs_s = pool_snapshot(client), time.perf_counter() - started
        gc.collect()
        await asyncio.sleep(0.05)  # the collector schedules the streams' aclose() as tasks
        after_gc = pool_snapshot(client)
        next_call, next_call_s = await plain_call(client, model)
    finally:
        await client.close()
    return LeakRow(transport, name, repeats, failed, after, after_gc, len(errors), next_call, next_call_s, runs_s)


async def lent_until_the_reply_ends(
    base_url: str, api_key: str, model: str, transport: Transport, reply_sent: Callable[[], Awaitable[object]]
) -> tuple[int, int]:
    """Open a stream and drop it unread; count the connections lent at once, and again once
    `reply_sent` returns (when the server has sent the whole reply) and a collection has run.

    aiohttp gives a connection back when a response's payload has ended, read or not
    (``ClientResponse._response_eof``); httpx2 waits until someone closes the response."""
    client = pooled_client(base_url, api_key, transport, max_connections=2, pool_timeout=1.0, max_retries=0)
    async with client:
        await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
        at_once = pool_snapshot(client).lent
        await reply_sent()
        await asyncio.sleep(0.1)  # the last bytes reach the client
        gc.collect()
        return at_once, pool_snapshot(client).lent


def format_leak_rows(rows: list[LeakRow]) -> str:
    """A table of `rows`: what each pattern left lent, before and after a collection, and
    what the next plain call got."""
    table = [
        ["transport", "pattern", "runs", "no connection", "lent", "lent after gc", "sockets after gc", "next call"]
    ]
    for row in rows:
        next_call = row.next_call if row.next_call == "ok" else f"{row.next_call} after {row.next_call_s:.2f} s"
        counts = [row.repeats, row.failed, row.after.lent, row.after_gc.lent, row.after_gc.sockets]
        table.append([row.transport, row.pattern, *map(str, counts), next_call])
    return text_table(table, numeric_from=2)


async def plain_call(client: AsyncOpenAI, model: str) -> tuple[str, float]:
    """One short plain call: ``"ok"`` or the SDK exception's class, and its wall time."""
    started = time.perf_counter()
    try:
        await client.chat.completions.create(model=model, messages=PROMPT, max_completion_tokens=8)
        outcome = "ok"
    except APIError as error:
        outcome = type(error).__name__
    return outcome, time.perf_counter() - started


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off automatic garbage collection: what a pattern frees by itself then shows
    apart from what a collection that happened to run in the middle freed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Collect what the running loop's exception handler receives, instead of printing it."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)
