"""Broken, silently: the sync client called inside ``async def`` without ``await``.

It works, so it passes every functional test. But the call blocks the event loop for
the whole upstream latency: the service handles one request at a time, and every
other endpoint (``/health`` included) waits behind it.
"""

from fastapi import FastAPI
from openai import OpenAI

from .schemas import ChatReply, ChatRequest, model_name

client = OpenAI()  # sync client; reads OPENAI_API_KEY and OPENAI_BASE_URL
app = FastAPI(title="broken: sync client in async def")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatRequest) -> ChatReply:
    completion = client.chat.completions.create(  # blocks the event loop until the answer
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
