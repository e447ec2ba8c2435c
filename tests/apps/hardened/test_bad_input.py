"""Bad input, fuzzed with hypothesis: a 413 or 422 (401 without a token), never a 5xx, and no upstream call."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.sse import parse_events
from support.upstream import upstream_in_thread
from tests.apps.hardened.conftest import (
    BODY,
    TOKEN_A,
    TOKEN_B,
    UPSTREAM_KEY,
    Stack,
    assert_error_object,
    assert_error_response,
    assert_no_secrets,
    captured_text,
    running_service,
)

FUZZ_CAP_BYTES = 2048
FUZZ_MAX_TOKENS = 64
FUZZ_MODELS = ["gpt-4o-mini", "gpt-4.1-mini"]


@dataclass
class FuzzStack:
    stack: Stack
    anonymous: httpx.Client  # the same service, no Authorization header


@pytest.fixture(scope="module")
def fuzz() -> Iterator[FuzzStack]:
    """An instant upstream and a service with a small body cap, so 413s are cheap to reach."""
    with (
        upstream_in_thread(api_key=UPSTREAM_KEY, latency=0, ttft=0, chunk_delay=0, reply_tokens=3) as up,
        running_service(
            up, max_body_bytes=FUZZ_CAP_BYTES, max_output_tokens=FUZZ_MAX_TOKENS, allowed_models=",".join(FUZZ_MODELS)
        ) as running,
        httpx.Client(base_url=running.server.base_url, timeout=30) as anonymous,
    ):
        yield FuzzStack(running, anonymous)


TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
ROLES = ["system", "user", "assistant"]
GOOD_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(ROLES), "content": st.text(min_size=1, max_size=40)})
GOOD_BODY = st.fixed_dictionaries(
    {"messages": st.lists(GOOD_MESSAGE, min_size=1, max_size=4)},
    optional={"model": st.sampled_from(FUZZ_MODELS), "max_tokens": st.integers(1, FUZZ_MAX_TOKENS)},
)
FIELDS = ["messages", "model", "max_tokens", "stream", "temperature", "user", "tools"]
MESSAGE_FIELDS = ["role", "content", "name", "tool_calls"]
NEAR_MISSES = st.sampled_from(
    [
        0,
        -1,
        FUZZ_MAX_TOKENS + 1,
        10**30,
        1.5,
        "",
        " ",
        "user",
        "USER",
        "tool",
        "developer",
        "gpt-4o",
        "GPT-4O-MINI",
        [],
        {},
        [{}],
        None,
        True,
        "x" * 200,
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid body with fields and messages broken in the ways callers break them."""
    body: dict[str, Any] = dict(draw(GOOD_BODY))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "remove", "message", "messages", "pad"]))
        if action == "replace":
            body[draw(st.sampled_from(FIELDS))] = draw(JSON_VALUES | NEAR_MISSES)
        elif action == "remove":
            body.pop(draw(st.sampled_from(FIELDS)), None)
        elif action == "message" and isinstance(body.get("messages"), list) and body["messages"]:
            messages = list(body["messages"])
            index = draw(st.integers(0, len(messages) - 1))
            message = dict(messages[index]) if isinstance(messages[index], dict) else {}
            name = draw(st.sampled_from(MESSAGE_FIELDS))
            if draw(st.booleans()):
                message[name] = draw(JSON_VALUES | NEAR_MISSES)
            else:
                message.pop(name, None)
            messages[index] = message
            body["messages"] = messages
        elif action == "messages":  # too many, or none at all
            body["messages"] = draw(st.sampled_from([[], [{"role": "user", "content": "hi"}] * 65]))
        elif action == "pad":  # a body around the cap, which may be valid or not
            body["messages"] = [
                {"role": "user", "content": "x" * draw(st.integers(FUZZ_CAP_BYTES - 200, FUZZ_CAP_BYTES + 200))}
            ]
    return body


JSON_CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/vnd.api+json", None]
OTHER_CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "text/html; charset=latin-1",
]


@dataclass(frozen=True)
class Sent:
    """One fuzzed request: where, what bytes, with which content type, and whether chunked."""

    path: str
    content: bytes
    content_type: str | None
    chunked: bool


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()  # ascii: lone surrogates travel as \ud800 escapes


PATHS = st.sampled_from(["/v1/chat", "/v1/chat/stream"])
JSON_SENT = st.builds(
    Sent,
    path=PATHS,
    content=st.one_of(JSON_VALUES, GOOD_BODY, mutated(), mutated()).map(_encode),  # mostly nearly valid
    content_type=st.sampled_from(JSON_CONTENT_TYPES * 3 + OTHER_CONTENT_TYPES),  # mostly declared as JSON
    chunked=st.booleans(),
)
RAW_SENT = st.builds(
    Sent,
    path=PATHS,
    content=st.binary(max_size=200)
    | st.sampled_from(
        [b"", b"{", b"\x80\x81", b"[" * 5000 + b"]" * 5000, b'{"messages": [}', b"\xef\xbb\xbf{}", b"null"]
    ),
    content_type=st.sampled_from(JSON_CONTENT_TYPES + OTHER_CONTENT_TYPES),
    chunked=st.booleans(),
)
ANY_SENT = JSON_SENT | RAW_SENT


