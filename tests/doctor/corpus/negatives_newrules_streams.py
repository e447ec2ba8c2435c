"""Negatives for OA108: streams closed by `with` or `finally`, read to the end, or handed on."""

import asyncio
from collections.abc import AsyncIterator

from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI()
sync_client = OpenAI()


async def with_block(prompt: str) -> str:
    async with await client.chat.completions.create(model="m", messages=[], stream=True) as stream:
        async for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
    return "ok"


def sync_with(prompt: str) -> None:
    with sync_client.chat.completions.create(model="m", messages=[], stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].finish_reason:
                return


async def to_the_end(prompt: str) -> str:
    text = ""
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):
        text += chunk.choices[0].delta.content or ""
        for choice in chunk.choices:
            if choice.finish_reason:
                break  # leaves the inner loop only
    return text


async def finally_close(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    try:
        async for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
    finally:
        await stream.close()


async def closed_after(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:
        if chunk.choices[0].finish_reason:
            break
    await stream.close()


async def helper(prompt: str) -> None:
    async with client.chat.completions.stream(model="m", messages=[]) as stream:
        async for event in stream:
            if event.type == "content.done":
                break


async def caught_inside(prompt: str) -> None:
    async for chunk in await client.chat.completions.create(model="m", messages=[], stream=True):
        try:
            if not chunk.choices:
                raise ValueError("empty chunk")
        except ValueError:
            continue


async def not_a_stream(prompt: str) -> None:
    async for model in client.models.list():
        if model.id == prompt:
            break
    page = await client.chat.completions.create(model="m", messages=[])
    for choice in page.choices:
        if choice.finish_reason:
            break


async def handed_on(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:
        if chunk.choices[0].finish_reason:
            break
        yield chunk.choices[0].delta.content or ""
    yield str(stream.response.status_code)


async def unknown_source(stream) -> None:
    async for chunk in stream:
        if chunk:
            break


async def error_reported_at_the_end(prompt: str) -> AsyncIterator[str]:
    # the except only reports the failure and the generator ends: no early exit in the loop
    try:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""
    except Exception as exc:
        yield f"error: {exc}"


async def retried_and_closed(prompt: str) -> AsyncIterator[str]:
    for _attempt in range(3):
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        try:
            async for chunk in stream:
                yield chunk.choices[0].delta.content or ""
            return
        except Exception:
            await stream.close()


async def disconnect_closes(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    try:
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""
    except asyncio.CancelledError:
        await stream.close()
        raise


async def options_without_stream(prompt: str) -> str:
    params = {"model": "m", "messages": [], "stream": False}
    page = await client.chat.completions.create(**params)
    for choice in page.choices:
        if choice.finish_reason:
            break
    return "done"


async def closure_read_to_the_end(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""

    return events()


async def closure_closed_by_the_caller(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
            yield chunk.choices[0].delta.content or ""
        await stream.close()

    return events()
