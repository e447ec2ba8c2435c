"""A summarizer: the example service the suite tests, one ``AsyncOpenAI`` per process.

The client is made in the lifespan, from the SDK's variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``) plus ``SUMMARIZER_TIMEOUT_S`` and ``SUMMARIZER_MAX_RETRIES``, and
closed on shutdown. Routes get it through `get_client`, so a test can replace it with
``app.dependency_overrides[get_client]``. ``POST /summarize`` answers
``{"summary", "tokens"}``; the SDK's errors become documented statuses:

- ``openai.RateLimitError`` (429 after the SDK's retries): 503 with ``Retry-After`` (the
  upstream's, when it is a whole number of seconds, capped; else 1);
- ``openai.APITimeoutError``: 504;
- any other ``openai.APIError`` (connection failures, 4xx and 5xx): 502.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import openai
from fastapi import Depends, FastAPI, HTTPException, Request
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

INSTRUCTIONS = "Summarize the user's text in one sentence."
RETRY_AFTER_CAP_S = 120  # the longest Retry-After the SDK itself honours (MAX_RETRY_AFTER_DELAY)


class SummarizeRequest(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class Summary(BaseModel):
    summary: str
    tokens: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(
        timeout=float(os.environ.get("SUMMARIZER_TIMEOUT_S", "30")),
        max_retries=int(os.environ.get("SUMMARIZER_MAX_RETRIES", "2")),
    ) as client:
        app.state.openai = client
        yield


app = FastAPI(title="summarizer", lifespan=lifespan)


async def get_client(request: Request) -> AsyncOpenAI:
    return request.app.state.openai


def retry_after(error: openai.RateLimitError) -> str:
    """The upstream's Retry-After if it is a whole number of seconds (at most the cap), else 1."""
    value = error.response.headers.get("retry-after", "")
    if value.isascii() and value.isdigit():
        return str(min(int(value), RETRY_AFTER_CAP_S))
    return "1"


@app.post("/summarize")
async def summarize(body: SummarizeRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> Summary:
    try:
        completion = await client.chat.completions.create(
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            messages=[
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": body.text},
            ],
            max_completion_tokens=200,
        )
    except openai.RateLimitError as error:
        raise HTTPException(503, "model busy", headers={"Retry-After": retry_after(error)}) from None
    except openai.APITimeoutError:
        raise HTTPException(504, "the model did not answer in time") from None
    except openai.APIError:
        raise HTTPException(502, "the model could not answer") from None
    usage = completion.usage
    return Summary(summary=completion.choices[0].message.content or "", tokens=usage.total_tokens if usage else 0)
