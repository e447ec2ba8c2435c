"""Heartbeats on ``/v1/chat/stream`` while the model thinks, and the proxy-facing headers.

A model that thinks before its first token leaves a started stream silent; a proxy with an
idle read timeout (nginx's ``proxy_read_timeout``) then cuts it. The service sends an SSE
comment every ``SERVICE_STREAM_HEARTBEAT_S`` until the first chunk, and never after it.
Comments are not events: the SDK's own SSE decoder (openai/_streaming.py) must skip them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from openai._streaming import SSEDecoder

from support.sse import parse_events
from support.upstream import RunningUpstream, upstream_in_thread
from tests.apps.hardened.conftest import BODY, UPSTREAM_KEY, running_service
from tests.conftest import wait_until

TTFT_S = 0.8  # the model "thinks" this long before its first token
PING = b": ping\n\n"


@pytest.fixture(scope="module")
def thinking_upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=UPSTREAM_KEY, latency=0.05, ttft=TTFT_S, chunk_delay=0.01, reply_tokens=12) as up:
        yield up


def _raw_stream(service_client: httpx.Client) -> tuple[httpx.Headers, list[tuple[float, bytes]]]:
    """The response headers and each body piece with its arrival time (seconds after the 200)."""
    pieces: list[tuple[float, bytes]] = []
    with service_client.stream("POST", "/v1/chat/stream", json=BODY) as response:
        assert response.status_code == 200
        started = time.perf_counter()
        for piece in response.iter_raw():
            pieces.append((time.perf_counter() - started, piece))
        return response.headers, pieces


def test_pings_until_the_first_chunk_and_never_after(thinking_upstream: RunningUpstream) -> None:
    heartbeat = 0.15
    with running_service(thinking_upstream, stream_heartbeat_s=heartbeat, read_timeout_s=5.0) as service:
        headers, pieces = _raw_stream(service.client)
    body = b"".join(p for _, p in pieces)
    first_data = body.index(b"data:")
    pings_before, pings_after = body[:first_data].count(PING), body[first_data:].count(PING)
    expected = int(TTFT_S / heartbeat)
    assert expected - 2 <= pings_before <= expected + 1, (pings_before, expected)
    assert pings_after == 0
    assert headers["x-accel-buffering"] == "no" and headers["cache-control"] == "no-store"
    # the SDK's decoder (and ours) see only the events: a comment is never data
    sdk_events = list(SSEDecoder().iter_bytes(iter([body])))
    assert [json.loads(e.data) for e in sdk_events] == [data for _, data in parse_events(body.decode())]
    assert all("ping" not in e.data for e in sdk_events) and sdk_events[-1].event == "done"


def test_no_pings_when_turned_off(thinking_upstream: RunningUpstream) -> None:
    with running_service(thinking_upstream, stream_heartbeat_s=0, read_timeout_s=5.0) as service:
        _, pieces = _raw_stream(service.client)
    assert PING not in b"".join(p for _, p in pieces)


def test_pings_do_not_stretch_the_idle_timeout(thinking_upstream: RunningUpstream) -> None:
    """Silence before the first chunk still ends at the idle limit: pings are ours, not the upstream's."""
    with running_service(
        thinking_upstream, stream_heartbeat_s=0.1, stream_idle_timeout_s=0.35, read_timeout_s=5.0
    ) as service:
        before = service.journal_size()
        started = time.perf_counter()
        response = service.client.post("/v1/chat/stream", json=BODY)
        elapsed = time.perf_counter() - started
        events = parse_events(response.text)
        assert response.status_code == 200 and response.text.startswith(": ping")
        assert [name for name, _ in events] == ["error"] and "sent nothing for 0.35 s" in str(events[0][1])
        assert elapsed < TTFT_S, elapsed  # ended at the idle limit, before the first token came
        (entry,) = thinking_upstream.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the hang-up")
        assert entry.client_disconnected and entry.chunks_sent == 0, entry
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")


def test_a_caller_leaving_during_the_pings_stops_the_upstream(thinking_upstream: RunningUpstream) -> None:
    with running_service(thinking_upstream, stream_heartbeat_s=0.1, read_timeout_s=5.0) as service:
        before = service.journal_size()
        with service.client.stream("POST", "/v1/chat/stream", json=BODY) as response:
            assert next(response.iter_raw()).startswith(b": ping")  # then hang up mid-think
        (entry,) = thinking_upstream.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the hang-up")
        assert entry.client_disconnected and entry.chunks_sent == 0, entry
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")
