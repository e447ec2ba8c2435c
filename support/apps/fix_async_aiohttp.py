"""Fix C with the aiohttp transport: ``AsyncOpenAI(http_client=DefaultAioHttpClient())``.

The same service as `fix_async_client`; only the HTTP transport under the SDK changes
(``pip install "openai[aiohttp]"``). The benchmark (notebook 08) measures whether it
buys anything.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import AsyncOpenAI, DefaultAioHttpClient

from .schemas import ChatReply, ChatRequest, model_name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(http_client=DefaultAioHttpClient()) as client:
        app.state.openai = client
        yield


app = FastAPI(title="fix C: AsyncOpenAI over aiohttp", lifespan=lifespan)


async def get_client(request: Request) -> AsyncOpenAI:
    return request.app.state.openai


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> ChatReply:
    completion = await client.chat.completions.create(
        model=model_name(),
        messages=[{"role": "user", "content": body.prompt}],
    )
    return ChatReply(text=completion.choices[0].message.content or "")
