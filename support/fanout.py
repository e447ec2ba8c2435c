"""Call a service many times, a few calls at a time, and keep what each caller saw.

Notebooks put a served app under a small concurrent load and then look at the answers:
statuses, how long each took, a header such as ``Retry-After``. That loop of requests is
harness, not the lesson, so it lives here. (Throughput and latency percentiles are
`support.bench`'s job; this keeps every reply instead.)

- `post_concurrently`: the same POST `n` times, at most `concurrency` in flight;
- `status_counts`: how many replies had each status;
- `post_each`: one POST per named case (a bad token, a body too large, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Reply", "post_concurrently", "post_each", "status_counts"]


@dataclass(frozen=True)
class Reply:
    """What one caller got back."""

    status: int
    elapsed_s: float  # from sending the request to reading the whole body
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


async def post_concurrently(
    base_url: str,
    path: str,
    body: Any,
    *,
    n: int,
    concurrency: int,
    headers: Mapping[str, str] | None = None,
    warm_up: int = 0,
    timeout: float = 60.0,  # noqa: ASYNC109 - each request's timeout, handed to httpx
) -> list[Reply]:
    """POST `body` (JSON) to ``base_url + path`` `n` times, at most `concurrency` at once.

    The replies come back in the order the requests were created, whatever order they
    finished in. `warm_up` requests go first, one at a time, and are not returned: a
    first request pays for connections and lazy imports that the load should not see.
    A warm-up answered with an error status raises `RuntimeError`: the load would
    measure a broken service.
    """
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=dict(headers or {}), timeout=timeout) as http:
        for _ in range(warm_up):
            response = await http.post(path, json=body)
            if response.status_code >= 400:
                raise RuntimeError(f"warm-up POST {path} answered {response.status_code}")

        async def one() -> Reply:
            async with gate:
                started = time.perf_counter()
                response = await http.post(path, json=body)
                return Reply(response.status_code, time.perf_counter() - started, dict(response.headers))

        return list(await asyncio.gather(*(one() for _ in range(n))))


def status_counts(replies: Iterable[Reply]) -> Counter[int]:
    """How many replies had each HTTP status."""
    return Counter(reply.status for reply in replies)


def post_each(
    base_url: str,
    path: str,
    cases: Mapping[str, Mapping[str, Any]],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> dict[str, httpx.Response]:
    """One POST per case, in order; each case is keyword arguments for ``httpx.post``.

    A case without its own ``headers`` is sent with `headers`; one with ``headers={}`` is
    sent with none, which is how a notebook shows a request that forgot its token.
    """
    responses = {}
    with httpx.Client(base_url=base_url, timeout=timeout) as http:
        for name, case in cases.items():
            options = dict(case)
            options.setdefault("headers", dict(headers or {}))
            responses[name] = http.post(path, **options)
    return responses
