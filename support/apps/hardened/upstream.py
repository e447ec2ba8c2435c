"""The one ``AsyncOpenAI`` client of the process, configured for production.

- Timeouts: ``connect_timeout_s`` to connect, ``read_timeout_s`` between bytes. The SDK's
  default read timeout is 600 s per attempt, times three attempts.
- Retries: the SDK's own (``max_retries``, exponential backoff, honouring
  ``Retry-After``). No second retry layer on top: retries would multiply.
- ``insufficient_quota`` is a 429 the SDK would retry; it never succeeds on retry, so a
  response hook marks it ``x-should-retry: false``, a header the SDK obeys.
- ``DefaultAsyncHttpxClient`` keeps the SDK's connection limits (a bare transport client
  would lose them) and carries the hooks that count attempts for the log line.
"""

from __future__ import annotations

import httpx2
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from . import context
from .settings import Settings


async def _count_attempt(request: httpx2.Request) -> None:
    record = context.current.get()
    if record is not None:
        record.upstream_attempts += 1
        request.headers["X-Client-Request-Id"] = record.request_id  # the upstream can trace it back


async def _never_retry_quota(response: httpx2.Response) -> None:
    if response.status_code == 429:
        await response.aread()
        if b"insufficient_quota" in response.content:
            response.headers["x-should-retry"] = "false"


def make_client(settings: Settings) -> AsyncOpenAI:
    assert settings.openai_api_key is not None, "Settings.check() runs first"
    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,  # None: the SDK's default (api.openai.com)
        timeout=httpx2.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        max_retries=settings.max_retries,
        http_client=DefaultAsyncHttpxClient(
            event_hooks={"request": [_count_attempt], "response": [_never_retry_quota]}
        ),
    )
