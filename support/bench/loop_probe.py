"""Was the service's event loop free while one slow request was in flight?

`probe_during` sends the slow request, waits until it is surely being handled (the
`in_flight` callback, e.g. until the upstream's journal shows the upstream call, and/or
`probe_after_s`, e.g. half the latency measured for such a call), then sends
``GET /health`` and times it. A service whose loop is free answers the probe in about a
millisecond, whatever the slow request is doing. A service that blocks its loop (a sync
call inside ``async def``) answers it only after the blocking call returns, so the probe
waits for about the rest of the slow request: `remaining_s`.

Each request goes over a connection of its own, opened for it and closed after it, so
the probe never reuses a connection the slow request used (after an unhandled
exception uvicorn closes the connection that carried the 500, and a client that put it
back in its pool would fail its next request on it with ``ReadError``), and never waits
behind it.

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
    """One slow request and one probe sent while it was in flight. Times in seconds,
    counted from the moment the slow request was sent."""

    response: httpx.Response  # the slow request's response
    request_s: float  # the slow request, from send to response
    probe_sent_s: float  # when the probe went out
    probe_s: float  # the probe, from send to response
    probe_status: int

    @property
    def remaining_s(self) -> float:
        """How much of the slow request was still to come when the probe went out
        (negative when the probe went out after the slow request's response arrived)."""
        return self.request_s - self.probe_sent_s

    @property
    def sent_during(self) -> bool:
        """True when the probe went out before the slow request's response arrived."""
        return self.probe_sent_s < self.request_s

    @property
    def probe_done_s(self) -> float:
        """When the probe's response arrived."""
        return self.probe_sent_s + self.probe_s


def _fresh_client(base_url: str, timeout: float) -> httpx.AsyncClient:
    """A client whose every request opens a new connection and closes it afterwards."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)


async def probe_during(
    base_url: str,
    method: str,
    url: str,
    *,
    probe_url: str,
    json: Any = None,
    in_flight: Callable[[], Awaitable[object]] | None = None,
    probe_after_s: float = 0.0,
    timeout: float = 60.0,  # noqa: ASYNC109 - each request's httpx timeout, not a cancel scope
) -> ProbeDuring:
    """Send ``method base_url+url`` and, while it is in flight, ``GET base_url+probe_url``; time both.

    The probe goes out once `in_flight()` (if given) has returned, plus `probe_after_s`.
    The two requests use two fresh connections, one each, closed afterwards (see the
    module's docstring). If `in_flight` raises, the slow request is cancelled and the
    error propagates; an error of the slow request itself (a connection failure, a
    timeout) propagates too. An HTTP error status is not an error here: it is in
    `response`. Whether the probe really went out during the slow request depends on the
    waiting: `ProbeDuring.sent_during` says.
    """
    async with _fresh_client(base_url, timeout) as slow_client, _fresh_client(base_url, timeout) as probe_client:

        async def slow() -> tuple[httpx.Response, float]:
            response = await slow_client.request(method, url, json=json)
            return response, time.perf_counter()

        started = time.perf_counter()
        task = asyncio.create_task(slow())
        try:
            if in_flight is not None:
                await in_flight()
            if probe_after_s > 0:
                await asyncio.sleep(probe_after_s)
            probe_sent = time.perf_counter()
            probe = await probe_client.get(probe_url)
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
