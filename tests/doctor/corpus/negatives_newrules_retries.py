"""Negatives for OA109: one retry layer only, or a client whose retries are not known."""

import asyncio
import time

import backoff
import openai
from openai import AsyncOpenAI, OpenAI
from tenacity import retry, stop_after_attempt

no_retries = AsyncOpenAI(max_retries=0)
client = AsyncOpenAI()
settings: dict[str, int] = {}
configured = OpenAI(**settings)


@retry(stop=stop_after_attempt(5))
async def own_retries_only(prompt: str) -> None:
    await no_retries.chat.completions.create(model="m", messages=[])
    await client.with_options(max_retries=0).chat.completions.create(model="m", messages=[])


@backoff.on_exception(backoff.expo, openai.RateLimitError)
def unknown_kwargs() -> None:
    configured.chat.completions.create(model="m", messages=[])


@retry
async def parameter(c: AsyncOpenAI) -> None:
    await c.chat.completions.create(model="m", messages=[])  # where c comes from is not known here


async def sdk_retries_only(prompt: str) -> None:
    await client.chat.completions.create(model="m", messages=[])


async def batch(prompts: list[str]) -> None:
    for i in range(len(prompts)):
        try:
            await client.responses.create(model="m", input=prompts[i])
        except openai.APIError:
            continue


async def no_exit_on_success() -> None:
    for _ in range(3):
        try:
            await client.chat.completions.create(model="m", messages=[])
        except openai.APIError:
            await asyncio.sleep(1)


async def worker(queue: asyncio.Queue[str]) -> None:
    while True:
        prompt = await queue.get()
        try:
            await client.responses.create(model="m", input=prompt)
        except openai.APIError:
            await asyncio.sleep(1)
            continue


def reraises() -> None:
    for _ in range(3):
        try:
            OpenAI(max_retries=0).chat.completions.create(model="m", messages=[])
            break
        except openai.APIError:
            time.sleep(1)
    for _ in range(3):
        try:
            OpenAI().chat.completions.create(model="m", messages=[])
            break
        except openai.APIError:
            raise


@retry
async def nested_function() -> None:
    async def later() -> None:
        await client.chat.completions.create(model="m", messages=[])

    await asyncio.sleep(0)
    print(later)
