"""Negatives for OA112: async dependencies, dependencies that do real work, and sync-only users."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import AsyncOpenAI, OpenAI

app = FastAPI()


async def get_client(request: Request) -> AsyncOpenAI:
    return request.app.state.openai


def get_settings(request: Request) -> dict[str, str]:
    return request.app.state.settings  # not a client: not this rule's business


def get_session(request: Request) -> Iterator[OpenAI]:
    yield request.app.state.openai


def build_client(request: Request) -> OpenAI:
    return request.app.state.clients[request.headers["x-tenant"]]  # a lookup, not only a read: left alone


def get_sync_client(request: Request) -> OpenAI:
    return request.app.state.sync_openai


def checked(request: Request) -> AsyncOpenAI:
    client = request.app.state.openai
    if client is None:
        raise RuntimeError("no client")
    return client


@app.post("/async")
async def uses_async(
    client: Annotated[AsyncOpenAI, Depends(get_client)],
    settings: Annotated[dict[str, str], Depends(get_settings)],
    session: Annotated[OpenAI, Depends(get_session)],
    built: Annotated[OpenAI, Depends(build_client)],
    guarded: Annotated[AsyncOpenAI, Depends(checked)],
) -> None:
    await client.models.list()
    print(settings, session, built, guarded)


@app.post("/sync")
def uses_sync(client: Annotated[OpenAI, Depends(get_sync_client)]) -> None:
    client.models.list()
