"""Real-shape negatives: names and factories that look like OpenAI clients but are not
certainly one, so they are left alone (precision first)."""

import httpx
from openai import AsyncOpenAI, OpenAI


class Client:  # a local class named Client: not openai's
    def __init__(self) -> None:
        self.chat = None


async def local_client_class() -> None:
    Client().chat.completions.create(model="m", messages=[])


def returns_something_else():
    return httpx.Client()


async def other_factory() -> None:
    returns_something_else().chat.completions.create(model="m", messages=[])


def sync_or_async(flag: bool):
    if flag:
        return OpenAI()
    return AsyncOpenAI()


async def mixed_factory() -> None:
    await sync_or_async(False).chat.completions.create(model="m", messages=[])


def wrap(fn):
    return fn


@wrap  # an unknown decorator may return anything
def decorated():
    return OpenAI()


async def decorated_factory() -> None:
    decorated().chat.completions.create(model="m", messages=[])


def yields_client():
    yield OpenAI()


async def generator_factory() -> None:
    for client in yields_client():  # a generator's items are not resolved
        await client.chat.completions.create(model="m", messages=[])  # known-miss: OA101


def recursive(depth: int):
    return recursive(depth - 1)


async def recursive_factory() -> None:
    recursive(3).chat.completions.create(model="m", messages=[])


async def make_async():
    return AsyncOpenAI()


async def async_factory_not_awaited() -> None:
    # the coroutine has no `.chat`: an AttributeError, not one of the rules' findings
    make_async().chat.completions.create(model="m", messages=[])


def uses_factory_object() -> None:
    factory = returns_something_else
    factory.chat.completions.create(model="m", messages=[])


def nothing():
    return None


async def none_factory() -> None:
    nothing().chat.completions.create(model="m", messages=[])


async def param_default_none(client=None) -> None:  # a caller may pass any client
    client.chat.completions.create(model="m", messages=[])


_shared = None


def set_shared(value) -> None:
    global _shared
    _shared = value  # an unknown value: _shared is unknown


def init_shared() -> None:
    global _shared
    _shared = OpenAI()


async def global_set_twice() -> None:
    await _shared.chat.completions.create(model="m", messages=[])


class Service:
    def __init__(self) -> None:
        self.client = AsyncOpenAI()

    def swap(self, other) -> None:
        self.client = other  # reassigned to an unknown value: self.client is unknown

    async def call(self) -> None:
        self.client.chat.completions.create(model="m", messages=[])


async def shadowed_import(OpenAI) -> None:  # a parameter hides the import
    await OpenAI().chat.completions.create(model="m", messages=[])
