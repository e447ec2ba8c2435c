"""Negatives: module-level AsyncOpenAI closed by the app (lifespan, shutdown handler)."""

from contextlib import asynccontextmanager
from functools import lru_cache

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI()
second = AsyncOpenAI()
third = AsyncOpenAI()


async def close_third() -> None:
    await third.close()


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with client:
        yield
    await close_third()


app = FastAPI(lifespan=lifespan)


@app.on_event("shutdown")
async def shutdown() -> None:
    await second.close()


@lru_cache
def get_sync_client() -> OpenAI:
    return OpenAI()  # cached: one per process, not per request


@app.get("/a")
async def a(sync: OpenAI = Depends(get_sync_client)) -> StreamingResponse:
    async def events():
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""

    return StreamingResponse(events())


@app.get("/b")
def b(sync: OpenAI = Depends(get_sync_client)) -> str:
    completion = sync.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""
