"""Approach 5 (fixed): one ``AsyncOpenAI`` shared by a module's async tests, on one loop.

With pytest-asyncio 1.x each test runs on a loop of its ``loop_scope`` ("function" unless
said otherwise) and each async fixture on its own ``loop_scope``. A client's pooled
connections belong to the loop that opened them, so a shared client and the tests using it
must share the loop: the fixture and every test here say ``loop_scope="module"``.
(``pitfalls/`` holds the layouts that do not.)
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from support.upstream import RunningUpstream

from .fakes import KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the tests run on the module's loop


@pytest_asyncio.fixture(scope="module", loop_scope="module")  # and so does the client
async def shared_client(module_upstream: RunningUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=module_upstream.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


async def ask(sdk: AsyncOpenAI) -> str:
    completion = await sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Which loop am I on?"}]
    )
    return completion.choices[0].message.content or ""


async def test_first_use_opens_a_connection(shared_client: AsyncOpenAI) -> None:
    assert await ask(shared_client)


async def test_second_use_reuses_it(shared_client: AsyncOpenAI, module_upstream: RunningUpstream) -> None:
    assert await ask(shared_client)
    assert [entry.connection for entry in module_upstream.journal.entries()] == [1, 1]  # one connection, reused
