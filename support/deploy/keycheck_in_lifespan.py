"""The fix: the same service, with its client created and its key checked in the lifespan.

The lifespan runs in each worker after the fork (uvicorn runs it when a worker starts
serving), so with or without ``--preload`` every process has its own client, its own pool
and its own connections. The key is still checked before a worker takes traffic.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from openai import OpenAI


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    with OpenAI(max_retries=0) as client:  # one per process, closed when the worker stops
        await asyncio.to_thread(client.models.list)  # the key check, in this worker, off its event loop
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
def chat(body: dict[str, str], request: Request) -> dict[str, object]:
    client: OpenAI = request.app.state.client
    completion = client.chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        messages=[{"role": "user", "content": body.get("prompt", "")}],
        max_completion_tokens=16,
    )
    return {"pid": os.getpid(), "request_id": completion._request_id, "text": completion.choices[0].message.content}
