"""The app: lifespan, routes; the clients come from clients.py, the helpers from helpers.py."""

from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from openai import OpenAI

from app import clients
from app.clients import async_client, fresh_client, shared_client, sync_client
from app.batch import describe
from app.helpers import answer, get_llm
from app.streams import answer_stream


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.llm = OpenAI()
    yield
    await async_client.close()


app = FastAPI(lifespan=lifespan)


@app.get("/awaited")
async def awaited() -> str:
    completion = await sync_client.chat.completions.create(model="m", messages=[])  # expect: OA101
    return completion.choices[0].message.content or ""


@app.get("/through-module")
async def through_module() -> str:
    completion = clients.sync_client.chat.completions.create(model="m", messages=[])  # expect: OA102
    return completion.choices[0].message.content or ""


@app.get("/fresh")
def fresh() -> str:
    completion = fresh_client().chat.completions.create(model="m", messages=[])  # expect: OA104
    return completion.choices[0].message.content or ""


@app.get("/shared")
def shared() -> str:
    completion = shared_client().chat.completions.create(model="m", messages=[])  # one client: fine
    return completion.choices[0].message.content or ""


@app.get("/good")
async def good() -> str:
    completion = await async_client.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""


@app.get("/answer")
def answer_route(question: str, llm: Annotated[OpenAI, Depends(get_llm)]) -> str:
    return answer(question)


@app.get("/stream")
def stream(question: str) -> StreamingResponse:
    return StreamingResponse(answer_stream(question), media_type="text/plain")


def nightly_report() -> str:
    return describe("the day in one line")
