"""Broken: ``await`` on the *sync* client inside ``async def``.

``client.chat.completions.create`` of the sync `OpenAI` client is a plain function: it
sends the request, blocks the event loop until the answer arrives, and returns a
`ChatCompletion`. Only then does ``await`` look at that object and raise
``TypeError: object ChatCompletion can't be used in 'await' expression`` (Python
3.10-3.13; 3.14 says ``'ChatCompletion' object can't be awaited``). The request was
sent, answered and billed; the client of this service gets a 500.
"""

from fastapi import FastAPI
from openai import OpenAI

from .schemas import ChatReply, ChatRequest, model_name

client = OpenAI()  # sync client; reads OPENAI_API_KEY and OPENAI_BASE_URL
app = FastAPI(title="broken: await on the sync client")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatRequest) -> ChatReply:
    completion = await client.chat.completions.create(  # TypeError, after the call completed
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
