"""The fault matrix: each upstream fault gets its documented status, code, attempts and log line, on both transports."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from support.faultmatrix import MATRIX, MATRIX_SETTINGS, FaultCase, observe
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    BODY,
    Stack,
    assert_error_object,
    assert_error_response,
    assert_no_secrets,
    captured_text,
    headers_text,
    log_line_for,
    running_service,
)
from tests.conftest import wait_until

DEADLINE_BOUND_S = MATRIX_SETTINGS["deadline_s"] + 1.0


def case_id(case: FaultCase) -> str:
    return f"{case.fault or 'none'}-{case.path.removeprefix('/v1/').replace('/', '-')}"


@pytest.fixture(scope="module")
def httpx_stack(upstream: RunningUpstream) -> Iterator[Stack]:
    with running_service(upstream, http_transport="httpx") as running:
        yield running


@pytest.mark.parametrize("case", MATRIX, ids=case_id)
def test_fault_matrix_holds_with_the_sdks_default_transport_too(case: FaultCase, httpx_stack: Stack) -> None:
    observation = observe(case, httpx_stack.client, httpx_stack.upstream)
    assert observation.holds, observation.row()


def test_a_reset_is_never_reported_as_a_timeout(stack: Stack) -> None:
    # the aiohttp transport wraps a lost connection in httpx2.ConnectTimeout; errors.py looks beneath it
    [reset] = [case for case in MATRIX if case.fault == "reset"]
    rows = [observe(reset, stack.client, stack.upstream).row() for _ in range(5)]
    assert all((row["status"], row["code"]) == (502, "upstream_unreachable") for row in rows), rows


@pytest.mark.parametrize("case", MATRIX, ids=case_id)
def test_fault_matrix_case_holds_as_documented(case: FaultCase, stack: Stack, logs: pytest.LogCaptureFixture) -> None:
    observation = observe(case, stack.client, stack.upstream)

    assert observation.holds, observation.row()
    assert observation.elapsed_s <= DEADLINE_BOUND_S, observation.row()
    request_id = observation.headers["x-request-id"]
    if observation.events:  # a stream that started: the outcome is its last event
        name, data = observation.events[-1]
        if case.code is None:
            assert name == "done" and data["usage"]["completion_tokens"] > 0, observation.events
        else:
            assert name == "error", observation.events
            assert_error_object(data, request_id)
        assert [n for n, _ in observation.events].count("error") <= 1
    elif case.code is None:
        assert observation.body is not None and observation.body["text"], observation.body
    else:
        assert_error_object(observation.body, request_id)
    if observation.status == 429:
        assert int(observation.headers["retry-after"]) >= 1
    if case.code == "upstream_quota_exhausted":  # the table: waiting does not fix an empty account
        assert "retry-after" not in observation.headers

    line = log_line_for(logs, request_id)
    assert (line["status"], line["upstream_attempts"], line["error"]) == (observation.status, case.attempts, case.code)
    # however the call ended, its concurrency slot came back (a stream frees it as its response ends)
    wait_until(lambda: (r := stack.readyz())["in_flight"] == 0 and r["waiting"] == 0, what="an idle limiter")
    assert_no_secrets(
        json.dumps(observation.body),
        json.dumps(observation.events),
        headers_text(observation.headers),
        captured_text(logs),
    )


def test_quota_and_upstream_auth_failures_are_logged_for_an_operator(
    stack: Stack, logs: pytest.LogCaptureFixture
) -> None:
    """Only an operator can fix these two, so they are logged at ERROR (without the key)."""
    for fault, code in (("quota", "upstream_quota_exhausted"), ("unauthorized", "upstream_auth_failed")):
        with stack.upstream.fault(fault):
            response = stack.client.post("/v1/chat", json=BODY)
        assert_error_response(response, 503 if fault == "quota" else 500, code)
        wait_until(
            lambda code=code: [r for r in logs.records if r.levelno >= logging.ERROR and code in r.getMessage()],
            what=f"an ERROR line for {code}",
        )
    assert_no_secrets(captured_text(logs))
