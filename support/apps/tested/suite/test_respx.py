"""respx patches httpx (and httpcore), not httpx2: the SDK's own transport goes past it.

Proved with the upstream's journal, not assumed: under ``respx.mock`` the SDK's default
client reaches the upstream and respx's route is never called. Only a client built on the
older ``httpx`` package (which the SDK still accepts as ``http_client``) is intercepted.
"""

from typing import Any

import httpx
import pytest
import respx
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from support.upstream import RunningUpstream

from .fakes import KEY, completion_json

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Who answers: respx or the upstream?"}]


@pytest.mark.asyncio
async def test_respx_does_not_intercept_the_sdks_transport(upstream: RunningUpstream) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(url__regex=r"/chat/completions$").respond(200, json=completion_json("from respx"))
        async with AsyncOpenAI(base_url=upstream.base_url, api_key=KEY, max_retries=0) as sdk:
            completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert route.call_count == 0
    assert len(upstream.journal.entries()) == 1
    assert completion.choices[0].message.content != "from respx"


@pytest.mark.asyncio
async def test_respx_intercepts_a_client_on_the_httpx_package(upstream: RunningUpstream) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(url__regex=r"/chat/completions$").respond(200, json=completion_json("from respx"))
        http_client: Any = httpx.AsyncClient()  # the SDK's hint names httpx2 only; it accepts httpx at run time
        async with AsyncOpenAI(base_url=upstream.base_url, api_key=KEY, max_retries=0, http_client=http_client) as sdk:
            completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert route.call_count == 1
    assert upstream.journal.entries() == []
    assert completion.choices[0].message.content == "from respx"
