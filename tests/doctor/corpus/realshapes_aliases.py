"""Real shapes: the SDK's exported aliases of the client classes, and the module itself.

``openai.Client`` is ``OpenAI`` and ``openai.AsyncClient`` is ``AsyncOpenAI`` (openai/_client.py:
``Client = OpenAI``, ``AsyncClient = AsyncOpenAI``, re-exported by openai/__init__.py);
``openai.OpenAI`` through the module, under any alias, is the class itself.
"""

import openai
import openai as oa
from openai import AsyncClient, Client

sync_client = Client()
async_client = AsyncClient()
module_sync = openai.Client()
module_async = openai.AsyncClient()
aliased_sync = oa.OpenAI()
aliased_async = oa.AsyncOpenAI()
full_sync = openai.OpenAI()


async def blocking_alias() -> None:
    sync_client.chat.completions.create(model="m", messages=[])  # expect: OA102


async def awaiting_alias() -> None:
    await module_sync.embeddings.create(model="m", input="x")  # expect: OA101


async def forgotten_await() -> None:
    async_client.chat.completions.create(model="m", messages=[])  # expect: OA103


async def forgotten_await_module_alias() -> None:
    module_async.responses.create(model="m", input="x")  # expect: OA103


async def forgotten_await_oa() -> None:
    aliased_async.chat.completions.create(model="m", messages=[])  # expect: OA103


async def blocking_oa() -> None:
    aliased_sync.chat.completions.create(model="m", messages=[])  # expect: OA102


async def blocking_full() -> None:
    full_sync.chat.completions.create(model="m", messages=[])  # expect: OA102


async def fine() -> None:
    await async_client.chat.completions.create(model="m", messages=[])
    await module_async.chat.completions.create(model="m", messages=[])
    await aliased_async.chat.completions.create(model="m", messages=[])


def sync_fine() -> None:
    sync_client.chat.completions.create(model="m", messages=[])
    full_sync.chat.completions.create(model="m", messages=[])
