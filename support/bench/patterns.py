"""The patterns the benchmark compares: which app, which request, how many processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROMPT = "Why should an async route await an async client?"
SERVICE_TOKEN = "bench-service-token"


@dataclass(frozen=True)
class Pattern:
    name: str  # short, for flags and file names
    title: str  # for tables and plots
    app: str | None  # "module:attribute" served by uvicorn; None for the upstream alone
    path: str = "/chat"
    body: dict[str, Any] = field(default_factory=lambda: {"prompt": PROMPT})
    headers: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)  # on top of SERVICE_ENV


HARDENED: dict[str, Any] = {
    "path": "/v1/chat",
    "body": {"messages": [{"role": "user", "content": PROMPT}]},
    "headers": {"Authorization": f"Bearer {SERVICE_TOKEN}"},
}

PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in [
        Pattern("upstream", "upstream alone (ceiling)", None),
        Pattern("silent", "sync call in async def", "support.apps.silent_blocking:app"),
        Pattern("await_sync", "await on the sync client", "support.apps.broken_await:app"),
        Pattern("def_route", "A: sync def route", "support.apps.fix_sync_route:app"),
        Pattern("to_thread", "B: to_thread (default pool)", "support.apps.fix_to_thread:app"),
        Pattern(
            "to_thread_sized",
            "B: to_thread (128 threads)",
            "support.apps.fix_to_thread_sized:app",
            env={"THREADS": "128"},
        ),
        Pattern("async", "C: AsyncOpenAI", "support.apps.fix_async_client:app"),
        Pattern("async_aiohttp", "C: AsyncOpenAI + aiohttp", "support.apps.fix_async_aiohttp:app"),
        Pattern("hardened", "hardened service", "support.apps.hardened:app", **HARDENED),
        Pattern(
            "hardened_httpx",
            "hardened, httpx2 transport",
            "support.apps.hardened:app",
            env={"SERVICE_HTTP_TRANSPORT": "httpx"},
            **HARDENED,
        ),
        Pattern("hardened_2w", "hardened, 2 workers", "support.apps.hardened:app", workers=2, **HARDENED),
    ]
}

# What the services are told. Limits are sized for the benchmark's load, per process:
# a shedding service would be measuring its limit, not its speed.
SERVICE_ENV = {
    "OPENAI_MODEL": "gpt-4o-mini",
    "SERVICE_TOKENS": SERVICE_TOKEN,
    "SERVICE_MAX_CONCURRENCY": "2048",
    "SERVICE_MAX_QUEUE": "2048",
}
