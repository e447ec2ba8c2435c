"""A bounded soak: thousands of mixed requests against the service in its own process leave no
threads, descriptors, slots or memory behind.

Plain calls, full streams, streams abandoned after their first event, hang-ups, bad input,
callers without a token, and upstream faults (a seeded half of upstream requests fail, so
the SDK's retries and the error mapping run too), 20 at a time. The service's threads, open
descriptors and RSS are read from /proc at the start (after a warm-up), the middle and the
end. Counts must come back to where they were; memory may not keep growing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support.bench import procfs
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import TOKEN_A, ServiceProcess, service_process

CONCURRENCY = 20
REQUESTS_PER_ROUND = 420  # a multiple of the 7 kinds
QUESTION = {"messages": [{"role": "user", "content": "Say something short."}]}
MAX_RSS_GROWTH_KIB = 8 * 1024  # from the middle sample to the end: a leak of a few KiB per request shows


def _settled_descriptors(service: ServiceProcess) -> int:
    """The service's open descriptors, once the count holds still for 0.2 s: the round's
    connections were just closed, and the service takes a moment to see each one go."""
    previous, deadline = -1, time.monotonic() + 5
    while True:
        current = len(os.listdir(f"/proc/{service.process.pid}/fd"))
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current
        time.sleep(0.2)


def _sample(service: ServiceProcess) -> dict[str, int]:
    descriptors = _settled_descriptors(service)
    fields = procfs.status_fields(service.process.pid)
    return {"threads": int(fields["Threads"]), "descriptors": descriptors, "rss_kib": procfs.kib(fields, "VmRSS") or 0}


async def _one(http: httpx.AsyncClient, kind: str) -> str:
    """One request of `kind`; returns how it ended (a status, or 'abandoned'/'hung up')."""
    auth = {"Authorization": f"Bearer {TOKEN_A}"}
    if kind == "plain":
        return str((await http.post("/v1/chat", json=QUESTION, headers=auth)).status_code)
    if kind == "bad input":
        return str((await http.post("/v1/chat", json={"messages": "no"}, headers=auth)).status_code)
    if kind == "no token":
        return str((await http.post("/v1/chat", json=QUESTION)).status_code)
    if kind == "hang-up":
        try:
            await http.post("/v1/chat", json=QUESTION, headers=auth, timeout=0.01)
        except httpx.TimeoutException:
            return "hung up"
        return "answered first"
    async with http.stream("POST", "/v1/chat/stream", json=QUESTION, headers=auth) as response:
        async for _ in response.aiter_lines():
            if kind == "abandoned stream":
                return "abandoned"  # leaving the block closes the connection mid-stream
        return str(response.status_code)


async def _round(base_url: str, n: int) -> Counter[str]:
    kinds = itertools.cycle(["plain", "stream", "abandoned stream", "plain", "bad input", "no token", "hang-up"])
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:

        async def bounded(kind: str) -> str:
            async with gate:
                return f"{kind}: {await _one(http, kind)}"

        return Counter(await asyncio.gather(*(bounded(next(kinds)) for _ in range(n))))


def test_mixed_requests_leave_nothing_behind(upstream: RunningUpstream) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    env = {"SERVICE_MAX_CONCURRENCY": "32", "SERVICE_MAX_QUEUE": "64"}
    with service_process(upstream, env=env) as service, upstream.fault("server_error;rate=0.5"):
        outcomes = asyncio.run(_round(service.base_url, REQUESTS_PER_ROUND))  # warm-up: pools, imports, caches
        start = _sample(service)
        outcomes += asyncio.run(_round(service.base_url, REQUESTS_PER_ROUND))
        middle = _sample(service)
        outcomes += asyncio.run(_round(service.base_url, REQUESTS_PER_ROUND))
        end = _sample(service)
        ready = httpx.get(service.base_url + "/readyz").json()
    print(f"\n{sum(outcomes.values())} requests: {dict(sorted(outcomes.items()))}")
    print(f"start {start}\nmiddle {middle}\nend {end}")
    assert outcomes["plain: 200"] > 0 and outcomes["stream: 200"] > 0 and outcomes["abandoned stream: abandoned"] > 0
    assert any(key.startswith("plain: 5") for key in outcomes), "the upstream faults never showed"
    assert outcomes["bad input: 422"] and outcomes["no token: 401"] and outcomes["hang-up: hung up"]
    assert (ready["in_flight"], ready["waiting"]) == (0, 0), ready
    assert end["threads"] == start["threads"], (start, end)
    # The callers' connections are closed by now; the service's pool of keep-alive connections to
    # the upstream may hold a few more after a busier moment. A leak per request (an abandoned
    # stream's connection, a hang-up's) would add hundreds: one round has 60 of each.
    assert end["descriptors"] - start["descriptors"] < 10, (start, end)
    assert end["rss_kib"] - middle["rss_kib"] < MAX_RSS_GROWTH_KIB, (middle, end)
