"""Negatives: AsyncOpenAI used correctly, in all the shapes that consume a coroutine."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI() as client:
        app.state.openai = client
        yield


app = FastAPI(lifespan=lifespan)


def get_client(request: Request) -> AsyncOpenAI:  # expect: OA112
    return request.app.state.openai


Client = Annotated[AsyncOpenAI, Depends(get_client)]


@app.post("/awaited")
async def awaited(client: Client) -> str:
    completion = await client.with_options(timeout=5).chat.completions.create(model="m", messages=[])
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=[])
    print(raw.headers)
    return completion.choices[0].message.content or ""


@app.post("/gather")
async def gather(client: Annotated[AsyncOpenAI, Depends(get_client)]) -> list[str]:
    coros = [client.chat.completions.create(model="m", messages=[]) for _ in range(3)]
    results = await asyncio.gather(*coros, client.responses.create(model="m", input="x"))
    task = asyncio.create_task(client.chat.completions.create(model="m", messages=[]))
    await asyncio.wait_for(client.chat.completions.create(model="m", messages=[]), 5)
    future = asyncio.ensure_future(client.embeddings.create(model="m", input="x"))
    pending = client.chat.completions.create(model="m", messages=[])
    done = await pending
    async with asyncio.TaskGroup() as tg:
        tg.create_task(client.chat.completions.create(model="m", messages=[]))
    async with anyio.create_task_group() as group:
        group.start_soon(client.close)
    await task, future
    return [str(r) for r in results] + [str(done)]


@app.post("/stream")
async def stream(request: Request) -> StreamingResponse:
    client: AsyncOpenAI = request.app.state.openai
    upstream = await client.chat.completions.create(model="m", messages=[], stream=True)

    async def events() -> AsyncIterator[str]:
        try:
            async for chunk in upstream:
                yield chunk.choices[0].delta.content or ""
        finally:
            await upstream.close()

    return StreamingResponse(events())


@app.post("/stream-helper")
async def stream_helper(client: Client) -> None:
    async with client.chat.completions.stream(model="m", messages=[]) as s:
        async for event in s:
            print(event)
    async with client.chat.completions.with_streaming_response.create(model="m", messages=[]) as r:
        print(r.headers)
    async for model in client.models.list():
        print(model)
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):
        print(chunk)


def make_coroutine(client: AsyncOpenAI):
    return client.chat.completions.create(model="m", messages=[])  # a sync factory: the caller awaits


async def caller(client: AsyncOpenAI) -> None:
    await make_coroutine(client)
    print(await asyncio.shield(client.models.retrieve("m")))
