"""Fix B, sized: ``asyncio.to_thread`` with a default executor sized for the load.

``loop.set_default_executor`` in the lifespan replaces the ``cpu_count + 4`` pool;
`THREADS` threads then bound the upstream calls in flight. Threads still cannot be
cancelled, and each one costs memory and GIL contention.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import OpenAI

from .schemas import ChatReply, ChatRequest, model_name

THREADS = int(os.environ.get("THREADS", "64"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The loop's default executor from now on: its workers are named as asyncio names its own.
    executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="asyncio")
    asyncio.get_running_loop().set_default_executor(executor)
    with OpenAI() as client:
        app.state.openai = client
        yield
    executor.shutdown(wait=False, cancel_futures=True)


app = FastAPI(title="fix B: asyncio.to_thread, sized executor", lifespan=lifespan)


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
