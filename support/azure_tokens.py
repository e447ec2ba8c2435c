"""Azure OpenAI offline: the bundled upstream in Azure's shape, and Entra ID token providers under load.

`bundled_azure` starts the bundled upstream and hands out what ``AzureOpenAI`` and
``AsyncAzureOpenAI`` need to reach it: an endpoint, a fresh random key (never shown), an
api-version. The upstream answers Azure's paths (`support.upstream.azure`).

A real ``DefaultAzureCredential`` needs Azure. These credentials stand in for it and
implement the same protocol (``get_token_info``, see ``azure/core/credentials.py``), so the
providers under test are azure-identity's own ``get_bearer_token_provider`` from
``azure.identity`` and ``azure.identity.aio``, with their real token caches. A token
request takes `delay_s`, like the round trip a real credential makes when its cache is
cold; the token is the bundled upstream's key, which it accepts as a bearer token.

`cold_start` serves an app on its own loop with the runtime blocking detector
(`support.doctor.runtime`) watching that loop, sends a burst of chat requests while a
probe checks ``/health`` every `probe_every_s`, and reports what each side saw.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from fastapi import FastAPI
from openai import AsyncAzureOpenAI, AzureOpenAI

from .doctor.runtime import BlockingDetector, BlockingMiddleware, BlockingReport
from .serve import serve_in_thread
from .upstream import RunningUpstream, upstream_in_thread

# The experiment reads the detector's reports itself; its warnings would only repeat them.
_QUIET = logging.getLogger(__name__ + ".blocking")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

API_VERSION = "2024-10-21"  # a generally available Azure OpenAI data-plane version


@dataclass
class BundledAzure:
    """The bundled upstream, reached the way Azure OpenAI is."""

    endpoint: str
    key: str = field(repr=False)
    upstream: RunningUpstream = field(repr=False)
    api_version: str = API_VERSION

    def sync_client(self, **options: Any) -> AzureOpenAI:
        return AzureOpenAI(azure_endpoint=self.endpoint, api_key=self.key, api_version=self.api_version, **options)

    def async_client(self, **options: Any) -> AsyncAzureOpenAI:
        return AsyncAzureOpenAI(azure_endpoint=self.endpoint, api_key=self.key, api_version=self.api_version, **options)


@contextmanager
def bundled_azure(**settings: Any) -> Iterator[BundledAzure]:
    """Start the bundled upstream with a fresh key; `settings` go to it (latency, models, ...)."""
    key = secrets.token_urlsafe(24)
    with upstream_in_thread(api_key=key, **settings) as upstream:
        yield BundledAzure(upstream.base_url.removesuffix("/v1"), key, upstream)


class SlowCredential:
    """A synchronous credential whose token requests take `delay_s` (``time.sleep``)."""

    def __init__(self, token: str, delay_s: float, lifetime_s: float = 3600.0) -> None:
        self._token, self.delay_s, self.lifetime_s = token, delay_s, lifetime_s
        self.calls = 0
        self._lock = threading.Lock()

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)  # where a real credential waits for Entra ID or the metadata service
        return AccessTokenInfo(self._token, int(time.time() + self.lifetime_s))


class AsyncSlowCredential:
    """The same credential for ``azure.identity.aio``: its token requests await."""

    def __init__(self, token: str, delay_s: float, lifetime_s: float = 3600.0) -> None:
        self._token, self.delay_s, self.lifetime_s = token, delay_s, lifetime_s
        self.calls = 0

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return AccessTokenInfo(self._token, int(time.time() + self.lifetime_s))

    async def close(self) -> None:
        """Real async credentials hold sessions to close at shutdown; this one holds nothing."""

    async def __aenter__(self) -> AsyncSlowCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class ColdStart:
    """What a burst of requests to a freshly started service saw."""

    statuses: Counter[int]
    probes: list[float]  # each /health probe's latency, in seconds
    reports: list[BlockingReport] = field(repr=False)

    @property
    def worst_probe_s(self) -> float:
        return max(self.probes)

    @property
    def blocked_in_token_provider(self) -> bool:
        """True when a blocking episode's stack passes through the SDK's call to the provider."""
        return any(any(f.name == "_get_azure_ad_token" for f in r.stack) for r in self.reports)


async def cold_start(
    app: FastAPI, *, requests: int, probe_every_s: float = 0.02, threshold_s: float = 0.1, prompt: str = "hi"
) -> ColdStart:
    """Serve `app` fresh, send `requests` chats at once, and probe ``/health`` until they are done."""
    detector = BlockingDetector(threshold_s, logger=_QUIET)
    # Starlette types a middleware factory by its return value; this class is the ASGI app itself.
    app.add_middleware(BlockingMiddleware, detector=detector)  # type: ignore[arg-type]
    with serve_in_thread(app) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            chats = [asyncio.create_task(http.post("/chat", json={"prompt": prompt})) for _ in range(requests)]
            probes: list[float] = []
            while not all(task.done() for task in chats) or not probes:
                started = time.perf_counter()
                (await http.get("/health")).raise_for_status()
                probes.append(time.perf_counter() - started)
                await asyncio.sleep(probe_every_s)
            replies = await asyncio.gather(*chats)
    return ColdStart(Counter(r.status_code for r in replies), probes, list(detector.reports))
