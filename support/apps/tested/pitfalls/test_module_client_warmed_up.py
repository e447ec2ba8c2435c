"""Broken: the same module-loop client fixture, but it makes one call while it sets up.

That call opens a connection on the fixture's loop, which is still open (it lives as long as
the module) but is not the loop running the first test: an asyncio object of one loop used
from another, "is bound to a different event loop". The second test opens a new connection
and passes; the fixture's teardown, back on the module's loop, then meets that connection of
a closed loop: "Event loop is closed".
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from support.upstream import RunningUpstream

from .conftest import KEY


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_client(module_upstream: RunningUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=module_upstream.base_url, api_key=KEY, max_retries=0) as sdk:
        await sdk.models.list()  # a warm-up call, on the module's loop
        yield sdk


async def ask(sdk: AsyncOpenAI) -> str:
    completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return completion.choices[0].message.content or ""


@pytest.mark.asyncio
async def test_first(shared_client: AsyncOpenAI) -> None:
    assert await ask(shared_client)


@pytest.mark.asyncio
async def test_second(shared_client: AsyncOpenAI) -> None:
    assert await ask(shared_client)
