"""OA102: the sync client called inside async def, without await."""

from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import OpenAI


@asynccontextmanager
async def lifespan(app: FastAPI):
    with OpenAI() as sync_client:
        app.state.openai = sync_client
        yield


app = FastAPI(lifespan=lifespan)
client = OpenAI()


def get_client(request: Request) -> OpenAI:  # expect: OA112
    return request.app.state.openai


@app.post("/chat")
async def chat(prompt: str) -> str:
    completion = client.chat.completions.create(  # expect: OA102
        model="m",
        messages=[{"role": "user", "content": prompt}],
    )
    return completion.choices[0].message.content or ""


@app.post("/dep")
async def dep(c: Annotated[OpenAI, Depends(get_client)]) -> str:
    return c.responses.create(model="m", input="hi").output_text  # expect: OA102


@app.post("/state")
async def state(request: Request) -> None:
    request.app.state.openai.chat.completions.create(model="m", messages=[])  # expect: OA102


@app.post("/default-dep")
async def default_dep(c=Depends(get_client)) -> None:  # noqa: B008
    c.embeddings.create(model="m", input="x")  # expect: OA102


class Bot:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def connect(self) -> None:
        self.llm = OpenAI(api_key=self.api_key)  # bound in a method other than __init__

    async def reply(self) -> None:
        self.llm.chat.completions.create(model="m", messages=[])  # expect: OA102

    async def with_stream(self) -> None:
        with self.llm.chat.completions.with_streaming_response.create(model="m", messages=[]) as r:  # expect: OA102
            print(r.headers)


async def helper_in_gather(c: OpenAI) -> None:
    import asyncio

    # called (not passed): it runs right here, on the loop, before gather sees anything
    await asyncio.gather(c.chat.completions.create(model="m", messages=[]))  # expect: OA102


async def to_thread_misuse(c: OpenAI) -> None:
    import asyncio

    # the call happens before to_thread is reached
    await asyncio.to_thread(c.chat.completions.create(model="m", messages=[]))  # expect: OA102
