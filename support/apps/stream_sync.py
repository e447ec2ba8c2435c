"""Broken on purpose: a sync generator over the sync client's ``Stream``, in a ``def`` route.

It streams fine, which is why it ships. But when the client leaves, Starlette stops
pulling from the generator and nothing closes the upstream response: the upstream
goes on generating (and billing) the whole reply into the socket buffers. Each chunk
is also pulled by a worker thread from AnyIO's limiter (40 by default).
"""

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from openai import OpenAI

from .schemas import ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    with OpenAI() as client:
        app.state.openai = client
        yield


app = FastAPI(title="broken: sync stream in a sync generator", lifespan=lifespan)


async def get_client(request: Request) -> OpenAI:
    # async def: FastAPI would run a plain def dependency on AnyIO's thread pool, one more
    # thread hop per request for an attribute read. What this example gets wrong is the stream.
    client: OpenAI = request.app.state.openai
    return client


@app.post("/chat/stream")
def chat_stream(body: ChatRequest, client: Annotated[OpenAI, Depends(get_client)]) -> StreamingResponse:
    stream = client.chat.completions.create(
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
        stream=True,
    )

    def events() -> Iterator[str]:
        for chunk in stream:  # nothing closes `stream` when the client goes away
            if chunk.choices and chunk.choices[0].delta.content:
                yield f"data: {json.dumps({'delta': chunk.choices[0].delta.content})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
