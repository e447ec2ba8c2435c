"""The hardened service keeps its promises: the status table, the deadline, cleanup, shedding.

`support.apps.hardened` documents (in ``errors.py``) what a caller gets for every way a
call can fail. These tests hold it to that, end to end: the real `openai` SDK inside the
service talks over real sockets to the bundled upstream, which injects the faults and
keeps a journal of what it received. Nothing is mocked, so a claim like "quota errors
are not retried" is checked by counting the requests the upstream actually saw.

What is proved, and why it matters in production:

- the fault matrix (`support.faultmatrix.MATRIX`): status, error code and upstream
  attempts as documented, inside the deadline, with an OpenAI-shaped error body that
  carries the request id, ``Retry-After`` where promised, and no key, token or traceback
  in any body, header or log line;
- the deadline bounds a request even when the read timeout would not;
- a caller who walks away from a stream stops the upstream (no tokens billed for nobody)
  and frees its concurrency slot;
- bad input (fuzzed with hypothesis) is a 413 or 422, never a 5xx, and costs no
  upstream call; a caller without a valid token gets 401 and costs nothing either;
- overload is shed at once with 503 + ``Retry-After``, the upstream never sees more than
  the limit, and the service recovers;
- bad configuration stops startup with a message naming the variable, never its value;
- request ids, the one JSON log line per request, service-token auth and cost guards.

Timing claims use generous bounds only: the machine is shared and noisy. Where the
service answers before it logs (the log line is written after the last byte is sent),
the tests poll briefly instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.apps.hardened import Settings, create_app
from support.faultmatrix import (
    MATRIX,
    MATRIX_SETTINGS,
    FaultCase,
    observe,
)
from support.serve import RunningServer, ServerStartError, serve_in_thread
from support.sse import parse_events
from support.upstream import (
    RunningUpstream,
    UpstreamApp,
    UpstreamSettings,
    upstream_in_thread,
)
from tests.conftest import ROOT as REPO

UPSTREAM_KEY = "sk-canary-" + "c4n4ry" * 6  # shaped like a real key, so any leak is unmistakable
TOKEN_A = "svc-canary-a-" + "t0k3n" * 6
TOKEN_B = "svc-canary-b-" + "t0k3n" * 6
SECRETS = (UPSTREAM_KEY, TOKEN_A, TOKEN_B, "c4n4ryc4n4ry", "t0k3nt0k3n")  # the fragments catch partial echoes
AUTH = {"Authorization": f"Bearer {TOKEN_A}"}
LOGGER = "support.apps.hardened"
BODY = {"messages": [{"role": "user", "content": "Say something short."}]}
ERROR_KEYS = {"message", "type", "param", "code", "request_id", "upstream_request_id"}
GENERATED_ID = re.compile(r"req_[0-9a-f]{32}")
DEADLINE_BOUND_S = MATRIX_SETTINGS["deadline_s"] + 1.0

T = TypeVar("T")


# --- stacks: an upstream, the service in front of it, and a client ------------------------------


@dataclass
class Stack:
    """The service running against an upstream, with a client holding a valid token."""

    upstream: RunningUpstream
    server: RunningServer
    client: httpx.Client
    settings: Settings

    def journal_size(self) -> int:
        return len(self.upstream.journal)

    def readyz(self) -> dict[str, Any]:
        response = self.client.get("/readyz")
        assert response.status_code == 200, response.text
        return response.json()


def service_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "tokens": f"{TOKEN_A},{TOKEN_B}",
        "openai_api_key": UPSTREAM_KEY,
        "openai_base_url": base_url,
        **MATRIX_SETTINGS,
    }
    return Settings(**{**values, **overrides})


@contextlib.contextmanager
def running_service(upstream: RunningUpstream, **overrides: Any) -> Iterator[Stack]:
    """The service (MATRIX_SETTINGS unless overridden) in front of `upstream`."""
    chosen = service_settings(upstream.base_url, **overrides)
    with (
        serve_in_thread(create_app(chosen)) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as client,
    ):
        yield Stack(upstream, server, client, chosen)


@pytest.fixture(scope="module", autouse=True)
def clean_environment() -> Iterator[None]:
    """The developer's own OPENAI_* / SERVICE_* variables must not change what is tested."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("OPENAI_", "SERVICE_")):
                patch.delenv(name)
        yield


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=UPSTREAM_KEY, latency=0.05, ttft=0.02, chunk_delay=0.01) as running:
        yield running


@pytest.fixture(scope="module")
def stack(upstream: RunningUpstream) -> Iterator[Stack]:
    with running_service(upstream) as running:
        yield running


