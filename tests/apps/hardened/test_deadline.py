"""The deadline bounds a request (and hangs up on the upstream) even when the read timeout would not."""

from __future__ import annotations

import time

import pytest

from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    BODY,
    assert_error_response,
    running_service,
)
from tests.conftest import wait_until


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/stream"])
def test_deadline_shorter_than_read_timeout_answers_a_hang_with_504(upstream: RunningUpstream, path: str) -> None:
    deadline_s = 0.8
    with running_service(upstream, deadline_s=deadline_s, read_timeout_s=5.0) as service:
        before = service.journal_size()
        with upstream.fault("hang"):
            started = time.perf_counter()
            response = service.client.post(path, json=BODY)
            elapsed = time.perf_counter() - started
        assert_error_response(response, 504, "upstream_timeout")
        assert deadline_s <= elapsed < deadline_s + 1.5
        (entry,) = upstream.journal.entries()[before:]  # one attempt: the deadline cut it, not a retry
        # and the upstream saw the service hang up, rather than holding the request for max_hang
        wait_until(lambda: entry.client_disconnected and entry.finished_at, what="the upstream to see the hang-up")
        assert service.readyz()["in_flight"] == 0
