"""OA103: AsyncOpenAI calls whose coroutine is misused."""

from fastapi import FastAPI
from openai import AsyncOpenAI

app = FastAPI()
aclient = AsyncOpenAI()


@app.on_event("shutdown")
async def shutdown() -> None:
    await aclient.close()


@app.post("/a")
async def a() -> str:
    completion = aclient.chat.completions.create(model="m", messages=[])  # expect: OA103
    return completion.choices[0].message.content or ""


@app.post("/b")
async def b() -> str:
    return aclient.responses.create(model="m", input="x").output_text  # expect: OA103


@app.post("/c")
async def c() -> None:
    aclient.chat.completions.create(model="m", messages=[])  # expect: OA103


@app.post("/d")
async def d() -> None:
    async for chunk in aclient.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA103
        print(chunk)


@app.post("/e")
async def e():
    return aclient.chat.completions.create(model="m", messages=[])  # expect: OA103


async def f(c: AsyncOpenAI) -> None:
    resp = c.with_options(max_retries=0).embeddings.create(model="m", input="x")  # expect: OA103
    print(resp.data[0])


async def g(c: "AsyncOpenAI") -> None:
    first = c.chat.completions.create(model="m", messages=[])["choices"]  # expect: OA103
    print(first)


def sync_helper(c: AsyncOpenAI) -> None:
    c.chat.completions.create(model="m", messages=[])  # expect: OA103
