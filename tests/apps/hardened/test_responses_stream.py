"""``/v1/responses/stream``: the chat stream's contract over the Responses API, and usage on every log line.

The fault matrix covers its errors before and after the 200. Here: the same events as the
chat stream for the same reply, its limits (idle, deadline) and heartbeats, a caller who
leaves, refusals and Azure-style chunks passed through, and the tokens each request was
billed, on its log line, for plain calls and both streams.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.sse import parse_events
from support.upstream import RunningUpstream, upstream_in_thread
from tests.apps.hardened.conftest import BODY, UPSTREAM_KEY, log_line_for, running_service
from tests.conftest import wait_until


@pytest.fixture(scope="module")
def dripping() -> Iterator[RunningUpstream]:
    with upstream_in_thread(
        api_key=UPSTREAM_KEY, latency=0.05, ttft=0.3, chunk_delay=0.1, reply_tokens=30, seed=7
    ) as running:
        yield running


def _texts(events: list[tuple[str, Any]]) -> tuple[str, list[str]]:
    text = "".join(data["delta"] for name, data in events if name == "message" and "delta" in data)
    return text, [name for name, _ in events]


def test_the_same_reply_gives_the_same_events_on_both_apis(upstream: RunningUpstream) -> None:
    with running_service(upstream) as service:
        chat = parse_events(service.client.post("/v1/chat/stream", json=BODY).text)
        responses = parse_events(service.client.post("/v1/responses/stream", json=BODY).text)
    chat_text, chat_names = _texts(chat)
    responses_text, responses_names = _texts(responses)
    assert chat_text and chat_text == responses_text  # the bundled upstream gives both APIs one reply
    assert chat_names[-1] == responses_names[-1] == "done"
    assert chat[-1][1] == responses[-1][1]  # same finish_reason and usage


def test_usage_is_on_every_log_line(upstream: RunningUpstream, logs: pytest.LogCaptureFixture) -> None:
    with running_service(upstream) as service:
        for path in ("/v1/chat", "/v1/chat/stream", "/v1/responses/stream"):
            response = service.client.post(path, json=BODY)
            assert response.status_code == 200
            line = log_line_for(logs, response.headers["x-request-id"])
            usage = response.json()["usage"] if path == "/v1/chat" else parse_events(response.text)[-1][1]["usage"]
            assert (line["input_tokens"], line["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
            assert line["input_tokens"] > 0 and line["output_tokens"] > 0, line


@pytest.mark.parametrize(
    ("limits", "stops_after_s", "message"),
    [({"deadline_s": 1.0}, 1.0, "deadline"), ({"stream_idle_timeout_s": 0.05}, 0.05, "sent nothing")],
    ids=["deadline", "idle"],
)
def test_its_limits_end_it_with_an_error_event(
    dripping: RunningUpstream, limits: dict[str, float], stops_after_s: float, message: str
) -> None:
    with running_service(dripping, read_timeout_s=5.0, **limits) as service:
        before = service.journal_size()
        started = time.perf_counter()
        response = service.client.post("/v1/responses/stream", json=BODY)
        elapsed = time.perf_counter() - started
        events = parse_events(response.text)
        assert response.status_code == 200 and events[-1][0] == "error", events
        assert events[-1][1]["error"]["code"] == "upstream_timeout" and message in events[-1][1]["error"]["message"]
        assert elapsed < 2.5, elapsed  # not the whole 3 s reply
        (entry,) = dripping.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the hang-up")
        assert entry.client_disconnected and entry.completion_tokens < 30, entry
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")


def test_pings_while_it_thinks_and_a_caller_leaving_stops_the_upstream(dripping: RunningUpstream) -> None:
    with running_service(dripping, read_timeout_s=5.0, stream_heartbeat_s=0.1) as service:
        before = service.journal_size()
        with service.client.stream("POST", "/v1/responses/stream", json=BODY) as response:
            assert response.status_code == 200 and response.headers["x-accel-buffering"] == "no"
            assert next(response.iter_raw()).startswith(b": ping")  # ttft 0.3 s: pings first
        (entry,) = dripping.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the hang-up")
        assert entry.client_disconnected and entry.completion_tokens < 30, entry
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to come back")


def test_refusals_and_azure_chunks_pass_through(upstream: RunningUpstream) -> None:
    with running_service(upstream) as service:
        with upstream.fault("refusal"):
            refused = parse_events(service.client.post("/v1/chat/stream", json=BODY).text)
        with upstream.fault("filter_annotations"):
            annotated = parse_events(service.client.post("/v1/chat/stream", json=BODY).text)
        plain = parse_events(service.client.post("/v1/chat/stream", json=BODY).text)
    refusal = "".join(data["refusal"] for name, data in refused if name == "message" and "refusal" in data)
    assert refusal and not _texts(refused)[0] and refused[-1][0] == "done", refused
    assert _texts(annotated)[0] and _texts(annotated)[0] == _texts(plain)[0] and annotated[-1][0] == "done"
