"""Fix C (recommended): ``AsyncOpenAI``, one per process, created in the lifespan.

Awaited calls leave the loop free while the upstream works, so concurrency is bounded
by the connection pool (1000 by default), not by threads. The client is created in the
lifespan (not at import time: its connections belong to the serving loop) and closed
on shutdown (``async with``). ``/chat`` uses Chat Completions, ``/respond`` the
Responses API, the SDK's primary interface.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import AsyncOpenAI

from .schemas import ChatReply, ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI() as client:  # reads OPENAI_API_KEY and OPENAI_BASE_URL
        app.state.openai = client
        yield


app = FastAPI(title="fix C: AsyncOpenAI", lifespan=lifespan)


async def get_client(request: Request) -> AsyncOpenAI:
    # async def: FastAPI runs a plain-def dependency on the thread pool, even for async routes
    return request.app.state.openai


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> ChatReply:
    completion = await client.chat.completions.create(
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")


@app.post("/respond")
async def respond(body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> ChatReply:
    response = await client.responses.create(model=model_name(), input=body.prompt)
    return ChatReply(text=response.output_text)
