"""OA112: a plain-def FastAPI dependency that only returns a shared client, used by async routes."""

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import AsyncOpenAI

app = FastAPI()
shared = AsyncOpenAI()


@app.on_event("shutdown")
async def shutdown() -> None:
    await shared.close()


def get_client(request: Request) -> AsyncOpenAI:  # expect: OA112
    """The client the lifespan stored."""
    return request.app.state.openai


def get_module_client():  # expect: OA112
    return shared


def for_decorator(request: Request) -> AsyncOpenAI:  # expect: OA112
    return request.app.state.openai


Client = Annotated[AsyncOpenAI, Depends(get_client)]


@app.post("/alias")
async def alias(client: Client) -> str:
    completion = await client.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""


@app.post("/default")
async def default(client: AsyncOpenAI = Depends(get_module_client)) -> None:  # noqa: B008
    await client.models.list()


@app.post("/decorator", dependencies=[Depends(for_decorator)])
async def decorator() -> None:
    return None
