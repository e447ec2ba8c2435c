"""Helpers the routes in main.py call once per request."""

from fastapi import Request
from openai import AsyncOpenAI, OpenAI

from .clients import async_client
from .clients import sync_client as shared
from .retrying import llm_retry


def answer(question: str) -> str:
    client = OpenAI()  # expect: OA104
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": question}])
    return completion.choices[0].message.content or ""


async def summarize(text: str) -> str:
    client = AsyncOpenAI()  # expect: OA104
    completion = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


async def blocking(text: str) -> str:
    completion = shared.chat.completions.create(model="m", messages=[])  # expect: OA102
    return completion.choices[0].message.content or ""


async def from_state(request: Request) -> str:
    completion = request.app.state.llm.chat.completions.create(model="m", messages=[])  # expect: OA102
    return completion.choices[0].message.content or ""


@llm_retry
async def retried(text: str) -> str:
    completion = await async_client.chat.completions.create(model="m", messages=[])  # expect: OA109
    return completion.choices[0].message.content or ""


def get_llm(request: Request) -> OpenAI:  # expect: OA112
    return request.app.state.llm


def get_unused(request: Request) -> OpenAI:  # never given to Depends: no thread hop
    return request.app.state.llm


async def well_built(text: str) -> str:
    async with AsyncOpenAI() as client:  # closed here: not dropped
        completion = await client.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""
