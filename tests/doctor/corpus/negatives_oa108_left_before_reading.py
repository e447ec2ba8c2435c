"""Negatives for OA108's left-before-reading case: the exit closes the stream, comes before it is
opened, ends only a loop of its own, or is caught on the way to the loop; the stream is handed on."""

import contextlib
from collections.abc import AsyncIterator

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from openai import APIError, AsyncOpenAI, OpenAI

client = AsyncOpenAI()
sync_client = OpenAI()


async def over_budget() -> bool:
    return True


async def checked_before_opening(prompt: str) -> None:
    if await over_budget():
        return
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:
        print(chunk)


async def async_with_around_the_check(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async with stream:
        if await over_budget():
            return
        async for chunk in stream:
            print(chunk)


async def opened_as_a_with_target(prompt: str) -> None:
    async with await client.chat.completions.create(model="m", messages=[], stream=True) as stream:
        if await over_budget():
            return
        async for chunk in stream:
            print(chunk)


def sync_with_target(prompt: str) -> None:
    with sync_client.chat.completions.create(model="m", messages=[], stream=True) as stream:
        if not prompt:
            raise ValueError("empty prompt")
        for chunk in stream:
            print(chunk)


async def closed_in_finally(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    try:
        if await over_budget():
            return
        async for chunk in stream:
            print(chunk)
    finally:
        await stream.close()


async def closed_before_returning(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    if await over_budget():
        await stream.close()
        return
    async for chunk in stream:
        print(chunk)


async def handed_back(prompt: str, raw: bool):
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    if raw:
        return stream  # the caller reads (and closes) it
    async for chunk in stream:
        print(chunk)


async def handed_to_a_response(prompt: str) -> StreamingResponse:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    if await over_budget():
        return StreamingResponse(drain(stream))

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""

    return StreamingResponse(events())


async def drain(stream) -> AsyncIterator[str]:
    async for _chunk in stream:
        pass
    yield ""


async def failure_to_open_returns(prompt: str) -> None:
    try:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    except APIError as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from exc  # no stream was opened
    async for chunk in stream:
        print(chunk)


async def exits_of_its_own_loop(prompt: str, words: list[str]) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    for word in words:
        if not word:
            continue
        if word == "stop":
            break
    async for chunk in stream:
        print(chunk)


async def caught_before_the_loop(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    try:
        if not prompt:
            raise ValueError("empty prompt")
    except ValueError:
        print("reading anyway")
    async for chunk in stream:
        print(chunk)


async def suppressed_before_the_loop(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    with contextlib.suppress(KeyError):
        if prompt not in {"a": 1}:
            raise KeyError(prompt)
    async for chunk in stream:
        print(chunk)


async def raised_in_the_try_that_opened_it(prompt: str) -> None:
    try:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        if await over_budget():
            raise RuntimeError("over budget")
    except RuntimeError:
        print("reading anyway")
    async for chunk in stream:
        print(chunk)


async def exit_inside_a_nested_function(prompt: str) -> None:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)

    def check() -> None:
        if not prompt:
            raise ValueError("empty prompt")

    check()
    async for chunk in stream:
        print(chunk)


async def short_lived_client(prompt: str) -> None:
    # leaving the block closes the client, and the stream's connection with it
    async with AsyncOpenAI() as own:
        stream = await own.chat.completions.create(model="m", messages=[], stream=True)
        if await over_budget():
            return
        async for chunk in stream:
            print(chunk)


async def opened_on_every_round(prompts: list[str]) -> None:
    # rebound on each round and read after the loop: too clever to judge
    for prompt in prompts:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        if prompt:
            break
    async for chunk in stream:
        print(chunk)


async def exit_after_the_loop(prompt: str) -> str:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:
        print(chunk)
    if await over_budget():
        return "over budget"
    return "ok"


async def not_streamed(prompt: str) -> str:
    completion = await client.chat.completions.create(model="m", messages=[])
    if await over_budget():
        return ""
    for choice in completion.choices:
        print(choice)
    return "ok"
