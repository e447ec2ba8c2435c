"""Fix B: ``asyncio.to_thread`` around the sync client.

It unblocks the loop, but every call goes through the loop's *default executor*,
whose size is ``min(32, os.cpu_count() + 4)``: 6 threads on a 2-core machine, so at
most 6 upstream calls are in flight. A thread cannot be cancelled either: when a
deadline (``asyncio.wait_for``) gives up on it, the call still runs, and is billed, to
the end, and holds its pool slot meanwhile.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import OpenAI

from .schemas import ChatReply, ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    with OpenAI() as client:
        app.state.openai = client
        yield


app = FastAPI(title="fix B: asyncio.to_thread", lifespan=lifespan)


async def get_client(request: Request) -> OpenAI:
    # async def: FastAPI runs a plain-def dependency on the thread pool, even for async routes
    return request.app.state.openai


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatRequest, client: Annotated[OpenAI, Depends(get_client)]) -> ChatReply:
    completion = await asyncio.to_thread(
        client.chat.completions.create,
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
