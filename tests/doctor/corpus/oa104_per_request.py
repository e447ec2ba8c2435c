"""OA104: a client constructed for every request."""

from contextlib import asynccontextmanager

import openai
from fastapi import APIRouter, Depends, FastAPI
from openai import AsyncOpenAI, OpenAI


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with AsyncOpenAI() as client:  # the lifespan runs once: fine
        app.state.openai = client
        yield


app = FastAPI(lifespan=lifespan)
router = APIRouter()


async def get_client():
    async with AsyncOpenAI() as client:  # expect: OA104
        yield client


def build() -> OpenAI:
    return openai.OpenAI(max_retries=0)  # expect: OA104


@app.post("/a")
async def a() -> str:
    client = AsyncOpenAI()  # expect: OA104
    completion = await client.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""


@router.get("/b")
def b(client: AsyncOpenAI = Depends(get_client)) -> None:
    print(client)


@app.websocket("/ws")
async def ws() -> None:
    c = OpenAI(api_key="per-user")  # expect: OA104
    print(c)


@app.api_route("/c", methods=["GET"])
def c() -> None:
    print(build())


app.include_router(router)
