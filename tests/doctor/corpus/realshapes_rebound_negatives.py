"""Real-shape negatives: ``openai`` rebound to something that is not a sync client."""

import openai

openai = openai.AsyncOpenAI()  # the name is now an async client (or, before, the module)


async def right() -> None:
    await openai.chat.completions.create(model="m", messages=[])  # an async call: fine


def make(value):
    return value


class Holder:
    def __init__(self) -> None:
        import httpx

        httpx = make(httpx)  # rebound to an unknown value
        self.http = httpx

    async def go(self) -> None:
        await self.http.chat.completions.create(model="m", messages=[])
