"""OA109: a retry of one's own around a call whose client keeps the SDK's default retries."""

import asyncio
import time

import backoff
import openai
import tenacity
from fastapi import FastAPI, Request
from openai import AsyncOpenAI, OpenAI
from tenacity import AsyncRetrying, retry, stop_after_attempt

app = FastAPI()
client = AsyncOpenAI(timeout=30)
sync_client = OpenAI()
tuned = client.with_options(timeout=10)


@retry(stop=stop_after_attempt(5))
async def tenacity_call(prompt: str) -> str:
    completion = await client.chat.completions.create(model="m", messages=[])  # expect: OA109
    return completion.choices[0].message.content or ""


@tenacity.retry
def bare_decorator() -> None:
    sync_client.embeddings.create(model="m", input="x")  # expect: OA109


@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=8)
async def backoff_call() -> None:
    await tuned.chat.completions.create(model="m", messages=[])  # expect: OA109


async def loop_with_sleep(prompt: str) -> str:
    for attempt in range(3):
        try:
            response = await client.responses.create(model="m", input=prompt)  # expect: OA109
            return response.output_text
        except openai.APIError:
            if attempt == 2:
                raise
            await asyncio.sleep(2**attempt)
    return ""


def loop_with_continue() -> None:
    for _ in range(5):
        try:
            sync_client.chat.completions.create(model="m", messages=[])  # expect: OA109
        except openai.APIConnectionError:
            time.sleep(1)
            continue
        else:
            break


async def retrying_iterator() -> None:
    async for attempt in AsyncRetrying(stop=stop_after_attempt(3)):
        with attempt:
            await client.chat.completions.create(model="m", messages=[])  # expect: OA109


@app.on_event("startup")
async def startup() -> None:
    app.state.openai = AsyncOpenAI()


@app.on_event("shutdown")
async def shutdown() -> None:
    await client.close()


@app.post("/state")
async def from_state(request: Request) -> None:
    for _ in range(3):
        try:
            await request.app.state.openai.chat.completions.create(model="m", messages=[])  # expect: OA109
            break
        except openai.RateLimitError:
            await asyncio.sleep(1)
