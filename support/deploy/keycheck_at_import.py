"""The pitfall: a sync client that checks its key when the module is imported.

Under ``gunicorn --preload`` the module is imported once, in the master, before it forks
its workers. The key check leaves a kept-alive connection in the client's pool, and every
worker inherits the client, its pool and that socket: N processes then write requests on
one TCP connection and read each other's answers.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from openai import OpenAI

client = OpenAI(max_retries=0)
client.models.list()  # "fail fast on a bad key": runs in the master with --preload

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
def chat(body: dict[str, str]) -> dict[str, object]:
    """A plain ``def`` route (on AnyIO's threads) with the sync client: fine in one process."""
    completion = client.chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        messages=[{"role": "user", "content": body.get("prompt", "")}],
        max_completion_tokens=16,
    )
    return {"pid": os.getpid(), "request_id": completion._request_id, "text": completion.choices[0].message.content}
