"""Approach 1, the common variant: ``MagicMock``/``AsyncMock`` in place of the client.

Shown for contrast with `test_fake_client`: a ``MagicMock`` answers every attribute, item and
argument, so the route's reading of the reply and its arguments go unchecked; it proves only
what its ``return_value`` and ``side_effect`` spell out.
"""

from collections.abc import Iterator
from unittest.mock import AsyncMock, MagicMock

import openai
import pytest
from fastapi.testclient import TestClient

from support.apps.tested.service import app, get_client

TEXT = "FastAPI runs async routes on one event loop, so a blocking call stalls every request."


@pytest.fixture
def mock() -> MagicMock:
    mock = MagicMock()
    reply = MagicMock(choices=[MagicMock(message=MagicMock(content="One loop, so never block it."))])
    reply.usage.total_tokens = 38
    mock.chat.completions.create = AsyncMock(return_value=reply)
    return mock


@pytest.fixture
def mock_client(mock: MagicMock) -> Iterator[TestClient]:
    app.dependency_overrides[get_client] = lambda: mock
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()


def test_summary_and_tokens_come_from_the_reply(mock_client: TestClient, mock: MagicMock) -> None:
    response = mock_client.post("/summarize", json={"text": TEXT})
    assert response.status_code == 200
    assert response.json() == {"summary": "One loop, so never block it.", "tokens": 38}
    mock.chat.completions.create.assert_awaited_once()


def test_a_rate_limit_is_503_with_retry_after(mock_client: TestClient, mock: MagicMock) -> None:
    upstream_reply = MagicMock(status_code=429, headers={"retry-after": "7"})
    error = openai.RateLimitError("Rate limit reached", response=upstream_reply, body=None)
    mock.chat.completions.create.side_effect = error
    response = mock_client.post("/summarize", json={"text": TEXT})
    assert (response.status_code, response.headers.get("retry-after")) == (503, "7")