@pytest.fixture(scope="module")
def slow_upstream() -> Iterator[RunningUpstream]:
    """Plain calls take 0.5 s; a stream's full reply takes about 3 s (300 tokens, 10 ms apart)."""
    with upstream_in_thread(
        api_key=UPSTREAM_KEY, latency=0.5, ttft=0.02, chunk_delay=0.01, reply_tokens=300
    ) as running:
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged at INFO and above, the service's lines and uvicorn's included.

    uvicorn's loggers don't propagate to the root logger, so caplog's handler is
    attached to them directly.
    """
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    detached = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    for logger in detached:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in detached:
            logger.removeHandler(caplog.handler)


# --- helpers ---------------------------------------------------------------------------------


def wait_until(produce: Callable[[], T | None], *, timeout: float = 3.0, what: str = "condition") -> T:
    """Poll `produce` until it returns something truthy (a short loop, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.01)


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The service's one-per-request JSON log lines captured so far."""
    lines = []
    for record in list(caplog.records):
        if record.name != LOGGER:
            continue
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == "request":
            lines.append(line)
    return lines


def log_line_for(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    """The log line of `request_id`; it is written just after the response, so wait for it."""
    found = wait_until(
        lambda: [line for line in request_lines(caplog) if line["request_id"] == request_id],
        what=f"the log line of {request_id}",
    )
    return found[0]


def captured_text(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in list(caplog.records))


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret ({secret[:12]}...) leaked into: {text[:300]!r}"


def headers_text(headers: httpx.Headers | dict[str, str]) -> str:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers.items()
    return "\n".join(f"{name}: {value}" for name, value in items)


def assert_error_object(payload: Any, request_id: str) -> dict[str, Any]:
    """An OpenAI-shaped error: exactly the documented keys, and the caller's request id."""
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and isinstance(error["code"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["upstream_request_id"] is None or isinstance(error["upstream_request_id"], str), error
    assert error["request_id"] == request_id, (error["request_id"], request_id)
    assert "Traceback" not in json.dumps(payload)
    return error


def assert_error_response(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = assert_error_object(response.json(), response.headers["x-request-id"])
    assert error["code"] == code, error
    assert_no_secrets(response.text, headers_text(response.headers))
    return error


def case_id(case: FaultCase) -> str:
    return f"{case.fault or 'none'}-{'stream' if case.stream else 'plain'}"


# --- 1. the fault matrix ------------------------------------------------------------------------


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


# --- 2. the deadline -------------------------------------------------------------------------------


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


# --- 3. a caller who leaves a stream ------------------------------------------------------------


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
        assert (line["status"], line["upstream_attempts"]) == (200, 1)
        assert not [r for r in logs.records if r.levelno >= logging.ERROR], logs.text
        # the service is not wedged: the next stream runs to its end
        assert (
            parse_events(service.client.post("/v1/chat/stream", json={**BODY, "max_tokens": 3}).text)[-1][0] == "done"
        )


# --- 4. bad input, fuzzed -------------------------------------------------------------------------

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


# --- 5. overload ------------------------------------------------------------------------------------


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_overload_is_shed_fast_the_upstream_never_sees_more_than_the_limit_and_it_recovers(
    slow_upstream: RunningUpstream,
) -> None:
    limit, callers = 4, 40
    with running_service(
        slow_upstream, max_concurrency=limit, max_queue=2, queue_timeout_s=0.3, read_timeout_s=5.0, deadline_s=10.0
    ) as service:
        before = service.journal_size()

        async def one(client: httpx.AsyncClient) -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            response = await client.post("/v1/chat", json=BODY)
            return response, time.perf_counter() - started

        async def burst() -> list[tuple[httpx.Response, float]]:
            async with httpx.AsyncClient(
                base_url=service.server.base_url,
                headers=AUTH,
                timeout=20,
                limits=httpx.Limits(max_connections=callers + 10),
            ) as client:
                return await asyncio.wait_for(asyncio.gather(*(one(client) for _ in range(callers))), timeout=60)

        results = asyncio.run(burst())  # every caller got an answer: nothing hung

        ok = [elapsed for response, elapsed in results if response.status_code == 200]
        shed = [(response, elapsed) for response, elapsed in results if response.status_code == 503]
        assert len(ok) + len(shed) == callers, sorted(r.status_code for r, _ in results)
        assert len(ok) >= limit and len(shed) >= callers // 2, (len(ok), len(shed))
        refused_on_arrival = 0
        for response, elapsed in shed:
            error = assert_error_response(response, 503, "overloaded")
            assert int(response.headers["retry-after"]) >= 1
            assert elapsed < max(ok), (elapsed, max(ok))  # shed at once, not after a call's worth of waiting
            refused_on_arrival += "waiting" in error["message"]  # vs "no slot came free within 0.3 s"
        # The queue is bounded: beyond max_queue waiters a caller is refused on arrival, without
        # waiting out queue_timeout_s (a clock-free check, so a slow machine can't fake it).
        assert refused_on_arrival >= callers // 2, [r.json()["error"]["message"] for r, _ in shed]

        entries = slow_upstream.journal.entries()[before:]
        assert len(entries) == len(ok)  # a shed caller cost no upstream call
        # finished_at is stamped after the last byte is handed over, by which time the service
        # may already have freed the slot and sent the next call; 50 ms of a 500 ms call is forgiven.
        assert max_overlap([(e.received_at, (e.finished_at or time.time()) - 0.05) for e in entries]) <= limit
        ready = wait_until(
            lambda: (r := service.readyz())["in_flight"] == 0 and r["waiting"] == 0 and r, what="an idle limiter"
        )
        assert ready["peak_in_flight"] == limit and ready["shed"] == len(shed), ready
        assert service.client.post("/v1/chat", json=BODY).status_code == 200  # recovered


# --- 6. startup and settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"openai_api_key": None}, "OPENAI_API_KEY"),
        ({"openai_api_key": ""}, "OPENAI_API_KEY"),
        ({"openai_api_key": f" {UPSTREAM_KEY}\n"}, "OPENAI_API_KEY"),
        ({"tokens": ""}, "SERVICE_TOKENS"),
        ({"tokens": " , "}, "SERVICE_TOKENS"),
        ({"tokens": f"{TOKEN_A},{UPSTREAM_KEY}"}, "SERVICE_TOKENS"),
    ],
    ids=["key-missing", "key-blank", "key-padded", "tokens-empty", "tokens-only-commas", "token-is-the-key"],
)
def test_bad_settings_stop_startup_naming_the_variable_not_the_value(
    overrides: dict[str, Any], variable: str, logs: pytest.LogCaptureFixture
) -> None:
    chosen = service_settings("http://127.0.0.1:9/v1", **overrides)
    with pytest.raises(ServerStartError) as failure, serve_in_thread(create_app(chosen)):
        pass
    message = str(failure.value)
    assert variable in message, message
    assert_no_secrets(message, captured_text(logs))


def test_settings_read_service_tokens_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("SERVICE_TOKENS", f" {TOKEN_A} ,{TOKEN_B},, ")
    monkeypatch.setenv("SERVICE_MAX_OUTPUT_TOKENS", "7")
    from_env = Settings()
    assert [token.get_secret_value() for token in from_env.tokens] == [TOKEN_A, TOKEN_B]
    assert from_env.max_output_tokens == 7
    from_env.check()
    assert_no_secrets(repr(from_env), str(from_env))


def test_app_without_settings_reads_the_environment_when_it_starts(
    upstream: RunningUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app()  # built before the environment is set: it is read by the lifespan
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("SERVICE_TOKENS", f"{TOKEN_A},{TOKEN_B}")
    with serve_in_thread(app) as server:
        response = httpx.post(
            server.base_url + "/v1/chat", json=BODY, timeout=30, headers={"Authorization": f"Bearer {TOKEN_B}"}
        )
    assert response.status_code == 200, response.text


def run_module(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "SERVICE_"))}
    return subprocess.run(
        [sys.executable, "-m", "support.apps.hardened", *args],
        check=False,
        cwd=REPO,
        env=env | env_overrides,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [({}, "OPENAI_API_KEY"), ({"OPENAI_API_KEY": f"{UPSTREAM_KEY}\n", "SERVICE_TOKENS": TOKEN_A}, "OPENAI_API_KEY")],
    ids=["no-key", "key-with-newline"],
)
def test_module_entry_point_refuses_bad_settings_with_one_line_and_exit_2(env: dict[str, str], variable: str) -> None:
    finished = run_module(env)
    assert finished.returncode == 2, finished
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], finished.stderr
    assert "Traceback" not in finished.stderr and not finished.stdout
    assert_no_secrets(finished.stderr)


