"""Broken: the client fixture is module-scoped on a module loop, the tests run on function loops.

The first test opens a connection on its own loop, which closes when the test ends; the
second test gets that pooled connection from the shared client: "Event loop is closed".
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
        yield sdk


async def ask(sdk: AsyncOpenAI) -> str:
    completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return completion.choices[0].message.content or ""


@pytest.mark.asyncio  # loop_scope "function": asyncio_default_test_loop_scope
async def test_first(shared_client: AsyncOpenAI) -> None:
    assert await ask(shared_client)


@pytest.mark.asyncio
async def test_second(shared_client: AsyncOpenAI) -> None:
    assert await ask(shared_client)
