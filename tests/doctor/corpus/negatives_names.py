"""Negatives: names that look like clients but are not OpenAI clients."""

import asyncio

import httpx
from fastapi import FastAPI
from openai import AsyncOpenAI, OpenAI

app = FastAPI()
client = OpenAI()


@app.get("/proxy")
async def proxy() -> str:
    client = httpx.AsyncClient()  # a local `client`, not the module's OpenAI one
    response = await client.get("https://example.com")
    await client.aclose()
    return response.text


@app.get("/other")
async def other(client: httpx.AsyncClient) -> None:
    await client.post("https://example.com")


class Wrapper:
    def __init__(self, client) -> None:  # unannotated: unknown, so never flagged
        self.client = client

    async def go(self) -> None:
        self.client.chat.completions.create(model="m", messages=[])


maybe = OpenAI() if __name__ == "__main__" else AsyncOpenAI()  # could be either


async def either() -> None:
    maybe.chat.completions.create(model="m", messages=[])


async def rebound() -> None:
    c = OpenAI()
    c = httpx.AsyncClient()
    await c.get("https://example.com")


async def uses_asyncio() -> None:
    await asyncio.sleep(0)
