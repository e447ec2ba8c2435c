"""Real shapes: clients reached through a factory in the same file, and through `self`.

A module-level function without a return annotation returns a client when every one of
its ``return`` statements returns the same kind of client (``functools.lru_cache`` and
``functools.cache`` keep that); an ``async def`` factory does so once awaited. A client
stored on ``self`` in ``__init__`` is that client in every method, awaited or not. A
``return None`` or ``x = None`` beside the client does not hide it: a call such as
``x.chat.completions.create`` succeeds only when x is the client.
"""

import functools
import os

import openai
from openai import AsyncOpenAI, AzureOpenAI, OpenAI


def get_client():
    return OpenAI(api_key=os.environ["OPENAI_API_KEY"])


def build_client(timeout: float = 30.0):
    client = OpenAI(timeout=timeout)
    return client


def pick_client(azure: bool):
    if azure:
        return AzureOpenAI(api_version="2024-06-01")
    return OpenAI()


@functools.lru_cache
def cached_async():
    return AsyncOpenAI()


@functools.lru_cache(maxsize=1)
def cached_async_sized():
    return openai.AsyncOpenAI()


async def make_async():
    return AsyncOpenAI()


async def direct_factory_call() -> None:
    get_client().chat.completions.create(model="m", messages=[])  # expect: OA102


async def factory_to_local() -> str:
    client = build_client()
    response = client.responses.create(model="m", input="x")  # expect: OA102
    return response.output_text


async def either_sync_factory() -> None:
    await pick_client(True).chat.completions.create(model="m", messages=[])  # expect: OA101


async def cached_factory_not_awaited() -> None:
    cached_async().chat.completions.create(model="m", messages=[])  # expect: OA103


async def cached_sized_not_awaited() -> None:
    cached_async_sized().embeddings.create(model="m", input="x")  # expect: OA103


async def async_factory_awaited() -> None:
    client = await make_async()
    client.chat.completions.create(model="m", messages=[])  # expect: OA103


async def factories_used_right() -> None:
    await cached_async().chat.completions.create(model="m", messages=[])
    client = await make_async()
    await client.chat.completions.create(model="m", messages=[])


def sync_factory_in_sync_code() -> None:
    get_client().chat.completions.create(model="m", messages=[])


def maybe_none(flag: bool):
    if not flag:
        return None
    return OpenAI()


async def factory_may_return_none() -> None:
    client = maybe_none(True)
    if client is not None:
        await client.chat.completions.create(model="m", messages=[])  # expect: OA101


def bare_return(flag: bool):
    if flag:
        return
    return OpenAI()


async def factory_with_bare_return() -> None:
    bare_return(False).chat.completions.create(model="m", messages=[])  # expect: OA102


_client = None


def get_global_client():
    global _client
    if _client is None:
        _client = OpenAI()
    return _client


async def global_lazy_factory() -> None:
    get_global_client().chat.completions.create(model="m", messages=[])  # expect: OA102


class Lazy:
    def __init__(self) -> None:
        self.client = None  # set later: None until then, and `None.chat` would raise

    async def ensure(self) -> None:
        if self.client is None:
            self.client = OpenAI()
        await self.client.chat.completions.create(model="m", messages=[])  # expect: OA101


class Assistant:
    def __init__(self) -> None:
        self.client = AsyncOpenAI()
        self.sync_client = openai.OpenAI()
        self.from_factory = get_client()

    async def forgot(self) -> None:
        self.client.chat.completions.create(model="m", messages=[])  # expect: OA103

    async def awaits_sync(self) -> None:
        await self.sync_client.chat.completions.create(model="m", messages=[])  # expect: OA101

    async def blocks(self) -> None:
        self.from_factory.chat.completions.create(model="m", messages=[])  # expect: OA102

    async def right(self) -> None:
        await self.client.chat.completions.create(model="m", messages=[])

    def sync_right(self) -> None:
        self.sync_client.chat.completions.create(model="m", messages=[])
