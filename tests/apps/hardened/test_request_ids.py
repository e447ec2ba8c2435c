"""Request ids (echoed, replaced, sent upstream) and the one JSON log line per request."""

from __future__ import annotations

import re
from typing import Any

import pytest

from support.serve import serve_in_thread
from support.upstream import RunningUpstream, UpstreamApp, UpstreamSettings
from tests.apps.hardened.conftest import (
    BODY,
    UPSTREAM_KEY,
    Stack,
    assert_error_response,
    log_line_for,
    request_lines,
    running_service,
)

GENERATED_ID = re.compile(r"req_[0-9a-f]{32}")


@pytest.mark.parametrize("incoming", ["trace-42", "a.b:c_d-E9", "x" * 128])
def test_sane_request_id_is_echoed_in_header_body_and_log(
    stack: Stack, logs: pytest.LogCaptureFixture, incoming: str
) -> None:
    response = stack.client.post("/v1/chat", json={"messages": []}, headers={"x-request-id": incoming})
    assert response.headers["x-request-id"] == incoming
    assert_error_response(response, 422, "invalid_value")  # the body's request_id is the same one
    assert log_line_for(logs, incoming)["status"] == 422


@pytest.mark.parametrize(
    "incoming",
    ["x" * 300, "has space", "", "semi;colon", b"caf\xc3\xa9", "a/b"],
    ids=["300-chars", "space", "empty", "semicolon", "non-ascii", "slash"],
)
def test_insane_request_id_is_replaced_by_a_generated_one(
    stack: Stack, logs: pytest.LogCaptureFixture, incoming: str | bytes
) -> None:
    response = stack.client.post("/v1/chat", json=BODY, headers={"x-request-id": incoming})
    assert response.status_code == 200
    generated = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(generated), generated
    assert log_line_for(logs, generated)["status"] == 200
    assert (
        stack.client.post("/v1/chat", json={}, headers={"x-request-id": incoming}).headers["x-request-id"] != generated
    )


class HeaderTap:
    """ASGI wrapper that writes down each request's headers, then hands it to the real upstream.

    The upstream's journal does not record request headers; this sees them on the wire.
    """

    def __init__(self, app: UpstreamApp) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await self.app(scope, receive, send)


def test_request_id_travels_upstream_on_every_attempt() -> None:
    tap = HeaderTap(UpstreamApp(UpstreamSettings(api_key=UPSTREAM_KEY, latency=0)))
    with serve_in_thread(tap) as tapped:
        upstream = RunningUpstream(tap.app, tapped)
        with running_service(upstream) as service, upstream.fault("rate_limit;retry_after=0.1;times=2"):
            response = service.client.post("/v1/chat", json=BODY, headers={"x-request-id": "trace-upstream-1"})
    assert response.status_code == 200, response.text
    sent = [headers.get("x-client-request-id") for headers in tap.seen]
    assert sent == ["trace-upstream-1"] * 3, sent  # the first attempt and both retries
    assert all(UPSTREAM_KEY not in h.get("x-client-request-id", "") for h in tap.seen)


def test_each_request_logs_exactly_one_json_line_matching_the_journal(
    stack: Stack, logs: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str | None, dict[str, Any], dict[str, str], int]] = [
        # (path, fault, body, extra headers, expected status)
        ("/v1/chat", None, BODY, {}, 200),
        ("/v1/chat/stream", None, BODY, {}, 200),
        ("/v1/chat", "rate_limit;retry_after=0.1", BODY, {}, 429),
        ("/v1/chat", "server_error;times=1", BODY, {}, 200),
        ("/v1/chat", None, {"messages": "nope"}, {}, 422),
        ("/v1/chat", None, BODY, {"Authorization": "Bearer wrong"}, 401),
    ]
    expected: dict[str, tuple[int, list[str]]] = {}
    for number, (path, fault, body, extra, status) in enumerate(calls):
        request_id = f"log-check-{number}"
        before = stack.journal_size()
        with stack.upstream.fault(fault):
            response = stack.client.post(path, json=body, headers={"x-request-id": request_id, **extra})
        assert response.status_code == status, response.text
        expected[request_id] = (status, [e.request_id for e in stack.upstream.journal.entries()[before:]])
    for request_id in expected:
        log_line_for(logs, request_id)
    lines = request_lines(logs)
    for request_id, (status, upstream_ids) in expected.items():
        (line,) = [line for line in lines if line["request_id"] == request_id]  # exactly one
        assert line["status"] == status and line["upstream_attempts"] == len(upstream_ids), (line, upstream_ids)
        assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
        assert line["method"] == "POST" and line["path"].startswith("/v1/chat")
        if upstream_ids:  # the line names the upstream's id of the last attempt, to find it on their side
            assert line["upstream_request_id"] == upstream_ids[-1], (line, upstream_ids)
