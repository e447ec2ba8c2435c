"""OA106: asyncio.run() inside a running loop."""

import asyncio
from asyncio import run as run_now

from openai import AsyncOpenAI


async def ask(client: AsyncOpenAI) -> str:
    completion = await client.chat.completions.create(model="m", messages=[])
    return completion.choices[0].message.content or ""


async def handler(client: AsyncOpenAI) -> str:
    return asyncio.run(ask(client))  # expect: OA106


async def other(client: AsyncOpenAI) -> str:
    return run_now(ask(client))  # expect: OA106


def main() -> None:
    print(asyncio.run(ask(AsyncOpenAI())))  # a script's entry point: fine


if __name__ == "__main__":
    main()
