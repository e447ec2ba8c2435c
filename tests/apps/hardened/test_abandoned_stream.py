"""A caller who leaves a stream stops the upstream (no tokens billed for nobody) and frees its slot."""

from __future__ import annotations

import logging
import time

import pytest

from support.sse import parse_events
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    BODY,
    log_line_for,
    running_service,
)
from tests.conftest import wait_until


def test_abandoned_stream_stops_the_upstream_and_frees_the_slot(
    slow_upstream: RunningUpstream, logs: pytest.LogCaptureFixture
) -> None:
    full_reply = slow_upstream.settings.reply_tokens  # about 3 s of chunks
    with running_service(slow_upstream) as service:
        before = service.journal_size()
        with service.client.stream("POST", "/v1/chat/stream", json=BODY) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            deltas = 0
            for line in response.iter_lines():
                deltas += line.startswith("data: ")
                if deltas == 2:
                    break
        closed_at = time.time()  # leaving the block closed the connection mid-stream

        (entry,) = slow_upstream.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=5.0, what="the upstream to stop the stream")
        assert entry.client_disconnected and entry.outcome == "disconnected", entry
        assert entry.finished_at is not None and entry.finished_at - closed_at < 1.0, entry.finished_at - closed_at
        assert 2 <= entry.completion_tokens < full_reply, entry  # tokens nobody read were not generated
        wait_until(lambda: service.readyz()["in_flight"] == 0, timeout=1.0, what="the slot to be released")
        assert service.readyz()["waiting"] == 0

        line = log_line_for(logs, request_id)
        # 499: the client left before the response was complete (the 200 was only its start)
        assert (line["status"], line["upstream_attempts"]) == (499, 1)
        assert not [r for r in logs.records if r.levelno >= logging.ERROR], logs.text
        # the service is not wedged: the next stream runs to its end
        assert (
            parse_events(service.client.post("/v1/chat/stream", json={**BODY, "max_tokens": 3}).text)[-1][0] == "done"
        )
