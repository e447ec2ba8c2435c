"""OA107: a sync generator over a sync stream, served by StreamingResponse."""

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import OpenAI

app = FastAPI()
client = OpenAI()


def tokens(prompt: str):
    for chunk in client.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA107
        yield chunk.choices[0].delta.content or ""


def named(prompt: str):
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    for chunk in stream:  # expect: OA107
        yield chunk.choices[0].delta.content or ""


def from_param(stream):
    for chunk in stream:  # expect: OA107
        yield chunk.choices[0].delta.content or ""


@app.get("/a")
def a(prompt: str) -> StreamingResponse:
    return StreamingResponse(tokens(prompt), media_type="text/plain")


@app.get("/b")
def b(prompt: str) -> StreamingResponse:
    return StreamingResponse(content=named(prompt), media_type="text/plain")


@app.get("/c")
def c(prompt: str) -> StreamingResponse:
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    return StreamingResponse(from_param(stream))


@app.get("/d")
def d(prompt: str) -> StreamingResponse:
    def inner():
        with client.chat.completions.create(model="m", messages=[], stream=True) as stream:
            for event in stream:  # expect: OA107
                yield event.choices[0].delta.content or ""

    return StreamingResponse(inner())
