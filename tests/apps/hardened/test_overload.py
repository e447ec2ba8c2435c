"""Overload is shed at once with 503 + Retry-After, the upstream never sees more than the limit, and it recovers."""

from __future__ import annotations

import asyncio
import time

import httpx

from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    AUTH,
    BODY,
    assert_error_response,
    running_service,
)
from tests.conftest import wait_until


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_overload_is_shed_fast_the_upstream_never_sees_more_than_the_limit_and_it_recovers(
    slow_upstream: RunningUpstream,
) -> None:
    limit, callers = 4, 40
    with running_service(
        slow_upstream, max_concurrency=limit, max_queue=2, queue_timeout_s=0.3, read_timeout_s=5.0, deadline_s=10.0
    ) as service:
        before = service.journal_size()

        async def one(client: httpx.AsyncClient) -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            response = await client.post("/v1/chat", json=BODY)
            return response, time.perf_counter() - started

        async def burst() -> list[tuple[httpx.Response, float]]:
            async with httpx.AsyncClient(
                base_url=service.server.base_url,
                headers=AUTH,
                timeout=20,
                limits=httpx.Limits(max_connections=callers + 10),
            ) as client:
                return await asyncio.wait_for(asyncio.gather(*(one(client) for _ in range(callers))), timeout=60)

        results = asyncio.run(burst())  # every caller got an answer: nothing hung

        ok = [elapsed for response, elapsed in results if response.status_code == 200]
        shed = [(response, elapsed) for response, elapsed in results if response.status_code == 503]
        assert len(ok) + len(shed) == callers, sorted(r.status_code for r, _ in results)
        assert len(ok) >= limit and len(shed) >= callers // 2, (len(ok), len(shed))
        refused_on_arrival = 0
        for response, elapsed in shed:
            error = assert_error_response(response, 503, "overloaded")
            assert int(response.headers["retry-after"]) >= 1
            assert elapsed < max(ok), (elapsed, max(ok))  # shed at once, not after a call's worth of waiting
            refused_on_arrival += "waiting" in error["message"]  # vs "no slot came free within 0.3 s"
        # The queue is bounded: beyond max_queue waiters a caller is refused on arrival, without
        # waiting out queue_timeout_s (a clock-free check, so a slow machine can't fake it).
        assert refused_on_arrival >= callers // 2, [r.json()["error"]["message"] for r, _ in shed]

        entries = slow_upstream.journal.entries()[before:]
        assert len(entries) == len(ok)  # a shed caller cost no upstream call
        # finished_at is stamped after the last byte is handed over, by which time the service
        # may already have freed the slot and sent the next call; 50 ms of a 500 ms call is forgiven.
        assert max_overlap([(e.received_at, (e.finished_at or time.time()) - 0.05) for e in entries]) <= limit
        ready = wait_until(
            lambda: (r := service.readyz())["in_flight"] == 0 and r["waiting"] == 0 and r, what="an idle limiter"
        )
        assert ready["peak_in_flight"] == limit and ready["shed"] == len(shed), ready
        assert service.client.post("/v1/chat", json=BODY).status_code == 200  # recovered
