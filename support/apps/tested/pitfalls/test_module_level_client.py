"""Broken: a client made once at module level (as a service that builds it at import would),
used by two tests, each on its own loop: the second gets "Event loop is closed"."""

import pytest
from openai import AsyncOpenAI

from support.upstream import RunningUpstream

from .conftest import KEY

clients: list[AsyncOpenAI] = []  # one client for the whole module, made on first use


def shared(upstream: RunningUpstream) -> AsyncOpenAI:
    if not clients:
        clients.append(AsyncOpenAI(base_url=upstream.base_url, api_key=KEY, max_retries=0))
    return clients[0]


async def ask(sdk: AsyncOpenAI) -> str:
    completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return completion.choices[0].message.content or ""


@pytest.mark.asyncio
async def test_first(module_upstream: RunningUpstream) -> None:
    assert await ask(shared(module_upstream))


@pytest.mark.asyncio
async def test_second(module_upstream: RunningUpstream) -> None:
    assert await ask(shared(module_upstream))
