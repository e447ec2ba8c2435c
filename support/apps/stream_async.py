"""Streaming done right, in its smallest form: an async generator over ``AsyncStream``.

- The route awaits the stream's creation before returning: the upstream has answered
  (headers received) before the service commits to a 200, so an early failure becomes
  an HTTP status (429, 502) instead of a 200 with nothing in it.
- After the 200, a failure can only be an event: ``event: error``.
- When the client leaves, Starlette cancels the generator while it awaits the next
  chunk (under a server that reports an ASGI spec version below 2.4, as uvicorn does;
  ``StreamingResponse.__call__`` in starlette/responses.py); the cancelled read closes
  the upstream connection. The ``finally`` closes the stream on every other way out.

The hardened service (`support.apps.hardened`) adds deadlines, limits and logs.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import openai
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk

from .schemas import ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI() as client:
        app.state.openai = client
        yield


app = FastAPI(title="streaming: async generator, primed", lifespan=lifespan)


async def get_client(request: Request) -> AsyncOpenAI:
    return request.app.state.openai


def sse(data: dict[str, object], event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"


async def events(stream: AsyncStream[ChatCompletionChunk]) -> AsyncIterator[str]:
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield sse({"delta": chunk.choices[0].delta.content})
        yield sse({}, event="done")
    except openai.APIError as exc:  # mid-stream: the status line is long gone
        yield sse({"error": type(exc).__name__}, event="error")
    finally:
        await stream.close()


@app.post("/chat/stream")
async def chat_stream(body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> StreamingResponse:
    try:
        stream = await client.chat.completions.create(  # primed: the upstream has answered
            model=model_name(),
            messages=[{"role": "user", "content": body.prompt}],
            stream=True,
        )
    except openai.RateLimitError as exc:
        raise HTTPException(429, "upstream rate limit", headers={"Retry-After": "1"}) from exc
    except openai.APIError as exc:
        raise HTTPException(502, "upstream error") from exc
    return StreamingResponse(events(stream), media_type="text/event-stream")
