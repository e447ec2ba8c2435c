"""Two routes making the same long upstream call: one blocks its event loop, one awaits.

Under gunicorn a worker proves it is alive by touching a file every ``timeout / 2``
seconds; uvicorn's worker does it from its event loop (``Server.on_tick`` calls
``callback_notify``). ``/blocking`` calls the sync client inside ``async def``: the loop
stops for the whole call, the heartbeat with it, and a call longer than ``--timeout`` gets
the worker killed (SIGABRT) with the request in flight. ``/awaiting`` awaits
``AsyncOpenAI``: the loop keeps ticking and the call may take as long as it takes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from openai import AsyncOpenAI, OpenAI

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
MESSAGES = [{"role": "user", "content": "Think it over, then answer."}]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(max_retries=0) as aclient:
        with OpenAI(max_retries=0) as client:
            app.state.aclient, app.state.client = aclient, client
            yield


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/blocking")
async def blocking(request: Request) -> dict[str, object]:
    client: OpenAI = request.app.state.client
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=8)  # type: ignore[arg-type]
    return {"pid": os.getpid(), "text": completion.choices[0].message.content}


@app.post("/awaiting")
async def awaiting(request: Request) -> dict[str, object]:
    aclient: AsyncOpenAI = request.app.state.aclient
    completion = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=8)  # type: ignore[arg-type]
    return {"pid": os.getpid(), "text": completion.choices[0].message.content}
