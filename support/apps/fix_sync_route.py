"""Fix A: a plain ``def`` route with the sync client.

FastAPI runs ``def`` routes on AnyIO's worker threads, so the event loop stays free.
The ceiling is AnyIO's default capacity limiter: 40 threads per event loop (so per
worker process), shared with sync dependencies and sync streaming iterators. `THREADS`
sets it at startup.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from openai import OpenAI

from .schemas import ChatReply, ChatRequest, model_name

THREADS = int(os.environ.get("THREADS", "40"))  # AnyIO's default is 40


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    to_thread.current_default_thread_limiter().total_tokens = THREADS
    with OpenAI() as client:  # one client (one connection pool) per process
        app.state.openai = client
        yield


app = FastAPI(title="fix A: sync def route", lifespan=lifespan)


async def get_client(request: Request) -> OpenAI:
    # async def: a plain-def dependency would take a thread (and a token) of its own per request
    return request.app.state.openai


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
def chat(body: ChatRequest, client: Annotated[OpenAI, Depends(get_client)]) -> ChatReply:
    completion = client.chat.completions.create(  # runs on a worker thread
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
