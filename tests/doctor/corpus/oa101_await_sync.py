"""OA101: awaiting calls of the sync client, through every way of naming it."""

import openai
from fastapi import FastAPI
from openai import AzureOpenAI, OpenAI
from openai import OpenAI as OA

app = FastAPI()
client = OpenAI()
aliased = OA(api_key="x")
qualified = openai.OpenAI()
azure = AzureOpenAI(api_version="2024-06-01", azure_endpoint="https://x")


@app.post("/a")
async def a(prompt: str) -> str:
    completion = await client.chat.completions.create(model="m", messages=[])  # expect: OA101
    return completion.choices[0].message.content or ""


@app.post("/b")
async def b() -> None:
    await aliased.responses.create(model="m", input="hi")  # expect: OA101
    await qualified.chat.completions.create(model="m", messages=[], stream=True)  # expect: OA101
    await azure.chat.completions.create(model="m", messages=[])  # expect: OA101
    await client.with_options(timeout=5).chat.completions.create(model="m", messages=[])  # expect: OA101
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=[])  # expect: OA101
    print(raw.headers)


class Service:
    def __init__(self) -> None:
        self.client = OpenAI()

    async def ask(self) -> None:
        await self.client.beta.assistants.list()  # expect: OA101


async def from_param(c: OpenAI) -> None:
    await c.embeddings.create(model="m", input="x")  # expect: OA101


async def from_string_annotation(c: "OpenAI | None") -> None:
    await c.embeddings.create(model="m", input="x")  # expect: OA101


async def notebook_style() -> None:
    with OpenAI() as local:
        await local.models.retrieve("m")  # expect: OA101
