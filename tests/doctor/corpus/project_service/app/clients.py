"""Clients built once, at import time."""

import httpx
from langsmith.wrappers import wrap_openai
from openai import AsyncOpenAI, OpenAI

sync_client = OpenAI(max_retries=0)
async_client = AsyncOpenAI()  # closed by the lifespan in main.py: fine
traced_client = wrap_openai(AsyncOpenAI())  # expect: OA105
http = httpx.AsyncClient()  # not an OpenAI client


def fresh_client() -> OpenAI:
    return OpenAI()  # a new client per call


def shared_client() -> OpenAI:
    return sync_client
