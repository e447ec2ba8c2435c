"""Approach 2: the real SDK client on an ``httpx2.MockTransport``, swapped in with ``dependency_overrides``.

Proves: the request the SDK really builds from the route's arguments (an argument it does not
take is a ``TypeError``), the SDK's parsing of a reply into its types, and its exceptions for
real statuses and transport errors. Cannot prove: that the lifespan builds a working client,
or that the API accepts the request: the handler answers whatever it is sent.
"""

import json
from collections.abc import Iterator

import anyio
import httpx2
import openai
import pytest
from fastapi.testclient import TestClient

from support.apps.tested.service import INSTRUCTIONS, app, get_client

from .fakes import completion_json

TEXT = "FastAPI runs async routes on one event loop, so a blocking call stalls every request."


class Wire:
    """The handler behind the transport: records each request, answers with `reply` or fails with `error`."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.reply = httpx2.Response(200, json=completion_json("One loop, so never block it.", prompt_tokens=30))
        self.error: type[httpx2.TransportError] | None = None

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error("raised by the test's transport", request=request)
        return self.reply


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def wired_client(wire: Wire) -> Iterator[TestClient]:
    sdk = openai.AsyncOpenAI(
        base_url="http://upstream.invalid/v1",
        api_key="sk-test",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(wire)),
    )
    app.dependency_overrides[get_client] = lambda: sdk
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()
        anyio.run(sdk.close)


def test_summary_and_tokens_come_from_the_reply(wired_client: TestClient) -> None:
    response = wired_client.post("/summarize", json={"text": TEXT})
    assert response.status_code == 200
    assert response.json() == {"summary": "One loop, so never block it.", "tokens": 39}


def test_the_sdk_sends_the_instructions_and_the_text(wired_client: TestClient, wire: Wire) -> None:
    wired_client.post("/summarize", json={"text": TEXT})
    [request] = wire.requests
    assert (request.method, request.url.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    sent = json.loads(request.content)
    assert sent["messages"] == [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": TEXT}]


def test_a_429_is_503_with_retry_after(wired_client: TestClient, wire: Wire) -> None:
    wire.reply = httpx2.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "Rate limit reached"}})
    response = wired_client.post("/summarize", json={"text": TEXT})
    assert (response.status_code, response.headers.get("retry-after")) == (503, "7")


def test_a_read_timeout_is_504(wired_client: TestClient, wire: Wire) -> None:
    wire.error = httpx2.ReadTimeout
    assert wired_client.post("/summarize", json={"text": TEXT}).status_code == 504


def test_a_500_is_502(wired_client: TestClient, wire: Wire) -> None:
    wire.reply = httpx2.Response(500, json={"error": {"message": "The server had an error"}})
    assert wired_client.post("/summarize", json={"text": TEXT}).status_code == 502
