"""Follow-up work after the answer: FastAPI's ``BackgroundTasks``, the wrong way and the right way.

``POST /tickets`` answers 202 at once and summarises the ticket with the model afterwards,
in a background task; ``GET /tickets/{n}`` shows the summary once it exists.

- ``POST /tickets/sync-task`` (the wrong way) adds a plain ``def`` task that calls the
  sync `OpenAI` client. Starlette runs a task that is not a coroutine function through
  ``run_in_threadpool`` (``BackgroundTask.__call__`` in starlette/background.py), on
  AnyIO's default thread limiter: 40 tokens per event loop, the same tokens every ``def``
  route, sync dependency and sync streaming iterator borrows. A burst of tickets borrows
  them all for a model call's latency each, and a ``def`` route waits in line behind them.
- ``POST /tickets`` (the fix) adds an ``async def`` task that awaits `AsyncOpenAI`: it
  runs on the event loop and borrows no token.

``GET /health/def`` is a plain ``def`` probe (it needs a token, so it is what the wrong way
starves); ``GET /health`` is ``async def`` and needs none.
"""

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import openai
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from .schemas import ChatRequest, model_name

FAILED = "(failed:"  # a summary that starts so records a follow-up whose model call failed


class Accepted(BaseModel):
    ticket: int


class Summary(BaseModel):
    ticket: int
    summary: str | None  # None until the follow-up has run


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    with OpenAI() as sync_client:  # for the wrong way only
        async with AsyncOpenAI() as client:
            app.state.sync_openai, app.state.openai = sync_client, client
            app.state.summaries, app.state.numbers = {}, itertools.count(1)
            yield


app = FastAPI(title="background tasks: a def task on the thread limiter, an async task on the loop", lifespan=lifespan)


def instruction(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"Summarise this support ticket in one line: {text}"}]


def summarise_sync(client: OpenAI, summaries: dict[int, str | None], ticket: int, text: str) -> None:
    """The wrong way: a plain def task, so Starlette runs it on a thread, holding a limiter token."""
    try:
        completion = client.chat.completions.create(model=model_name(), messages=instruction(text))
    except openai.APIError as exc:  # after the 202 nobody is listening: keep the failure to show
        summaries[ticket] = f"{FAILED} {type(exc).__name__})"
        return
    summaries[ticket] = completion.choices[0].message.content or ""


async def summarise(client: AsyncOpenAI, summaries: dict[int, str | None], ticket: int, text: str) -> None:
    """The fix: an async def task awaiting AsyncOpenAI, on the event loop, no token."""
    try:
        completion = await client.chat.completions.create(model=model_name(), messages=instruction(text))
    except openai.APIError as exc:
        summaries[ticket] = f"{FAILED} {type(exc).__name__})"
        return
    summaries[ticket] = completion.choices[0].message.content or ""


def open_ticket(request: Request) -> tuple[int, dict[int, str | None]]:
    summaries: dict[int, str | None] = request.app.state.summaries
    ticket: int = next(request.app.state.numbers)
    summaries[ticket] = None
    return ticket, summaries


@app.post("/tickets/sync-task", status_code=202)
async def ticket_sync_task(body: ChatRequest, request: Request, tasks: BackgroundTasks) -> Accepted:
    ticket, summaries = open_ticket(request)
    tasks.add_task(summarise_sync, request.app.state.sync_openai, summaries, ticket, body.prompt)
    return Accepted(ticket=ticket)


@app.post("/tickets", status_code=202)
async def ticket_async_task(body: ChatRequest, request: Request, tasks: BackgroundTasks) -> Accepted:
    ticket, summaries = open_ticket(request)
    tasks.add_task(summarise, request.app.state.openai, summaries, ticket, body.prompt)
    return Accepted(ticket=ticket)


async def get_summaries(request: Request) -> dict[int, str | None]:
    summaries: dict[int, str | None] = request.app.state.summaries
    return summaries


@app.get("/tickets")
async def counts(summaries: Annotated[dict[int, str | None], Depends(get_summaries)]) -> dict[str, int]:
    """How many tickets are still waiting for their summary, how many have one, how many failed."""
    waiting = sum(1 for text in summaries.values() if text is None)
    failed = sum(1 for text in summaries.values() if text is not None and text.startswith(FAILED))
    return {"waiting": waiting, "summarised": len(summaries) - waiting - failed, "failed": failed}


@app.get("/tickets/{number}")
async def summary(number: int, summaries: Annotated[dict[int, str | None], Depends(get_summaries)]) -> Summary:
    if number not in summaries:
        raise HTTPException(404, f"no ticket {number}")
    return Summary(ticket=number, summary=summaries[number])


@app.get("/health/def")
def health_def() -> dict[str, str]:  # a plain def route: runs on a worker thread, borrows a token
    return {"status": "ok"}


@app.get("/health")
async def health() -> dict[str, str]:  # on the loop: no token needed
    return {"status": "ok"}
