"""Approach 5 with AnyIO's pytest plugin: a module-scoped async fixture needs no loop scope.

AnyIO's plugin (``anyio/pytest_plugin.py``, ``get_runner``) keeps one runner, and so one
loop, for as long as any test or fixture holds it: a module-scoped async fixture holds it
across the module's tests, which therefore run on the fixture's loop.
"""

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from support.upstream import RunningUpstream

from .fakes import KEY

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def shared_client(module_upstream: RunningUpstream, anyio_backend: str) -> AsyncIterator[AsyncOpenAI]:
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
    assert [entry.connection for entry in module_upstream.journal.entries()] == [1, 1]
