"""Real shapes: langfuse's drop-in replacement of the SDK (``from langfuse.openai import
openai`` / ``AsyncOpenAI``): langfuse/openai.py imports and re-exports openai's module and
classes, patching ``create`` in place (sync stays sync, async stays async)."""

import langfuse.openai
from langfuse.openai import AsyncOpenAI, OpenAI, openai

client = OpenAI()
async_client = AsyncOpenAI()
dotted = langfuse.openai.AsyncOpenAI()


async def blocks() -> None:
    client.chat.completions.create(model="m", messages=[], name="trace")  # expect: OA102


async def module_client_blocks() -> None:
    openai.chat.completions.create(model="m", messages=[])  # expect: OA102


async def forgets_await() -> None:
    async_client.chat.completions.create(model="m", messages=[])  # expect: OA103


async def forgets_await_dotted() -> None:
    dotted.chat.completions.create(model="m", messages=[])  # expect: OA103


async def right() -> None:
    await async_client.chat.completions.create(model="m", messages=[])
    await openai.AsyncOpenAI().chat.completions.create(model="m", messages=[])


# --- negatives: langfuse's own client and decorators are not OpenAI clients -------------


async def langfuse_client() -> None:
    from langfuse import Langfuse

    lf = Langfuse()
    lf.trace(name="x").generation(name="y")
    lf.flush()


async def another_wrapper_package() -> None:
    from mylib.openai import OpenAI as Wrapped  # not a known re-export: unknown

    await Wrapped().chat.completions.create(model="m", messages=[])
