"""Attacks on ``/v1/chat``: a Retry-After longer than the deadline, and a caller who hangs up.

An outsider's view, end to end: the real SDK inside the service talks to the bundled
upstream over loopback, and the upstream's journal says what it really received. Each
test is bounded (a few seconds at most) and says what it proves:

- a ``Retry-After`` that cannot fit before the deadline is passed on at once (one upstream
  attempt, 429 with the upstream's wait, the slot free), instead of slept through until
  the deadline turns it into a 504 without a ``Retry-After``;
- the service reads ``Retry-After`` exactly as the SDK does, so it never gives up on a wait
  the SDK would have fitted in, nor sleeps through one it should have refused;
- a caller who hangs up mid-call stops the upstream call (nothing billed) and frees the
  slot within milliseconds; one who hangs up while queued never reaches the upstream;
- a burst of calls runs on the event loop's thread, not on AnyIO's thread pool (the
  service in its own process, its threads counted in ``/proc/PID/status``).
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest
from openai import AsyncOpenAI

from support.apps.hardened import errors
from support.bench import procfs
from support.upstream import RunningUpstream, upstream_in_thread
from tests.apps.hardened.conftest import (
    BODY,
    TOKEN_A,
    UPSTREAM_KEY,
    assert_error_response,
    log_line_for,
    running_service,
    service_process,
)
from tests.conftest import wait_until

UPSTREAM_LATENCY_S = 2.0  # the upstream is still "generating" when the caller hangs up


@pytest.fixture(scope="module")
def thinking_upstream() -> Iterator[RunningUpstream]:
    """Plain calls take 2 s: long enough to hang up in the middle of one."""
    with upstream_in_thread(api_key=UPSTREAM_KEY, latency=UPSTREAM_LATENCY_S, ttft=0.02, chunk_delay=0.01) as running:
        yield running


# --- a Retry-After longer than the time left ---------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "path"),
    [("aiohttp", "/v1/chat"), ("httpx", "/v1/chat"), ("aiohttp", "/v1/chat/stream")],
    ids=["aiohttp-plain", "httpx-plain", "aiohttp-stream"],
)
def test_a_retry_after_longer_than_the_time_left_is_passed_on_at_once(
    upstream: RunningUpstream, logs: pytest.LogCaptureFixture, transport: str, path: str
) -> None:
    """rate_limit;retry_after=6 under a 10 s deadline with a 5 s read timeout: a retry needs the 6 s
    wait plus up to 5 s for its attempt, more than is left. Before the fix the SDK slept 6 s holding
    the slot, was told to wait again, and the deadline fired first: a 504 after 10 s, no Retry-After."""
    with running_service(upstream, deadline_s=10.0, read_timeout_s=5.0, http_transport=transport) as service:
        before = service.journal_size()
        with upstream.fault("rate_limit;retry_after=6"):
            started = time.perf_counter()
            response = service.client.post(path, json=BODY)
            elapsed = time.perf_counter() - started
        assert_error_response(response, 429, "rate_limited")
        assert response.headers["retry-after"] == "6"  # the upstream's wait, in whole seconds (rounded up)
        assert elapsed < 2.0, elapsed  # answered at once, not after the 6 s wait nor the 10 s deadline
        (entry,) = upstream.journal.entries()[before:]  # one attempt: the SDK did not retry
        assert entry.status == 429 and entry.fault == "rate_limit;retry_after=6", entry
        ready = service.readyz()  # the slot came back before the answer was sent
        assert (ready["in_flight"], ready["waiting"]) == (0, 0), ready
        line = log_line_for(logs, response.headers["x-request-id"])
        assert (line["status"], line["upstream_attempts"], line["error"]) == (429, 1, "rate_limited")


def test_a_retry_after_that_fits_is_still_waited_out_by_the_sdk(upstream: RunningUpstream) -> None:
    """The other side of the rule: a 0.2 s wait fits in the deadline, so the SDK's retry absorbs it."""
    with running_service(upstream, deadline_s=10.0) as service:
        before = service.journal_size()
        with upstream.fault("rate_limit;retry_after=0.2;times=1"):
            response = service.client.post("/v1/chat", json=BODY)
        assert response.status_code == 200, response.text
        assert [e.status for e in upstream.journal.entries()[before:]] == [429, 200]


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "6"},
        {"retry-after": "2.5"},
        {"retry-after-ms": "1500", "retry-after": "9"},  # milliseconds win, as in the SDK
        {"retry-after-ms": "soon", "retry-after": "3"},
        {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"},
        {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},  # in the past: negative, never honoured
        {"retry-after": "later"},
        {"retry-after": "nan"},
        {},
    ],
)
def test_the_service_reads_retry_after_as_the_sdk_does(headers: dict[str, str]) -> None:
    """errors.upstream_wait_s mirrors BaseClient._parse_retry_after_header (openai/_base_client.py)."""
    sdk = AsyncOpenAI(api_key="sk-unused", base_url="http://127.0.0.1:9/v1")
    theirs = sdk._parse_retry_after_header(httpx2.Headers(headers))
    ours = errors.upstream_wait_s(httpx2.Headers(headers))
    if theirs is None:
        assert ours is None, ours
    elif math.isnan(theirs):
        assert ours is not None and math.isnan(ours), ours
    else:
        assert ours == pytest.approx(theirs, abs=2.0), (ours, theirs)  # a date: both read the clock


