"""The one ``AsyncOpenAI`` client of the process, configured for production.

- Timeouts: ``connect_timeout_s`` to connect, ``read_timeout_s`` between bytes. The SDK's
  default read timeout is 600 s per attempt, times three attempts.
- Retries: the SDK's own (``max_retries``, exponential backoff, honouring
  ``Retry-After``). No second retry layer on top: retries would multiply.
- ``insufficient_quota`` is a 429 the SDK would retry; it never succeeds on retry, so a
  response hook marks it ``x-should-retry: false``, a header the SDK obeys.
- Likewise a ``Retry-After`` the request's deadline can't hold together with one more
  attempt: the SDK would sleep through it holding the caller's slot, and the deadline would
  turn the wait into a 504 with no ``Retry-After``. Marked not to be retried, it reaches
  the caller at once as a 429 with the upstream's ``Retry-After`` (see ``errors``).
- The transport is aiohttp (``DefaultAioHttpClient``) by default: it costs less CPU per
  call than the SDK's default httpx2 transport, whose connection pool checks every pooled
  connection each time it hands one out (notebook 08 measures both, side by side).
  ``SERVICE_HTTP_TRANSPORT=httpx`` switches back.
  Both ``Default*`` classes keep the SDK's timeouts and connection limits (a bare client
  would lose them) and carry the hooks that count attempts for the log line.
"""

from __future__ import annotations

import asyncio
import math

import httpx2
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

from . import context, errors
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


async def _never_wait_past_the_deadline(response: httpx2.Response) -> None:
    """Refuse a retry that could not finish before the request's deadline.

    The SDK retries 408, 409, 429 and 5xx after sleeping for the upstream's ``Retry-After``
    (up to 120 s; ``BaseClient._calculate_retry_timeout`` in openai/_base_client.py) unless
    the reply says ``x-should-retry: false`` (``BaseClient._should_retry``). A retry is worth
    its wait only if the wait and one more attempt fit before the deadline
    (``RequestRecord.deadline``, set by the route); an attempt may take up to its read
    timeout, which httpx keeps on the request (``extensions["timeout"]``). Otherwise the
    error is raised now and the slot comes back at once. Waits that fit, and the SDK's own
    short backoff (no ``Retry-After``), are left to the SDK.
    """
    record = context.current.get()
    if response.is_success or record is None or record.deadline is None:
        return
    wait = errors.upstream_wait_s(response.headers)
    if wait is None or not math.isfinite(wait) or wait <= 0:
        return
    attempt_s = response.request.extensions.get("timeout", {}).get("read") or 0.0
    if wait + attempt_s > record.deadline - asyncio.get_running_loop().time():
        response.headers["x-should-retry"] = "false"


def make_client(settings: Settings) -> AsyncOpenAI:
    assert settings.openai_api_key is not None, "Settings.check() runs first"
    transport = DefaultAioHttpClient if settings.http_transport == "aiohttp" else DefaultAsyncHttpxClient
    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,  # None: the SDK's default (api.openai.com)
        timeout=httpx2.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        max_retries=settings.max_retries,
        http_client=transport(
            event_hooks={"request": [_count_attempt], "response": [_never_retry_quota, _never_wait_past_the_deadline]}
        ),
    )
