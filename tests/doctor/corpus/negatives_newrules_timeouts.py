"""Negatives for OA110: finite timeouts, `None` on things that are not OpenAI, and scripts."""

import asyncio

import httpx
from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI(timeout=httpx.Timeout(60.0, connect=5.0))
script_client = OpenAI(timeout=None)  # a one-off script: no service waits on it
# the client's own timeout wins over the http_client's
overridden = AsyncOpenAI(timeout=30.0, http_client=httpx.AsyncClient(timeout=None))


def batch() -> None:
    script_client.chat.completions.create(model="m", messages=[], timeout=None)


async def build() -> None:
    tuned = AsyncOpenAI(http_client=httpx.AsyncClient(timeout=httpx.Timeout(30.0)))
    await tuned.close()


async def handler(queue: asyncio.Queue[str]) -> None:
    item = await asyncio.wait_for(queue.get(), timeout=None)
    async with httpx.AsyncClient(timeout=None) as http:
        await http.get("https://example.com")
    await client.chat.completions.create(model="m", messages=[], timeout=30)
    other = client.with_options(timeout=httpx.Timeout(None, connect=5.0))  # not the literal None: left alone
    await other.responses.create(model="m", input=item)


async def unknown(c) -> None:
    await c.chat.completions.create(model="m", messages=[], timeout=None)
