"""FastAPI's own SSE route (``response_class=EventSourceResponse`` and ``yield``), unprimed.

Async all the way, and the upstream connection closes when the client leaves. But the
route body is the generator: FastAPI starts it in a task of its own and returns a
``StreamingResponse`` over what it yields (fastapi/routing.py, ``_sse_producer_cm``), and
Starlette sends the 200 without waiting for a first item. So the 200 goes out before the
upstream has answered: a rate limit or an outage before the first chunk reaches the
client as an empty 200, and an error mid-stream as a cut connection. Fine for a demo;
for production, prime first (see `stream_async`).
"""

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.sse import EventSourceResponse
from openai import AsyncOpenAI

from .schemas import ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI() as client:
        app.state.openai = client
        yield


app = FastAPI(title="streaming: FastAPI's SSE route, unprimed", lifespan=lifespan)


async def get_client(request: Request) -> AsyncOpenAI:
    return request.app.state.openai


@app.post("/chat/stream", response_class=EventSourceResponse)
async def chat_stream(
    body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]
) -> AsyncIterable[dict[str, str]]:
    stream = await client.chat.completions.create(  # the 200 does not wait for this
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
        stream=True,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield {"delta": chunk.choices[0].delta.content}
