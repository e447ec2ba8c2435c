"""Service-token auth: every configured token works, anything else is a 401 that costs no upstream call."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.apps.hardened.conftest import (
    BODY,
    TOKEN_A,
    TOKEN_B,
    UPSTREAM_KEY,
    Stack,
    assert_error_response,
)


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN_A}", f"Bearer {TOKEN_B}", f"bearer {TOKEN_A}", f"BEARER {TOKEN_B}", f"Bearer  {TOKEN_A}"],
    ids=["token-a", "token-b", "lowercase-scheme", "uppercase-scheme", "extra-space"],
)
def test_every_configured_token_is_accepted(stack: Stack, authorization: str) -> None:
    response = stack.client.post("/v1/chat", json=BODY, headers={"Authorization": authorization})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Basic " + base64.b64encode(f"u:{TOKEN_A}".encode()).decode(),
        f"Basic {TOKEN_A}",
        "Bearer",
        TOKEN_A,
        f"Bearer {UPSTREAM_KEY}",
    ],
    ids=["no-header", "wrong-token", "basic-auth", "basic-scheme", "scheme-only", "no-scheme", "the-openai-key"],
)
@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/stream"])
def test_requests_without_a_valid_token_get_401_and_no_upstream_call(
    stack: Stack, authorization: str | None, path: str
) -> None:
    before = stack.journal_size()
    with httpx.Client(base_url=stack.server.base_url, timeout=30) as anonymous:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = anonymous.post(path, json=BODY, headers=headers)
    assert_error_response(response, 401, "invalid_service_token")
    assert response.headers["www-authenticate"] == "Bearer"
    assert stack.journal_size() == before


def test_health_endpoints_need_no_token(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.base_url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()) == {"status", "limit", "in_flight", "waiting", "peak_in_flight", "shed"}
    assert ready.json()["status"] == "ready"
