"""Real shapes: ``import openai`` then ``openai = openai.OpenAI(...)`` at module level.

The name is the module until the rebinding and a sync client after it: a call through a
module resource (``openai.chat.completions.create``) is a sync client's call either way.
"""

import os

import openai

openai = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY"))


class Model:
    def generate(self, message: str) -> str:
        response = openai.chat.completions.create(model="m", messages=[{"role": "user", "content": message}])
        return response.choices[0].message.content or ""

    async def agenerate(self, message: str) -> str:
        response = openai.chat.completions.create(model="m", messages=[])  # expect: OA102
        return response.choices[0].message.content or ""


async def awaited() -> None:
    await openai.embeddings.create(model="m", input="x")  # expect: OA101
