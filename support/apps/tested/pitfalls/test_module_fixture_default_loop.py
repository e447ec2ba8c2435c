"""Broken: a module-scoped async fixture that names no loop scope, under
``asyncio_default_fixture_loop_scope = function`` (the suite's pytest.ini, and what
pytest-asyncio asks projects to set): it would need a function's loop, and pytest refuses.
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from support.upstream import RunningUpstream

from .conftest import KEY


@pytest_asyncio.fixture(scope="module")
async def shared_client(module_upstream: RunningUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=module_upstream.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


@pytest.mark.asyncio
async def test_uses_the_shared_client(shared_client: AsyncOpenAI) -> None:
    completion = await shared_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
