"""Real shapes: a client held as a class attribute (read through the class or `self`),
and an ``async def`` method that makes one, awaited."""

from openai import AsyncOpenAI, OpenAI


class Service:
    client = AsyncOpenAI()
    sync_client = OpenAI()

    async def make(self):
        return AsyncOpenAI()

    async def through_self(self) -> None:
        self.client.chat.completions.create(model="m", messages=[])  # expect: OA103

    async def through_made(self) -> None:
        client = await self.make()
        client.responses.create(model="m", input="x")  # expect: OA103


async def through_class() -> None:
    Service.client.chat.completions.create(model="m", messages=[])  # expect: OA103
    await Service.sync_client.chat.completions.create(model="m", messages=[])  # expect: OA101


async def right() -> None:
    await Service.client.chat.completions.create(model="m", messages=[])


# --- negatives ----------------------------------------------------------------------------


class Patched:
    client = OpenAI()

    @property
    def helper(self):
        return OpenAI()


Patched.client = object()  # replaced from outside: unknown


class Twice:
    client = OpenAI()


class Twice:  # noqa: F811 - defined twice: unknown
    client = AsyncOpenAI()


async def negatives() -> None:
    await Patched.client.chat.completions.create(model="m", messages=[])
    Patched.helper.chat.completions.create(model="m", messages=[])  # a property object, not a client
    await Twice.client.chat.completions.create(model="m", messages=[])
