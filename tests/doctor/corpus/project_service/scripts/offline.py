"""A script run on its own beside the service (nothing imports it): not service code."""

import asyncio

from openai import AsyncOpenAI

client = AsyncOpenAI(timeout=None)  # a one-off batch may wait as long as it likes


async def main() -> None:
    page = await client.models.list()
    print(page)


if __name__ == "__main__":
    asyncio.run(main())