def test_module_entry_point_help_works() -> None:
    finished = run_module({}, "--help")
    assert finished.returncode == 0, finished.stderr
    assert "usage: python -m support.apps.hardened" in finished.stdout and "SERVICE_TOKENS" in finished.stdout


def test_startup_probe_refuses_to_start_when_the_upstream_rejects_the_key(
    upstream: RunningUpstream, logs: pytest.LogCaptureFixture
) -> None:
    before = len(upstream.journal)
    with (
        upstream.fault("unauthorized"),
        pytest.raises(ServerStartError) as failure,
        serve_in_thread(create_app(service_settings(upstream.base_url, startup_probe=True))),
    ):
        pass
    message = str(failure.value)
    assert "probe" in message and "upstream_auth_failed" in message, message
    assert_no_secrets(message, captured_text(logs))
    assert [e.endpoint for e in upstream.journal.entries()[before:]] == ["models"]  # one probe, not retried


def test_startup_probe_passes_against_a_working_upstream(upstream: RunningUpstream) -> None:
    with running_service(upstream, startup_probe=True) as service:
        assert service.readyz()["status"] == "ready"
        assert service.client.post("/v1/chat", json=BODY).status_code == 200


# --- 7. request ids and the log line ------------------------------------------------------------


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


# --- 8. service-token auth --------------------------------------------------------------------------


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


# --- 9. cost guards ------------------------------------------------------------------------------------

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
