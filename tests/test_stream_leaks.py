"""support.stream_leaks: what each way of leaving a stream does to a small pool, on both transports."""

from __future__ import annotations

import asyncio
import gc

import pytest
from openai import AsyncOpenAI

from support.pools import TRANSPORTS, Transport
from support.stream_leaks import FIXES, LEAKS, LeakRow, leak_experiment, lent_until_the_reply_ends
from support.upstream import run_upstream

MODEL = "gpt-4o-mini"
RUNS, POOL = 5, 3


async def _row(transport: Transport, name: str) -> LeakRow:
    # Streams that outlast the runs (40 chunks 50 ms apart), but short where they are read through.
    reply_tokens = 4 if name == "read to the end" else 40
    async with run_upstream(ttft=0.0, chunk_delay=0.05, reply_tokens=reply_tokens) as upstream:
        pattern = {**LEAKS, **FIXES}[name]
        return await leak_experiment(
            upstream.base_url, "k", MODEL, transport, name, pattern, repeats=RUNS, pool_size=POOL, pool_timeout=0.2
        )


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("name", "lent", "lent_after_gc", "failed", "next_call"),
    [
        ("read to the end", 0, 0, 0, "ok"),
        ("break early", POOL, 0, RUNS - POOL, "ok"),  # held until a collection breaks the stream's cycle
        ("return before reading", POOL, POOL, RUNS - POOL, "APITimeoutError"),  # held for good
        ("break inside async with", 0, 0, 0, "ok"),
        ("return, close in finally", 0, 0, 0, "ok"),
    ],
)
def test_each_pattern_leaves_the_pool_as_documented(
    transport: Transport, name: str, lent: int, lent_after_gc: int, failed: int, next_call: str
) -> None:
    row = asyncio.run(asyncio.wait_for(_row(transport, name), 30))
    assert (row.after.lent, row.after_gc.lent, row.failed, row.next_call) == (lent, lent_after_gc, failed, next_call)
    assert row.after_gc.sockets >= row.after_gc.lent  # the kernel still holds every lent connection's socket
    assert gc.isenabled()  # the experiment gave automatic collection back


def test_the_collector_is_resumed_and_the_loop_handler_restored_when_a_pattern_raises() -> None:
    async def broken(client: AsyncOpenAI, model: str) -> None:
        raise RuntimeError("a bug in the handler")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        handler = loop.get_exception_handler()
        with pytest.raises(RuntimeError, match="a bug in the handler"):
            await leak_experiment(
                "http://127.0.0.1:9/v1",
                "k",
                MODEL,
                "httpx2",
                "broken",
                broken,
                repeats=1,
                pool_size=1,
                pool_timeout=0.1,
            )
        assert loop.get_exception_handler() is handler

    asyncio.run(scenario())
    assert gc.isenabled()


@pytest.mark.parametrize(("transport", "lent_once_sent"), [("httpx2", 1), ("aiohttp", 0)])
def test_only_aiohttp_gives_back_an_unread_streams_connection_once_the_reply_has_arrived(
    transport: Transport, lent_once_sent: int
) -> None:
    async def scenario() -> tuple[int, int]:
        async with run_upstream(ttft=0.0, chunk_delay=0.01, reply_tokens=10) as upstream:

            async def reply_sent() -> None:
                await upstream.journal.wait_for(lambda entries: entries[-1].outcome == "ok")

            return await lent_until_the_reply_ends(upstream.base_url, "k", MODEL, transport, reply_sent)

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == (1, lent_once_sent)
