"""Cost guards: models and max_tokens outside the allowed set are refused before any upstream call; the cap is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.sse import parse_events
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    BODY,
    Stack,
    assert_error_response,
    running_service,
)

CAP = 5  # below the upstream's 16-token reply, so the cap is what ends the reply


@pytest.fixture(scope="module")
def capped(upstream: RunningUpstream) -> Iterator[Stack]:
    with running_service(upstream, max_output_tokens=CAP, allowed_models="gpt-4o-mini,gpt-4.1-mini") as running:
        yield running


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"model": "gpt-4o"}, "model"),
        ({"model": "gpt-5-mini"}, "model"),
        ({"max_tokens": CAP + 1}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/stream"])
def test_cost_guards_refuse_with_422_naming_the_param(
    capped: Stack, extra: dict[str, Any], param: str, path: str
) -> None:
    before = capped.journal_size()
    error = assert_error_response(capped.client.post(path, json={**BODY, **extra}), 422, "invalid_value")
    assert error["param"] == param
    assert capped.journal_size() == before  # refused before any upstream call


def test_omitted_max_tokens_sends_the_cap(capped: Stack) -> None:
    assert capped.upstream.settings.reply_tokens > CAP
    before = capped.journal_size()
    plain = capped.client.post("/v1/chat", json=BODY)
    assert plain.status_code == 200, plain.text
    assert plain.json()["usage"]["completion_tokens"] == CAP and plain.json()["finish_reason"] == "length"
    name, done = parse_events(capped.client.post("/v1/chat/stream", json=BODY).text)[-1]
    assert name == "done" and done["usage"]["completion_tokens"] == CAP and done["finish_reason"] == "length"
    # the upstream generates min(its reply, max_tokens): CAP tokens each means it received max_tokens == CAP
    assert [e.completion_tokens for e in capped.upstream.journal.entries()[before:]] == [CAP, CAP]


def test_allowed_models_and_max_tokens_within_the_cap_are_passed_on(capped: Stack) -> None:
    before = capped.journal_size()
    response = capped.client.post("/v1/chat", json={**BODY, "model": "gpt-4.1-mini", "max_tokens": 2})
    assert response.status_code == 200, response.text
    (entry,) = capped.upstream.journal.entries()[before:]
    assert (entry.model, entry.completion_tokens) == ("gpt-4.1-mini", 2)
