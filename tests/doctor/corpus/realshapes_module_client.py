"""Real shapes: the module-level client of openai >= 1.

``import openai; openai.chat.completions.create(...)`` goes through a lazily built *sync*
client (openai/__init__.py: ``class _ModuleClient(OpenAI)``, ``_load_client() -> OpenAI``,
and ``from ._module_client import chat as chat, responses as responses, ...``): it blocks
inside ``async def`` and is not awaitable.

openai 0.x calls (``openai.ChatCompletion.create``, ``openai.ChatCompletion.acreate``,
``openai.Embedding.create``) are out of scope and never flagged: they are not the module
client's resources, that API is gone from openai >= 1 (it raises ``APIRemovedInV1``), and
``acreate`` was a real coroutine in 0.x, so awaiting it was right there.
"""

import openai
import openai as oa
from openai import chat, embeddings


async def blocking_chat() -> None:
    openai.chat.completions.create(model="m", messages=[])  # expect: OA102


async def blocking_responses() -> str:
    response = openai.responses.create(model="m", input="x")  # expect: OA102
    return response.output_text


async def blocking_embeddings() -> None:
    vectors = openai.embeddings.create(model="m", input="x")  # expect: OA102
    print(vectors)


async def awaited_module_client() -> None:
    await openai.chat.completions.create(model="m", messages=[])  # expect: OA101


async def awaited_aliased_module() -> None:
    await oa.images.generate(prompt="x")  # expect: OA101


async def blocking_aliased_module() -> None:
    oa.moderations.create(input="x")  # expect: OA102


async def imported_resource() -> None:
    # `from openai import chat` is the same proxy of the module client
    chat.completions.create(model="m", messages=[])  # expect: OA102
    await embeddings.create(model="m", input="x")  # expect: OA101


def sync_is_fine() -> None:
    openai.chat.completions.create(model="m", messages=[])
    oa.embeddings.create(model="m", input="x")
    chat.completions.create(model="m", messages=[])


# --- negatives: openai 0.x, out of scope ------------------------------------------------


async def old_api_create() -> None:
    openai.ChatCompletion.create(model="m", messages=[])


async def old_api_acreate() -> None:
    await openai.ChatCompletion.acreate(model="m", messages=[])


async def old_api_embedding() -> None:
    openai.Embedding.create(model="m", input="x")


# --- negatives: not the module client ---------------------------------------------------


async def module_settings() -> None:
    openai.api_key = "sk-..."
    print(openai.types.chat.ChatCompletion)


async def shadowed_module(openai) -> None:  # a parameter named openai
    await openai.chat.completions.create(model="m", messages=[])


async def shadowed_resource() -> None:
    chat = make_chat()  # a local `chat`, not openai's
    await chat.completions.create(model="m", messages=[])


def make_chat():
    return object()
