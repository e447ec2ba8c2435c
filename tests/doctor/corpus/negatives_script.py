"""Negatives: a script, not a FastAPI service: a module-level AsyncOpenAI is fine here."""

import asyncio

from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI()
sync_client = OpenAI()


async def main() -> None:
    completion = await client.chat.completions.create(model="m", messages=[])
    print(completion.choices[0].message.content)
    await client.close()


def sync_main() -> None:
    for chunk in sync_client.chat.completions.create(model="m", messages=[], stream=True):
        print(chunk)


def generator():
    for chunk in sync_client.chat.completions.create(model="m", messages=[], stream=True):
        yield chunk  # not served by a StreamingResponse: a CLI may iterate it to the end


if __name__ == "__main__":
    asyncio.run(main())