def send(
    client: httpx.Client, sent: Sent, method: str = "POST", headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = dict(headers or {})
    if sent.content_type is not None:
        headers["content-type"] = sent.content_type
    if sent.chunked:  # an iterator: httpx sends Transfer-Encoding: chunked, no Content-Length
        pieces = [sent.content[i : i + 512] for i in range(0, len(sent.content), 512)]
        return client.request(method, sent.path, content=iter(pieces), headers=headers)
    return client.request(method, sent.path, content=sent.content, headers=headers)


FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run, so CI is deterministic
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def test_fuzzed_bodies_with_a_token_are_never_a_5xx_and_rejections_cost_nothing(
    fuzz: FuzzStack, logs: pytest.LogCaptureFixture
) -> None:
    service = fuzz.stack
    seen: dict[int, int] = {}

    @settings(FUZZ_SETTINGS, max_examples=200)
    @given(sent=ANY_SENT)
    def post(sent: Sent) -> None:
        before = service.journal_size()
        response = send(service.client, sent)
        called = service.journal_size() - before
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 413, 422), (sent, response.status_code, response.text)
        assert "Traceback" not in response.text
        if response.status_code == 200:
            assert called == 1, (sent, called)  # one valid body, one upstream call (no retries needed)
            if response.headers["content-type"].startswith("text/event-stream"):
                assert parse_events(response.text)[-1][0] == "done", response.text
            else:
                assert response.json()["text"]
            return
        error = assert_error_object(response.json(), response.headers["x-request-id"])
        if response.status_code == 400:  # only the upstream says 400: it saw the body
            assert called == 1 and error["upstream_request_id"], (sent, response.text)
        else:
            assert called == 0, (sent, response.status_code, called)  # rejected before any upstream call
            assert error["code"] == ("body_too_large" if response.status_code == 413 else "invalid_value")
        if len(sent.content) > FUZZ_CAP_BYTES:
            assert response.status_code == 413

    post()
    assert {200, 413, 422} <= set(seen), seen  # the strategies reach every kind of answer
    assert service.readyz()["in_flight"] == 0
    assert service.client.post("/v1/chat", json=BODY).status_code == 200  # still healthy
    assert_no_secrets(captured_text(logs))


UNSAFE_HEADER_CHARS = set(" \t\r\n\x0b\x0c")
TOKENISH = st.text(alphabet=[c for c in string.printable if c not in UNSAFE_HEADER_CHARS], max_size=60)
BAD_AUTHORIZATION = st.one_of(
    st.none(),
    st.sampled_from(
        [
            f"Bearer {UPSTREAM_KEY}",  # the OpenAI key is not a service token
            "Basic " + base64.b64encode(f"user:{TOKEN_A}".encode()).decode(),  # the right secret, the wrong scheme
            f"Basic {TOKEN_A}",
            TOKEN_A,  # no scheme
            f"Bearer {TOKEN_A}x",
            f"Bearer {TOKEN_A[:-1]}",
            f"Bearer {TOKEN_A.upper()}",
            f"Bearer {TOKEN_A},{TOKEN_B}",
            "Bearer",
            f"Token {TOKEN_B}",
        ]
    ),
    TOKENISH.filter(bool).map(lambda text: f"Bearer {text}"),
    TOKENISH,
)


def test_fuzzed_requests_without_a_valid_token_get_401_and_cost_nothing(
    fuzz: FuzzStack, logs: pytest.LogCaptureFixture
) -> None:
    service = fuzz.stack
    before = service.journal_size()

    @settings(FUZZ_SETTINGS, max_examples=100)
    @given(
        sent=ANY_SENT | GOOD_BODY.map(lambda b: Sent("/v1/chat", _encode(b), "application/json", False)),
        authorization=BAD_AUTHORIZATION,
        path=st.sampled_from([None, "/v1/chat/stream", "/v1/does-not-exist"]),
        method=st.sampled_from(["POST", "POST", "GET"]),
    )
    def post(sent: Sent, authorization: str | None, path: str | None, method: str) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        sent = Sent(path or sent.path, sent.content, sent.content_type, sent.chunked)
        response = send(fuzz.anonymous, sent, method, headers)
        assert_error_response(response, 401, "invalid_service_token")
        assert response.headers["www-authenticate"] == "Bearer"

    post()
    assert service.journal_size() == before  # not one of them reached the upstream
    assert_no_secrets(captured_text(logs))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_cap_is_413_and_at_the_cap_is_served(stack: Stack, chunked: bool) -> None:
    cap = stack.settings.max_body_bytes
    skeleton = _encode({"messages": [{"role": "user", "content": ""}]})
    at_cap = _encode({"messages": [{"role": "user", "content": "x" * (cap - len(skeleton))}]})
    assert len(at_cap) == cap
    before = stack.journal_size()
    over = Sent("/v1/chat", at_cap + b" ", "application/json", chunked)
    assert_error_response(send(stack.client, over), 413, "body_too_large")
    huge = Sent("/v1/chat", b"x" * (4 * cap), "application/json", chunked)  # far over: refused without reading it all
    assert_error_response(send(stack.client, huge), 413, "body_too_large")
    assert stack.journal_size() == before
    served = send(stack.client, Sent("/v1/chat", at_cap, "application/json", chunked))
    assert served.status_code == 200, served.text


def test_unknown_routes_and_methods_answer_openai_shaped_errors(stack: Stack) -> None:
    assert_error_response(stack.client.post("/v1/nothing-here", json=BODY), 404, "not_found")
    wrong_method = stack.client.get("/v1/chat")
    assert_error_response(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"
