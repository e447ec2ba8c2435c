"""Real shapes: a client passed through langsmith's ``wrap_openai``, which patches the
client it is given in place and returns it (``def wrap_openai(client: C, ...) -> C``,
ending ``return client``; a sync ``create`` stays sync, an async one async)."""

import openai
from langsmith import wrappers
from langsmith.wrappers import wrap_openai
from openai import AsyncOpenAI, OpenAI

traced = wrap_openai(OpenAI())
traced_async = wrappers.wrap_openai(AsyncOpenAI(max_retries=3))
traced_alias = wrap_openai(openai.Client())


def get_client():
    client = OpenAI()
    return wrap_openai(client, tracing_extra={"tags": ["x"]})


async def blocks() -> None:
    traced.chat.completions.create(model="m", messages=[])  # expect: OA102


async def forgets_await() -> None:
    traced_async.chat.completions.create(model="m", messages=[])  # expect: OA103


async def awaits_sync() -> None:
    await traced_alias.chat.completions.create(model="m", messages=[])  # expect: OA101


async def through_factory() -> None:
    get_client().chat.completions.create(model="m", messages=[])  # expect: OA102


async def right() -> None:
    await traced_async.chat.completions.create(model="m", messages=[])


# --- negatives: other wrappers are unknown -----------------------------------------------


def wrap_other(client):
    return client


def observe(client):
    return {"client": client}


async def unknown_wrappers(wrap_openai) -> None:  # a parameter shadowing langsmith's
    wrap_other(OpenAI()).chat.completions.create(model="m", messages=[])  # known-miss: OA102
    await observe(OpenAI()).chat.completions.create(model="m", messages=[])
    await wrap_openai(OpenAI()).chat.completions.create(model="m", messages=[])


async def no_argument() -> None:
    await wrappers.wrap_openai().chat.completions.create(model="m", messages=[])
