"""support.pools: the pool's own count agrees with the kernel's, on both of the SDK's transports."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai import APITimeoutError
from openai._constants import DEFAULT_TIMEOUT

from support.pools import TRANSPORTS, pool_snapshot, pooled_client, sdk_default_pool_wait
from support.upstream import run_upstream

MODEL = "gpt-4o-mini"
PROMPT = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_full_pool_makes_the_next_call_wait_then_time_out(transport: str) -> None:
    async def scenario() -> None:
        async with run_upstream(ttft=0.0, chunk_delay=0.2, reply_tokens=20) as upstream:
            client = pooled_client(upstream.base_url, "k", transport, max_connections=3, pool_timeout=0.3)  # type: ignore[arg-type]
            async with client:
                assert pool_snapshot(client).total == 0  # nothing opened yet (aiohttp: no session yet)
                streams = [
                    await client.chat.completions.create(model=MODEL, messages=PROMPT, stream=True)  # type: ignore[arg-type]
                    for _ in range(3)
                ]
                seen = pool_snapshot(client)
                assert (seen.lent, seen.idle, seen.sockets) == (3, 0, 3)  # the pool's view and the kernel's agree
                started = time.perf_counter()
                with pytest.raises(APITimeoutError):
                    await client.with_options(max_retries=0).chat.completions.create(model=MODEL, messages=PROMPT)  # type: ignore[arg-type]
                assert 0.25 < time.perf_counter() - started < 2.0  # it waited the pool timeout, no longer
                for stream in streams:
                    await stream.close()
                assert pool_snapshot(client).lent == 0
                deadline = time.monotonic() + 2  # aiohttp closes a transport on the loop's next turns
                while (freed := pool_snapshot(client)).sockets and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # polling the kernel: there is no event to wait for
                assert (freed.idle, freed.sockets) == (0, 0)  # a closed, unread stream's connection is closed
                await client.chat.completions.create(model=MODEL, messages=PROMPT)  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_the_sdk_waits_its_whole_read_timeout_for_a_connection_by_default() -> None:
    assert sdk_default_pool_wait() == DEFAULT_TIMEOUT.read == 600


def test_an_unknown_transport_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown transport 'requests': expected one of httpx2, aiohttp"):
        pooled_client("http://127.0.0.1:9/v1", "k", "requests", max_connections=1, pool_timeout=1)  # type: ignore[arg-type]
