"""OA105: module-level AsyncOpenAI in a FastAPI module, never closed."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from openai import AsyncAzureOpenAI, AsyncOpenAI

client = AsyncOpenAI()  # expect: OA105
azure: AsyncAzureOpenAI = AsyncAzureOpenAI(api_version="2024-06-01", azure_endpoint="https://x")  # expect: OA105
closed = AsyncOpenAI()


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await closed.close()


app = FastAPI(lifespan=lifespan)


@app.post("/chat")
async def chat() -> str:
    completion = await client.chat.completions.create(model="m", messages=[])
    await azure.models.list()
    await closed.models.list()
    return completion.choices[0].message.content or ""
