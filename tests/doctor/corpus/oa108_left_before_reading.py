"""OA108: a stream opened, then left before the loop over it, with nothing closing it (never iterated,
never closed: not even garbage collection gives its connection back)."""

from collections.abc import AsyncIterator

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, OpenAI

client = AsyncOpenAI()
sync_client = OpenAI()


class Refused(Exception):
    pass


async def over_budget() -> bool:
    return True


async def return_before_reading(prompt: str) -> str:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    if await over_budget():
        return "over budget"
    text = ""
    async for chunk in stream:
        text += chunk.choices[0].delta.content or ""
    return text


async def raise_before_reading(prompt: str) -> None:
    stream = await client.responses.create(model="m", input=prompt, stream=True)  # expect: OA108
    if not prompt:
        raise HTTPException(status_code=400, detail="empty prompt")
    async for event in stream:
        print(event.type)


def sync_return_before_reading(prompt: str) -> str:
    stream = sync_client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    if len(prompt) > 1000:
        return "too long"
    text = ""
    for chunk in stream:
        text += chunk.choices[0].delta.content or ""
    return text


def sync_loop_after_an_elif(prompt: str) -> int:
    stream = sync_client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    if prompt == "ping":
        print("pong")
    elif prompt == "stop":
        return 0
    count = 0
    for _chunk in stream:
        count += 1
    return count


async def next_attempt_without_reading(prompts: list[str]) -> None:
    for prompt in prompts:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
        if prompt.startswith("#"):
            continue  # a comment line: skipped, and its stream with it
        async for chunk in stream:
            print(chunk.choices[0].delta.content or "")


async def inside_the_with_of_a_lock(prompt: str, lock: object) -> None:
    async with lock:  # a lock, not the stream: leaving it closes nothing
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
        if await over_budget():
            raise Refused(prompt)
        async for chunk in stream:
            print(chunk)


async def left_in_the_try_else(prompt: str) -> None:
    try:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    except TimeoutError:
        return  # the call failed: no stream to close
    else:
        if await over_budget():
            return  # the call succeeded: this leaves its stream
    async for chunk in stream:
        print(chunk)


async def raised_into_a_handler_past_the_loop(prompt: str) -> str:
    try:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
        if await over_budget():
            raise Refused(prompt)
        async for chunk in stream:
            print(chunk)
    except Refused:
        return "refused"  # the handler does not close it, and the loop is behind
    return "ok"


async def served_after_a_check(prompt: str) -> StreamingResponse:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    if await over_budget():
        raise HTTPException(status_code=429, detail="over budget")

    async def events() -> AsyncIterator[str]:
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""

    return StreamingResponse(events(), media_type="text/plain")


async def left_then_broken_off(prompt: str) -> str:
    # both leaks: the message says the worse one (never iterated, never closed)
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA108
    if await over_budget():
        return ""
    async for chunk in stream:
        if chunk.choices[0].finish_reason:
            break
    return "done"


async def first_event_then_the_stream(prompt: str) -> AsyncIterator[str]:
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)  # known-miss: OA108
    # a consumer that stops at this yield (a client that left) leaves a stream never iterated; any
    # `await` or `yield` is such a point, so the doctor flags only explicit exits
    yield "event: start\n\n"
    async for chunk in stream:
        yield chunk.choices[0].delta.content or ""
