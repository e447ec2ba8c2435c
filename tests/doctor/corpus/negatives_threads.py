"""Negatives: the sync client handed to a thread, or used where blocking is fine."""

import asyncio
import functools
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request
from openai import OpenAI
from starlette.concurrency import run_in_threadpool

app = FastAPI()
client = OpenAI()


def get_client(request: Request) -> OpenAI:  # expect: OA112
    return request.app.state.openai


@app.post("/bound")
async def bound(prompt: str) -> str:
    completion = await asyncio.to_thread(client.chat.completions.create, model="m", messages=[])
    return completion.choices[0].message.content or ""


@app.post("/lambda")
async def with_lambda() -> None:
    await asyncio.to_thread(lambda: client.chat.completions.create(model="m", messages=[]))


@app.post("/executor")
async def executor() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, functools.partial(client.chat.completions.create, model="m", messages=[]))
    await loop.run_in_executor(None, lambda: client.responses.create(model="m", input="x"))


@app.post("/threadpool")
async def threadpool(c: Annotated[OpenAI, Depends(get_client)]) -> None:
    await run_in_threadpool(c.chat.completions.create, model="m", messages=[])
    await anyio.to_thread.run_sync(lambda: c.chat.completions.create(model="m", messages=[]))


@app.post("/nested")
async def nested() -> None:
    def work() -> str:
        return client.chat.completions.create(model="m", messages=[]).choices[0].message.content or ""

    await asyncio.to_thread(work)


@app.post("/sync-route")
def sync_route(c: Annotated[OpenAI, Depends(get_client)]) -> str:
    completion = c.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""


def script() -> None:
    print(client.models.list())


async def closes_at_shutdown() -> None:
    client.close()  # closing a sync client: no upstream call


async def not_entered(c: OpenAI) -> None:
    manager = c.chat.completions.with_streaming_response.create(model="m", messages=[])
    await asyncio.to_thread(manager.__enter__)
