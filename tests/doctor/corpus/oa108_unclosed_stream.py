"""OA108: a loop over a stream that can exit early, with nothing closing the stream."""

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
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    async for chunk in stream:  # expect: OA108
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
