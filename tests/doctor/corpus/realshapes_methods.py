"""Real shapes: a client reached through a method or a property of the same class.

``self.get_client()`` is what that method returns (every ``return`` agreeing, as for a
module-level factory); ``self.client`` is what a ``@property`` or
``@functools.cached_property`` named ``client`` returns, when nothing assigns
``self.client`` as well.
"""

import functools

from openai import AsyncOpenAI, OpenAI


class Agent:
    def __init__(self) -> None:
        self._client = OpenAI()

    def get_client(self):
        return self._client

    @property
    def client(self):
        return self._client

    @functools.cached_property
    def async_client(self):
        return AsyncOpenAI()

    async def via_method(self) -> None:
        self.get_client().chat.completions.create(model="m", messages=[])  # expect: OA102

    async def via_property(self) -> None:
        await self.client.chat.completions.create(model="m", messages=[])  # expect: OA101

    async def via_cached_property(self) -> None:
        self.async_client.responses.create(model="m", input="x")  # expect: OA103

    async def right(self) -> None:
        await self.async_client.responses.create(model="m", input="x")

    def sync_right(self) -> None:
        self.client.chat.completions.create(model="m", messages=[])
        self.get_client().chat.completions.create(model="m", messages=[])


# --- negatives (and, marked known-miss, bugs left alone by design) ---------------------


def register(fn):
    return fn


class Tricky:
    def __init__(self, client) -> None:
        self._client = client  # unknown

    def get_client(self):
        return self._client

    @property
    def client(self):
        return OpenAI()

    @client.setter
    def client(self, value) -> None:  # a second `client`: the property is left alone
        self._other = value

    @register  # an unknown decorator
    def wrapped(self):
        return OpenAI()

    @staticmethod
    def build():
        return OpenAI()

    def not_a_property(self):
        return OpenAI()

    async def go(self) -> None:
        await self.get_client().chat.completions.create(model="m", messages=[])
        # the getter does return a sync client, but a property defined twice is left alone
        await self.client.chat.completions.create(model="m", messages=[])  # known-miss: OA101
        self.wrapped().chat.completions.create(model="m", messages=[])
        # a staticmethod's result: not resolved (only plain methods and properties are)
        await self.build().chat.completions.create(model="m", messages=[])  # known-miss: OA101
        # a plain method read as an attribute is the bound method, not its result
        self.not_a_property.chat.completions.create(model="m", messages=[])


class Overwritten:
    @property
    def client(self):
        return OpenAI()

    def reset(self) -> None:
        self.client = None  # assigned as well (it would raise, having no setter): left alone

    async def go(self) -> None:
        await self.client.chat.completions.create(model="m", messages=[])  # known-miss: OA101