# --- a caller who hangs up -------------------------------------------------------------------------


def chat_request(port: int, request_id: str, *, close: bool = False) -> bytes:
    """``POST /v1/chat`` as bytes on the wire, with a valid token and `request_id`."""
    payload = json.dumps(BODY).encode()
    head = (
        f"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN_A}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nx-request-id: {request_id}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + payload


def raw_request(port: int, request_id: str, *, close: bool = False) -> socket.socket:
    """Send ``POST /v1/chat`` on a raw socket and return it, the answer unread: a client that can hang up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(chat_request(port, request_id, close=close))
    return sock


def read_status(sock: socket.socket) -> int:
    """Read a ``Connection: close`` answer to its end; its status code."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return int(received.split(b" ", 2)[1])


def test_a_caller_who_hangs_up_cancels_the_upstream_call_and_frees_the_slot(
    thinking_upstream: RunningUpstream, logs: pytest.LogCaptureFixture
) -> None:
    with running_service(thinking_upstream, deadline_s=10.0, read_timeout_s=5.0) as service:
        before = service.journal_size()
        sock = raw_request(service.server.port, "hangs-up-1")
        try:
            (entry,) = wait_until(lambda: thinking_upstream.journal.entries()[before:], what="the upstream call")
            wait_until(lambda: service.readyz()["in_flight"] == 1, what="the call to hold its slot")
        finally:
            sock.close()  # the caller hangs up while the upstream is still working
        closed_at, closed = time.time(), time.perf_counter()

        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")
        freed_after = time.perf_counter() - closed
        wait_until(lambda: entry.finished_at, timeout=1.0, what="the upstream to see the hang-up")
        assert entry.outcome == "disconnected" and entry.client_disconnected, entry
        assert entry.completion_tokens == 0, entry  # nothing generated, nothing billed
        assert entry.finished_at is not None and entry.finished_at - closed_at < 0.5, entry.finished_at - closed_at
        assert entry.finished_at - entry.received_at < UPSTREAM_LATENCY_S / 2, entry  # cut, not run to its end
        assert freed_after < 0.5, freed_after  # milliseconds on a quiet machine; generous for a shared one
        assert len(thinking_upstream.journal.entries()[before:]) == 1  # and not retried

        line = log_line_for(logs, "hangs-up-1")  # the log says the client left, not that the call failed
        assert (line["status"], line["error"], line["upstream_attempts"]) == (499, "client_disconnected", 1), line


def test_a_caller_who_hangs_up_while_queued_never_reaches_the_upstream(thinking_upstream: RunningUpstream) -> None:
    with running_service(
        thinking_upstream, max_concurrency=1, max_queue=4, queue_timeout_s=5.0, deadline_s=10.0, read_timeout_s=5.0
    ) as service:
        before = service.journal_size()
        holder = raw_request(service.server.port, "holds-the-slot")
        queued: socket.socket | None = None
        try:
            wait_until(lambda: thinking_upstream.journal.entries()[before:], what="the first call")
            queued = raw_request(service.server.port, "queued-then-gone")
            wait_until(lambda: service.readyz()["waiting"] == 1, what="the second caller to queue")
            queued.close()  # hangs up while waiting for a slot
            wait_until(lambda: service.readyz()["waiting"] == 0, timeout=1.0, what="the queue to forget it")
        finally:
            holder.close()
            if queued is not None:
                queued.close()
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="an idle limiter")
        time.sleep(0.2)  # had the queued caller been left waiting, it would now take the slot and call upstream
        assert len(thinking_upstream.journal.entries()[before:]) == 1
        ready = service.readyz()
        assert (ready["in_flight"], ready["waiting"], ready["shed"]) == (0, 0, 0), ready


# --- a burst, and the threads it borrows --------------------------------------------------------


def test_a_burst_of_calls_borrows_no_threads(upstream: RunningUpstream) -> None:
    """Structural, not timed: a sync (``def``) dependency runs on AnyIO's thread pool, so a burst of
    N calls arriving together grew the process by up to N threads (7 -> 42 in the attack: AnyIO's
    pool is 40); with ``async def get_runtime`` a request never leaves the event loop's thread."""
    burst = 40
    with service_process(upstream, env={"SERVICE_MAX_CONCURRENCY": "64", "SERVICE_MAX_QUEUE": "64"}) as service:
        warm = raw_request(service.port, "warm-up", close=True)  # the client, its pool, lazy imports
        assert read_status(warm) == 200
        before = threads_of(service.process.pid)
        # Connect first, then send every request at once: they reach the server in the same instant.
        sockets = [socket.create_connection(("127.0.0.1", service.port), timeout=10) for _ in range(burst)]
        try:
            for index, sock in enumerate(sockets):
                sock.sendall(chat_request(service.port, f"burst-{index}", close=True))
            statuses = [read_status(sock) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        after = threads_of(service.process.pid)  # AnyIO's idle workers linger (10 s): none has left yet
    assert statuses == [200] * burst, statuses
    assert after - before < 5, (before, after)


def threads_of(pid: int) -> int:
    return int(procfs.status_fields(pid)["Threads"])
