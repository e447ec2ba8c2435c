"""OA108: a loop over a stream that can exit early, with nothing closing the stream."""

import asyncio
from collections.abc import AsyncIterator

from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI()
sync_client = OpenAI()


class Refused(Exception):
    pass


async def first_sentence(prompt: str) -> str:
    text = ""
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA108
        text += chunk.choices[0].delta.content or ""
        if "." in text:
            break
    return text


async def named(prompt: str) -> str:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    async for chunk in stream:
        if chunk.choices[0].finish_reason == "content_filter":
            raise Refused(prompt)
    return "done"


async def responses_api(prompt: str) -> str:
    async for event in await client.responses.create(model="m", input=prompt, stream=True):  # expect: OA108
        if event.type == "response.output_text.done":
            return event.text
    return ""


async def nested_return(prompt: str) -> str:
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA108
        for choice in chunk.choices:
            if choice.finish_reason:
                return choice.finish_reason
    return ""


def sync_break(prompt: str) -> str:
    for chunk in sync_client.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA108
        if chunk.choices[0].delta.content:
            break
    return "first token"


async def raise_in_handler(prompt: str) -> None:
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):  # expect: OA108
        try:
            print(chunk.choices[0].delta.content)
        except IndexError:
            raise Refused(prompt) from None


async def retried(prompt: str) -> AsyncIterator[str]:
    for _attempt in range(3):
        try:
            stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108, OA109
            async for chunk in stream:
                yield chunk.choices[0].delta.content or ""
            return
        except Exception:  # a failure mid-stream: the next attempt opens another stream
            await asyncio.sleep(1)


async def disconnect_handled(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    try:
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""
    except asyncio.CancelledError:
        print("client went away")
        raise


async def options_dict(prompt: str) -> str:
    params = {"model": "m", "messages": [], "stream": True}
    params["max_tokens"] = 64
    stream = await client.chat.completions.create(**params)  # expect: OA108
    async for chunk in stream:
        if chunk.choices[0].finish_reason:
            break
    return "done"


async def served_from_a_closure(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            if chunk.choices[0].finish_reason == "length":
                return
            yield chunk.choices[0].delta.content or ""

    return events()
