"""Broken under tests: a module-level ``AsyncOpenAI`` outlives the event loop it used.

The client's connection pool belongs to the loop of its first request. ``TestClient(app)``
without ``with`` runs each request on a fresh loop (as do two ``asyncio.run`` calls, or
pytest-asyncio's per-test loops), so the second request reuses a connection of a closed
loop: ``RuntimeError: Event loop is closed``. Create the client in the lifespan
(`fix_async_client`) and use ``with TestClient(app)``.
"""

from fastapi import FastAPI
from openai import AsyncOpenAI

from .schemas import ChatReply, ChatRequest, model_name

client = AsyncOpenAI()  # created at import time: bound to whichever loop uses it first
app = FastAPI(title="broken: module-level AsyncOpenAI")


@app.post("/chat")
async def chat(body: ChatRequest) -> ChatReply:
    completion = await client.chat.completions.create(
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
