"""Attacks on ``/v1/chat/stream`` once it has started: a stream that outlives the deadline, or stalls.

Before the 200 a stream is bounded like any call (``test_deadline``). After it, the route
has returned, so its deadline is gone unless the stream carries it: an upstream dripping
a chunk every 0.4 s held a slot for 8 s under a 2 s deadline. Now the deadline and an
idle limit between chunks end the stream with an OpenAI-shaped ``error`` event; the
upstream sees the service hang up (nothing more generated) and the slot comes back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.sse import parse_events
from support.upstream import RunningUpstream, upstream_in_thread
from tests.apps.hardened.conftest import (
    BODY,
    UPSTREAM_KEY,
    assert_error_object,
    log_line_for,
    running_service,
)
from tests.conftest import wait_until

CHUNK_DELAY_S = 0.4
REPLY_TOKENS = 20  # a full reply takes 8 s


@pytest.fixture(scope="module")
def dripping_upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(
        api_key=UPSTREAM_KEY, latency=0.05, ttft=0.02, chunk_delay=CHUNK_DELAY_S, reply_tokens=REPLY_TOKENS
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("limits", "stops_after_s", "message"),
    [
        ({"deadline_s": 2.0}, 2.0, "deadline"),
        ({"deadline_s": 10.0, "stream_idle_timeout_s": 0.25}, 0.25, "sent nothing for 0.25 s"),
    ],
    ids=["deadline", "idle"],
)
def test_a_started_stream_ends_at_its_limit_with_an_error_event(
    dripping_upstream: RunningUpstream,
    logs: pytest.LogCaptureFixture,
    limits: dict[str, float],
    stops_after_s: float,
    message: str,
) -> None:
    with running_service(dripping_upstream, read_timeout_s=5.0, **limits) as service:
        before = service.journal_size()
        started = time.perf_counter()
        response = service.client.post("/v1/chat/stream", json=BODY)
        elapsed = time.perf_counter() - started
        ended_at = time.time()

        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        events = parse_events(response.text)
        names = [name for name, _ in events]
        assert names[-1] == "error" and names.count("error") == 1 and "done" not in names, names
        error = assert_error_object(events[-1][1], request_id)
        assert (error["code"], error["type"]) == ("upstream_timeout", "upstream_error"), error
        assert message in error["message"], error
        assert stops_after_s <= elapsed < stops_after_s + 1.5, elapsed  # at the limit, not after 8 s

        (entry,) = dripping_upstream.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the hang-up")
        assert entry.outcome == "disconnected" and entry.client_disconnected, entry
        assert entry.completion_tokens < REPLY_TOKENS, entry  # it stopped generating
        assert entry.finished_at is not None and entry.finished_at - ended_at < 1.0, entry.finished_at - ended_at
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")
        line = log_line_for(logs, request_id)
        assert (line["status"], line["error"], line["upstream_attempts"]) == (200, "upstream_timeout", 1), line
