"""Real shapes: a client chosen by a conditional expression or unpacked from a tuple."""

import os

from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

client = AzureOpenAI(api_version="2024-06-01") if os.environ.get("AZURE_OPENAI_ENDPOINT") else OpenAI()
async_client = AsyncOpenAI() if os.environ.get("OPENAI_API_KEY") else None
llm, MODEL = OpenAI(), "gpt-4o-mini"
[alpha, beta] = [AsyncAzureOpenAI(api_version="2024-06-01"), AsyncOpenAI()]


async def either_sync() -> None:
    client.chat.completions.create(model="m", messages=[])  # expect: OA102


async def maybe_none() -> None:
    async_client.chat.completions.create(model="m", messages=[])  # expect: OA103


async def unpacked() -> None:
    await llm.chat.completions.create(model=MODEL, messages=[])  # expect: OA101
    alpha.embeddings.create(model="m", input="x")  # expect: OA103
    await beta.embeddings.create(model="m", input="x")


# --- negatives ----------------------------------------------------------------------------


def make_pair():
    return OpenAI(), "m"


mixed = OpenAI() if os.environ.get("SYNC") else AsyncOpenAI()
from_call, name = make_pair()  # unpacking a call: unknown
first, *rest = OpenAI(), AsyncOpenAI(), None  # starred: unknown
looped = OpenAI()
for looped in [object()]:  # rebound by a loop: unknown
    pass
caught = OpenAI()
try:
    pass
except Exception as caught:  # rebound by an except clause: unknown
    pass
counted = OpenAI()
counted += 1  # augmented: unknown


async def negatives() -> None:
    await mixed.chat.completions.create(model="m", messages=[])
    await from_call.chat.completions.create(model="m", messages=[])
    await first.chat.completions.create(model="m", messages=[])
    await looped.chat.completions.create(model="m", messages=[])
    await caught.chat.completions.create(model="m", messages=[])
    await counted.chat.completions.create(model="m", messages=[])
