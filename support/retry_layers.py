"""Retries around an SDK call: two layers multiply, and one layer that knows what not to retry.

The SDK already retries (``max_retries=2``: 408, 409, 429, >= 500, connection errors and
timeouts; ``BaseClient._should_retry`` in openai/_base_client.py). A tenacity decorator
around a call on such a client makes every one of its attempts a full SDK call with its
own retries: `ask_with_stacked_retries` is that common shape. `ask_with_one_layer` is the
fix for code that wants tenacity: the client's own retries off (``max_retries=0``), a
predicate (`is_retryable`) that keeps the SDK's rule but gives up at once on
``insufficient_quota``, and a wait that honours the server's ``retry-after-ms`` /
``Retry-After`` as the SDK does.
"""

from __future__ import annotations

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_fixed,
)

__all__ = ["ATTEMPTS", "ask_with_one_layer", "ask_with_stacked_retries", "is_retryable", "wait_retry_after"]

ATTEMPTS = 3  # tenacity's attempts in both shapes: the same budget as the SDK's default (1 + 2 retries)
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Classify this ticket: billing or bug?"}]


@retry(
    stop=stop_after_attempt(ATTEMPTS),
    wait=wait_fixed(0.01),
    retry=retry_if_exception_type(openai.APIError),
    reraise=True,
)
async def ask_with_stacked_retries(client: AsyncOpenAI, model: str, fault: str | None = None) -> str:
    """The common shape: tenacity around a client that keeps the SDK's own retries."""
    completion = await client.chat.completions.create(
        model=model,
        messages=PROMPT,
        extra_headers={"x-upstream-fault": fault} if fault else None,
    )
    return completion.choices[0].message.content or ""


def is_retryable(exc: BaseException) -> bool:
    """The SDK's retry rule (timeouts, connection errors, 408, 409, 429, >= 500), except a
    429 whose code is ``insufficient_quota``: the account is out of credit, and no retry
    changes that."""
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.code == "insufficient_quota":
            return False
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


_backoff = wait_exponential(multiplier=0.5, max=8)  # the SDK's schedule (0.5 s doubling, 8 s at most), no jitter


def wait_retry_after(state: RetryCallState) -> float:
    """The server's ``retry-after-ms`` or ``Retry-After`` (seconds) when it sent one, as the SDK
    honours it; otherwise the SDK's exponential backoff (0.5 s, 1 s, 2 s, ... up to 8 s)."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            try:
                return max(0.0, float(headers[name]) / scale)
            except (KeyError, ValueError):
                continue
    return _backoff(state)


@retry(stop=stop_after_attempt(ATTEMPTS), wait=wait_retry_after, retry=retry_if_exception(is_retryable), reraise=True)
async def ask_with_one_layer(client: AsyncOpenAI, model: str, fault: str | None = None) -> str:
    """One retry layer: `client` must be built with ``max_retries=0``; tenacity decides."""
    if client.max_retries != 0:
        raise ValueError("ask_with_one_layer is the only retry layer: build the client with max_retries=0")
    completion = await client.chat.completions.create(
        model=model,
        messages=PROMPT,
        extra_headers={"x-upstream-fault": fault} if fault else None,
    )
    return completion.choices[0].message.content or ""
