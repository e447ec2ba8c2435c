"""OA110: timeout=None on a client or a call in a service (an async def, or a module that builds an app)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, OpenAI


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(timeout=None) as client:  # expect: OA110
        app.state.openai = client
        yield


app = FastAPI(lifespan=lifespan)
batch_client = OpenAI(
    max_retries=0,
    timeout=None,  # expect: OA110
)

adopted = AsyncOpenAI(http_client=httpx.AsyncClient(timeout=None))  # expect: OA110
pooled = AsyncOpenAI(http_client=DefaultAsyncHttpxClient(timeout=None, limits=httpx.Limits()))  # expect: OA110


@app.on_event("shutdown")
async def shutdown() -> None:
    await adopted.close()
    await pooled.close()


@app.post("/chat")
async def chat(request: Request) -> str:
    client: AsyncOpenAI = request.app.state.openai
    completion = await client.chat.completions.create(model="m", messages=[], timeout=None)  # expect: OA110
    slow = client.with_options(timeout=None)  # expect: OA110
    await slow.responses.create(model="m", input="x")
    return completion.choices[0].message.content or ""


@app.post("/sync")
def sync_route() -> None:
    batch_client.embeddings.create(model="m", input="x", timeout=None)  # expect: OA110
