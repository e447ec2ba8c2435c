"""Approach 1: replace the client with ``app.dependency_overrides`` and a fake built from SDK types.

Proves: what the route does with a reply (attribute access on a real ``ChatCompletion``), the
arguments it passes (checked against the SDK's signature), and how it maps SDK errors.
Cannot prove: that the lifespan builds a working client, that the API accepts the request's
values, or anything about the wire.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from support.apps.tested.service import INSTRUCTIONS, app, get_client

from .fakes import FakeOpenAI, chat_completion, rate_limit_error, timeout_error

TEXT = "FastAPI runs async routes on one event loop, so a blocking call stalls every request."


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(chat_completion("One loop, so never block it.", prompt_tokens=30, completion_tokens=8))


@pytest.fixture
def fake_client(fake: FakeOpenAI) -> Iterator[TestClient]:
    app.dependency_overrides[get_client] = lambda: fake
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()


def test_summary_and_tokens_come_from_the_reply(fake_client: TestClient) -> None:
    response = fake_client.post("/summarize", json={"text": TEXT})
    assert response.status_code == 200
    assert response.json() == {"summary": "One loop, so never block it.", "tokens": 38}


def test_the_request_carries_the_instructions_and_the_text(fake_client: TestClient, fake: FakeOpenAI) -> None:
    fake_client.post("/summarize", json={"text": TEXT})
    [call] = fake.calls
    assert call["messages"] == [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": TEXT}]


def test_a_rate_limit_is_503_with_retry_after(fake_client: TestClient, fake: FakeOpenAI) -> None:
    fake.reply = rate_limit_error(retry_after="7")
    response = fake_client.post("/summarize", json={"text": TEXT})
    assert (response.status_code, response.headers.get("retry-after")) == (503, "7")


@pytest.mark.parametrize(
    ("sent", "passed_on"),
    [
        ("0", "0"),
        ("120", "120"),
        ("86400", "120"),
        ("soon", "1"),
        ("-1", "1"),
        ("1.5", "1"),
        ("", "1"),
        ("Wed, 21 Oct 2026 07:28:00 GMT", "1"),
    ],
)
def test_retry_after_is_passed_on_only_as_bounded_whole_seconds(
    fake_client: TestClient, fake: FakeOpenAI, sent: str, passed_on: str
) -> None:
    fake.reply = rate_limit_error(retry_after=sent)
    response = fake_client.post("/summarize", json={"text": TEXT})
    assert (response.status_code, response.headers.get("retry-after")) == (503, passed_on)


def test_a_timeout_is_504(fake_client: TestClient, fake: FakeOpenAI) -> None:
    fake.reply = timeout_error()
    assert fake_client.post("/summarize", json={"text": TEXT}).status_code == 504


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 20_001}, {"text": 42}, {}, {"prompt": TEXT}])
def test_bad_input_never_calls_the_model(fake_client: TestClient, fake: FakeOpenAI, body: dict[str, object]) -> None:
    assert fake_client.post("/summarize", json=body).status_code == 422
    assert fake.calls == []


def test_a_body_that_is_not_json_never_calls_the_model(fake_client: TestClient, fake: FakeOpenAI) -> None:
    response = fake_client.post("/summarize", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert fake.calls == []
