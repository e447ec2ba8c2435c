"""Was the service's event loop free while one slow request was in flight?

`probe_during` sends the slow request, waits until it is surely being handled (the
`in_flight` callback, e.g. until the upstream's journal shows the upstream call), then
sends ``GET /health`` and times it. A service whose loop is free answers the probe in
about a millisecond, whatever the slow request is doing. A service that blocks its loop
(a sync call inside ``async def``) answers it only after the blocking call returns, so
the probe waits for about the rest of the slow request: `remaining_s`.

For many requests at once, with the probe sent during a load, see `support.bench.measure`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ProbeDuring", "probe_during"]


@dataclass(frozen=True)
class ProbeDuring:
    """One slow request and one probe sent while it was in flight. Times in seconds."""

    response: httpx.Response  # the slow request's response
    request_s: float  # the slow request, from send to response
    probe_sent_s: float  # when the probe went out, counted from the slow request's send
    probe_s: float  # the probe, from send to response
    probe_status: int

    @property
    def remaining_s(self) -> float:
        """How much of the slow request was still to come when the probe went out."""
        return self.request_s - self.probe_sent_s


async def probe_during(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    probe_url: str,
    json: Any = None,
    in_flight: Callable[[], Awaitable[object]] | None = None,
    probe_after_s: float = 0.0,
) -> ProbeDuring:
    """Send ``method url`` and, while it is in flight, ``GET probe_url``; time both.

    The probe goes out once `in_flight()` (if given) has returned, plus `probe_after_s`.
    The two requests use separate connections of `client`. If `in_flight` raises, the
    slow request is cancelled and the error propagates; an error of the slow request
    itself (a connection failure, a timeout) propagates too. An HTTP error status is not
    an error here: it is in `response`.
    """

    async def slow() -> tuple[httpx.Response, float]:
        response = await client.request(method, url, json=json)
        return response, time.perf_counter()

    started = time.perf_counter()
    task = asyncio.create_task(slow())
    try:
        if in_flight is not None:
            await in_flight()
        if probe_after_s > 0:
            await asyncio.sleep(probe_after_s)
        probe_sent = time.perf_counter()
        probe = await client.get(probe_url)
        probe_s = time.perf_counter() - probe_sent
        response, finished = await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return ProbeDuring(
        response=response,
        request_s=finished - started,
        probe_sent_s=probe_sent - started,
        probe_s=probe_s,
        probe_status=probe.status_code,
    )
