"""The bundled upstream, driven by the real `openai` SDK over a real socket.

Sync tests use `upstream_in_thread`, async ones `run_upstream` inside `asyncio.run`
(no pytest-asyncio). Raw httpx is used only where the SDK cannot send the input
(malformed bodies, missing headers). Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI, OpenAI

from support.upstream import Fault, JournalEntry, RunningUpstream, run_upstream, upstream_in_thread
from support.upstream.requests import JSON_PARSE_MESSAGE
from support.upstream.settings import DEFAULT_MODELS
from tests.conftest import MODEL, wait_until

FAST = {"latency": 0.02, "ttft": 0.01, "chunk_delay": 0.002}
MESSAGES = [{"role": "user", "content": "Say something about event loops."}]
AUTH = {"Authorization": "Bearer test-key"}
RESPONSE_STREAM_TYPES_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
RESPONSE_STREAM_TYPES_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(seed=7, reply_tokens=12, **FAST) as up:
        yield up


@pytest.fixture
def up(shared_upstream: RunningUpstream) -> RunningUpstream:
    """The module's upstream with an empty journal (sequence numbers keep counting)."""
    shared_upstream.journal.clear()
    return shared_upstream


@pytest.fixture
def client(up: RunningUpstream) -> Iterator[OpenAI]:
    with OpenAI(base_url=up.base_url, api_key="test-key", max_retries=0) as c:
        yield c


def wait_entries(
    up: RunningUpstream, predicate: Callable[[list[JournalEntry]], bool], timeout: float = 3.0
) -> list[JournalEntry]:
    """Sync twin of `Journal.wait_for`: the journal's entries, once `predicate(entries)` holds."""

    def satisfied() -> list[JournalEntry] | None:
        entries = up.journal.entries()
        return entries if predicate(entries) else None

    return wait_until(satisfied, timeout=timeout, what="the journal condition")


def all_finished(entries: list[JournalEntry]) -> bool:
    return bool(entries) and all(e.finished_at is not None for e in entries)


def entry_by_id(up: RunningUpstream, request_id: str) -> JournalEntry:
    [entry] = [e for e in up.journal.entries() if e.request_id == request_id]
    return entry


def expected_prompt_tokens(*texts: str) -> int:
    """The upstream's documented estimate: ceil(chars/4) + 3 per item + 3."""
    return math.ceil(len("\n".join(texts)) / 4) + 3 * len(texts) + 3


def assert_openai_error(body: Any, *, status_param: str | None = "<any>") -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if status_param != "<any>":
        assert error["param"] == status_param, error
    return error


# --- chat completions -----------------------------------------------------------------------


def test_chat_plain_content_usage_and_request_id(up: RunningUpstream, client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    completion = raw.parse()
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert choice.message.role == "assistant"
    text = choice.message.content
    assert isinstance(text, str) and text
    assert len(text.split()) == up.settings.reply_tokens == 12
    assert choice.finish_reason == "stop"

    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == up.settings.reply_tokens
    assert usage.prompt_tokens == expected_prompt_tokens(MESSAGES[0]["content"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    # _request_id, the x-request-id header and the journal all agree
    assert completion._request_id == raw.headers["x-request-id"]
    assert completion._request_id.startswith("req_")
    entry = entry_by_id(up, completion._request_id)
    assert (entry.endpoint, entry.model, entry.stream, entry.status, entry.outcome) == (
        "chat.completions",
        MODEL,
        False,
        200,
        "ok",
    )
    assert entry.attempt == 0  # the SDK always sends x-stainless-retry-count
    assert entry.prompt_tokens == usage.prompt_tokens
    assert entry.completion_tokens == usage.completion_tokens
    # The journal's times are wall-clock (time.time); the latency is slept on the loop's monotonic
    # clock. The two can disagree by a fraction of a millisecond (CI measured 19.86 ms for 20 ms).
    assert entry.duration is not None and entry.duration >= up.settings.latency - 0.001


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_chat_finish_reason_length_with_max_tokens(client: OpenAI, param: str) -> None:
    short = client.chat.completions.create(model=MODEL, messages=MESSAGES, **{param: 5})
    full = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 5
    short_text = short.choices[0].message.content
    assert short_text is not None and len(short_text.split()) == 5
    # the cut reply is a prefix of the full one (same seeded words)
    assert full.choices[0].message.content.startswith(short_text)
    # a limit at or above reply_tokens lets the model 'finish'
    enough = client.chat.completions.create(model=MODEL, messages=MESSAGES, **{param: 12})
    assert enough.choices[0].finish_reason == "stop"
    assert enough.choices[0].message.content == full.choices[0].message.content


def test_chat_stream_matches_plain_reply(up: RunningUpstream, client: OpenAI) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    # first chunk: the role; then one chunk per token; then the finish chunk
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    assert len(chunks) == 1 + up.settings.reply_tokens + 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == plain.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.choices[0].delta.content is None
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    # without stream_options there is no usage anywhere and no empty-choices chunk
    assert all(c.usage is None and c.choices for c in chunks)
    entries = wait_entries(up, lambda es: len(es) == 2 and all_finished(es))
    stream_entry = entries[1]
    assert (stream_entry.stream, stream_entry.outcome, stream_entry.chunks_sent) == (True, "ok", len(chunks))
    assert stream_entry.completion_tokens == up.settings.reply_tokens


def test_chat_stream_include_usage_final_chunk(up: RunningUpstream, client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, max_tokens=4
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.completion_tokens == 4
    assert final.usage.prompt_tokens == expected_prompt_tokens(MESSAGES[0]["content"])
    assert final.usage.total_tokens == final.usage.prompt_tokens + 4
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "length"
    assert len(chunks) == 1 + 4 + 1 + 1
    # include_usage False: a plain stream again
    no_usage = list(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": False}, max_tokens=4
        )
    )
    assert len(no_usage) == len(chunks) - 1 and all(c.usage is None for c in no_usage)


# --- responses -------------------------------------------------------------------------------


def test_responses_plain(up: RunningUpstream, client: OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Explain the event loop.", instructions="Be brief.")
    assert response.status == "completed" and response.object == "response"
    assert len(response.output_text.split()) == 12
    assert response.usage is not None
    assert response.usage.output_tokens == 12
    assert response.usage.input_tokens == expected_prompt_tokens("Be brief.", "Explain the event loop.")
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.incomplete_details is None
    assert entry_by_id(up, response._request_id).endpoint == "responses"

    roomy = client.responses.create(
        model=MODEL, input="Explain the event loop.", instructions="Be brief.", max_output_tokens=16
    )
    assert roomy.incomplete_details is None  # reply_tokens 12 < 16: the model finished on its own
    assert roomy.output_text == response.output_text and roomy.max_output_tokens == 16


def test_responses_incomplete_when_max_output_tokens_cuts() -> None:
    with upstream_in_thread(reply_tokens=40, **FAST) as up, OpenAI(base_url=up.base_url, api_key="k") as client:
        cut = client.responses.create(model=MODEL, input="hi", max_output_tokens=16)
        assert cut.usage is not None and cut.usage.output_tokens == 16
        assert cut.incomplete_details is not None and cut.incomplete_details.reason == "max_output_tokens"
        assert cut.max_output_tokens == 16


def test_responses_stream_events(up: RunningUpstream, client: OpenAI) -> None:
    plain = client.responses.create(model=MODEL, input="stream me")
    events = list(client.responses.create(model=MODEL, input="stream me", stream=True))
    types = [e.type for e in events]
    n = up.settings.reply_tokens
    assert types == RESPONSE_STREAM_TYPES_HEAD + ["response.output_text.delta"] * n + RESPONSE_STREAM_TYPES_TAIL
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == plain.output_text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == deltas
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.status == "completed"
    assert completed.response.output_text == deltas
    assert completed.response.usage is not None and completed.response.usage.output_tokens == n
    assert events[0].response.status == "in_progress" and events[0].response.usage is None
    entry = wait_entries(up, lambda es: len(es) == 2 and all_finished(es))[1]
    assert (entry.endpoint, entry.stream, entry.outcome, entry.chunks_sent) == ("responses", True, "ok", len(events))
    assert entry.completion_tokens == n


def test_responses_stream_helper_final_response(client: OpenAI) -> None:
    plain = client.responses.create(model=MODEL, input="helper")
    with client.responses.stream(model=MODEL, input="helper") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == plain.output_text
    assert final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 12


# --- models ----------------------------------------------------------------------------------


def test_models_list_and_retrieve(client: OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models] == DEFAULT_MODELS
    assert all(m.object == "model" and m.owned_by == "bundled-upstream" for m in models)
    model = client.models.retrieve("gpt-5-mini")
    assert model.id == "gpt-5-mini" and model.object == "model"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-0")
    assert info.value.status_code == 404 and info.value.code == "model_not_found"


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    assert "gpt-nope" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-nope", input="hi")


# --- determinism -----------------------------------------------------------------------------


def _texts(base_url: str) -> tuple[str, str, str]:
    with OpenAI(base_url=base_url, api_key="k") as client:
        a = client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        b = client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        c = client.responses.create(model=MODEL, input=MESSAGES[0]["content"]).output_text
    assert a is not None and b is not None
    return a, b, c


def test_determinism_same_seed_same_text_different_seed_different_text() -> None:
    with upstream_in_thread(seed=11, **FAST) as first:
        a1, a2, r1 = _texts(first.base_url)
    with upstream_in_thread(seed=11, **FAST) as second:
        b1, _, r2 = _texts(second.base_url)
    with upstream_in_thread(seed=12, **FAST) as other:
        c1, _, r3 = _texts(other.base_url)
    assert a1 == a2 == b1  # same request, same server; and across instances
    assert r1 == r2
    assert r1 == a1  # same prompt text and model: the two APIs agree
    assert c1 != a1 and r3 != r1
    # different prompts differ too
    with upstream_in_thread(seed=11, **FAST) as up, OpenAI(base_url=up.base_url, api_key="k") as client:
        d = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "other"}])
        assert d.choices[0].message.content != a1


# --- auth ------------------------------------------------------------------------------------


def test_auth_wrong_key_and_missing_header() -> None:
    wrong = "sk-wrong-" + "Z9y8X7w6" * 4
    with upstream_in_thread(api_key="the-right-test-key", **FAST) as up:
        with OpenAI(base_url=up.base_url, api_key="the-right-test-key", max_retries=0) as good:
            assert good.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        with (
            OpenAI(base_url=up.base_url, api_key=wrong, max_retries=0) as bad,
            pytest.raises(openai.AuthenticationError) as info,
        ):
            bad.chat.completions.create(model=MODEL, messages=MESSAGES)
        exc = info.value
        assert exc.status_code == 401 and exc.code == "invalid_api_key"
        for text in (str(exc), exc.message, json.dumps(exc.body), exc.response.text):
            assert wrong not in text and wrong[-8:] not in text
        assert "the-right-test-key" not in exc.response.text

        with httpx.Client(timeout=5) as raw:
            missing = raw.post(up.base_url + "/chat/completions", json={"model": MODEL, "messages": MESSAGES})
            not_bearer = raw.post(
                up.base_url + "/chat/completions",
                json={"model": MODEL, "messages": MESSAGES},
                headers={"Authorization": "Basic dXNlcjpwYXNz"},
            )
        for response in (missing, not_bearer):
            assert response.status_code == 401
            error = assert_openai_error(response.json())
            assert error["message"].startswith("You didn't provide an API key.")
            assert error["type"] == "invalid_request_error"
        entries = up.journal.entries()
        assert [e.status for e in entries] == [200, 401, 401, 401]


# --- fault mapping -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultCase:
    spec: str
    expected: type[BaseException]
    outcome: str
    mode: str = "chat"  # chat | chat_stream | responses | responses_stream
    timeout: float | None = None
    status: int | None = None
    check: Callable[[BaseException], None] | None = field(default=None, compare=False)


def _check_rate_limit(exc: BaseException) -> None:
    assert isinstance(exc, openai.RateLimitError)
    headers = exc.response.headers
    assert exc.code == "rate_limit_exceeded"
    assert headers["retry-after"] == "1" and headers["retry-after-ms"] == "1000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "10000"
    assert headers["x-ratelimit-limit-tokens"] == "10000000"
    assert headers["x-ratelimit-remaining-tokens"] == "9999000"
    assert headers["x-ratelimit-reset-requests"] == "6ms"
    assert headers["x-ratelimit-reset-tokens"] == "0s"


def _check_quota(exc: BaseException) -> None:
    assert isinstance(exc, openai.RateLimitError)
    assert exc.code == "insufficient_quota" and exc.type == "insufficient_quota"
    assert "retry-after" not in exc.response.headers and "retry-after-ms" not in exc.response.headers


def _check_stream_error(exc: BaseException) -> None:
    assert isinstance(exc, openai.APIError)
    assert exc.message == "The server had an error while processing your request. Sorry about that!"
    assert exc.body == {"message": exc.message, "type": "server_error", "param": None, "code": None}


def _check_json_error(exc: BaseException) -> None:
    assert not isinstance(exc, openai.OpenAIError)  # the SDK lets the decoder's error through


FAULT_CASES = [
    FaultCase("rate_limit", openai.RateLimitError, "error", status=429, check=_check_rate_limit),
    FaultCase("quota", openai.RateLimitError, "error", status=429, check=_check_quota),
    FaultCase("server_error", openai.InternalServerError, "error", status=500),
    FaultCase("server_error;status=502", openai.InternalServerError, "error", status=502),
    FaultCase("server_error;status=503", openai.InternalServerError, "error", status=503, mode="responses"),
    FaultCase("bad_request", openai.BadRequestError, "error", status=400),
    FaultCase("unauthorized", openai.AuthenticationError, "error", status=401),
    FaultCase("hang", openai.APITimeoutError, "disconnected", timeout=0.3),
    FaultCase("reset", openai.APIConnectionError, "reset"),
    FaultCase("stream_drop", openai.APIConnectionError, "dropped"),  # a plain answer cut half way
    FaultCase("stream_drop", openai.APIConnectionError, "dropped", mode="chat_stream"),
    FaultCase("stream_drop;after=5", openai.APIConnectionError, "dropped", mode="responses_stream"),
    FaultCase("stream_error", openai.APIError, "stream_error", mode="chat_stream", check=_check_stream_error),
    FaultCase("malformed_json", json.JSONDecodeError, "malformed", check=_check_json_error),
    FaultCase("truncated_json", json.JSONDecodeError, "malformed", check=_check_json_error),
    FaultCase("truncated_json", json.JSONDecodeError, "malformed", mode="responses"),
]


def _sync_call(client: OpenAI, case: FaultCase, seen: list[Any]) -> None:
    kwargs: dict[str, Any] = {"extra_headers": {"x-upstream-fault": case.spec}}
    if case.timeout is not None:
        kwargs["timeout"] = case.timeout
    if case.mode.startswith("chat"):
        result = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=case.mode == "chat_stream", **kwargs
        )
    else:
        result = client.responses.create(model=MODEL, input="hi", stream=case.mode == "responses_stream", **kwargs)
    if case.mode.endswith("_stream"):
        for item in result:
            seen.append(item)


async def _async_call(client: AsyncOpenAI, case: FaultCase, seen: list[Any]) -> None:
    kwargs: dict[str, Any] = {"extra_headers": {"x-upstream-fault": case.spec}}
    if case.timeout is not None:
        kwargs["timeout"] = case.timeout
    if case.mode.startswith("chat"):
        result = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=case.mode == "chat_stream", **kwargs
        )
    else:
        result = await client.responses.create(
            model=MODEL, input="hi", stream=case.mode == "responses_stream", **kwargs
        )
    if case.mode.endswith("_stream"):
        async for item in result:
            seen.append(item)


def _check_fault_result(case: FaultCase, exc: BaseException, seen: list[Any], entries: list[JournalEntry]) -> None:
    assert type(exc) is case.expected, f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    if case.status is not None:
        assert isinstance(exc, openai.APIStatusError) and exc.status_code == case.status
        assert exc.response.headers["x-request-id"] == entries[0].request_id
        assert exc.request_id == entries[0].request_id
    if case.check is not None:
        case.check(exc)
    [entry] = entries
    assert entry.outcome == case.outcome, entry
    assert entry.fault == str(Fault(case.spec.split(";")[0], **_params(case.spec)))
    assert entry.attempt == 0
    if case.outcome == "disconnected":
        assert entry.client_disconnected is True
        assert 0.25 < entry.duration < 2.0
    else:
        assert entry.client_disconnected is False
    if case.mode.endswith("_stream"):
        after = int(_params(case.spec).get("after", 3))
        assert len(seen) == after and entry.chunks_sent == after  # every chunk before the cut arrived


def _params(spec: str) -> dict[str, Any]:
    pairs = [p.split("=") for p in spec.split(";")[1:]]
    return {k: int(v) for k, v in pairs}


@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda c: f"{c.spec}-{c.mode}")
def test_fault_maps_to_sdk_exception(shared_upstream: RunningUpstream, case: FaultCase, flavor: str) -> None:
    seen: list[Any] = []
    if flavor == "sync":
        up = shared_upstream
        up.journal.clear()
        with (
            OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
            pytest.raises(BaseException) as info,
        ):
            _sync_call(client, case, seen)
        entries = wait_entries(up, all_finished)
        _check_fault_result(case, info.value, seen, entries)
        return

    async def main() -> None:
        async with run_upstream(seed=7, reply_tokens=12, **FAST) as up:
            async with AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
                with pytest.raises(BaseException) as info:
                    await _async_call(client, case, seen)
            entries = await up.journal.wait_for(all_finished, timeout=3)
            _check_fault_result(case, info.value, seen, entries)

    asyncio.run(main())


def test_responses_stream_error_is_an_event_not_an_exception(up: RunningUpstream, client: OpenAI) -> None:
    """Surprising but real: on /v1/responses the SDK yields the error event instead of raising."""
    events = list(
        client.responses.create(
            model=MODEL, input="hi", stream=True, extra_headers={"x-upstream-fault": "stream_error"}
        )
    )
    assert [e.type for e in events] == [*RESPONSE_STREAM_TYPES_HEAD[:3], "error"]
    error = events[-1]
    assert error.code == "server_error" and error.sequence_number == 3
    assert wait_entries(up, all_finished)[0].outcome == "stream_error"


def test_server_level_fault_and_header_none_override() -> None:
    with upstream_in_thread(fault="server_error;status=503", **FAST) as up:
        with OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
            with pytest.raises(openai.InternalServerError) as info:
                client.chat.completions.create(model=MODEL, messages=MESSAGES)
            assert info.value.status_code == 503
            with pytest.raises(openai.InternalServerError):
                client.models.list()
            ok = client.chat.completions.create(
                model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "none"}
            )
            assert ok.choices[0].message.content
            with pytest.raises(openai.BadRequestError):  # the header replaces the server's fault
                client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "bad_request"}
                )
        entries = up.journal.entries()
        assert [(e.fault, e.status, e.outcome) for e in entries] == [
            ("server_error;status=503", 503, "error"),
            ("server_error;status=503", 503, "error"),
            (None, 200, "ok"),
            ("bad_request", 400, "error"),
        ]


# --- retries, as the journal sees them -------------------------------------------------------


def test_retries_server_error_twice_then_ok() -> None:
    with upstream_in_thread(**FAST) as up:
        with OpenAI(base_url=up.base_url, api_key="k") as client:  # the default max_retries=2
            assert client.max_retries == 2
            completion = client.chat.completions.create(
                model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "server_error;times=2"}
            )
        assert completion.choices[0].message.content
        entries = up.journal.entries()
        assert [e.attempt for e in entries] == [0, 1, 2]
        assert [e.outcome for e in entries] == ["error", "error", "ok"]
        assert [e.status for e in entries] == [500, 500, 200]
        assert [e.fault for e in entries] == ["server_error;times=2", "server_error;times=2", None]
        assert completion._request_id == entries[-1].request_id  # each attempt has its own id
        assert len({e.request_id for e in entries}) == 3


def test_retries_exhausted_with_max_retries_1() -> None:
    with upstream_in_thread(**FAST) as up:
        with (
            OpenAI(base_url=up.base_url, api_key="k", max_retries=1) as client,
            pytest.raises(openai.InternalServerError),
        ):
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "server_error;times=2"}
            )
        entries = up.journal.entries()
        assert [(e.attempt, e.outcome) for e in entries] == [(0, "error"), (1, "error")]


def test_retry_after_is_honoured() -> None:
    with upstream_in_thread(**FAST) as up:
        with OpenAI(base_url=up.base_url, api_key="k") as client:
            completion = client.chat.completions.create(
                model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "rate_limit;retry_after=0.2;times=1"}
            )
        assert completion.choices[0].message.content
        first, second = up.journal.entries()
        assert (first.attempt, first.status, second.attempt, second.outcome) == (0, 429, 1, "ok")
        gap = second.received_at - first.received_at
        # retry-after-ms (200) wins over the whole-second Retry-After (1) the header also carries
        assert 0.2 <= gap < 0.9, gap


def test_quota_is_retried_by_the_sdk() -> None:
    """The SDK retries every 429, including the permanent insufficient_quota."""
    with upstream_in_thread(**FAST) as up:
        with OpenAI(base_url=up.base_url, api_key="k") as client:
            started = time.monotonic()
            with pytest.raises(openai.RateLimitError) as info:
                client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "quota"}
                )
            elapsed = time.monotonic() - started
        assert info.value.code == "insufficient_quota"
        entries = up.journal.entries()
        assert [(e.attempt, e.status, e.fault) for e in entries] == [(a, 429, "quota") for a in (0, 1, 2)]
        # exponential backoff without Retry-After: about 0.5 s then 1 s, less up to 25 % jitter
        assert 0.375 + 0.75 <= elapsed < 5


def _rate_hits(seed: int, n: int = 24) -> set[int]:
    with upstream_in_thread(seed=seed, fault="server_error;rate=0.5", latency=0) as up:
        with OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
            for _ in range(n):
                with contextlib.suppress(openai.InternalServerError):
                    client.models.list()
        entries = up.journal.entries()
    assert [e.seq for e in entries] == list(range(n))
    return {e.seq for e in entries if e.status == 500}


def test_rate_fault_hits_a_reproducible_subset() -> None:
    first, again, other = _rate_hits(3), _rate_hits(3), _rate_hits(4)
    assert first == again
    assert 0 < len(first) < 24
    assert first == {s for s in range(24) if Fault("server_error", rate=0.5).applies_to(0, 3, s)}
    assert other != first


# --- bad input via raw httpx -------------------------------------------------------------------


CHAT = "/chat/completions"
RESPONSES = "/responses"
USER = {"role": "user", "content": "hi"}

BAD_BODIES: list[tuple[str, str, Any, str | None, str]] = [
    # (id, path, json body, param, message fragment)
    ("array-body", CHAT, [1, 2], None, "expected a JSON object, but got an array"),
    ("string-body", RESPONSES, "hello", None, "expected a JSON object, but got a string"),
    ("missing-model", CHAT, {"messages": [USER]}, None, "you must provide a model parameter"),
    ("model-not-string", CHAT, {"model": 4, "messages": [USER]}, "model", "expected a string"),
    ("missing-messages", CHAT, {"model": MODEL}, "messages", "Missing required parameter: 'messages'"),
    ("messages-not-array", CHAT, {"model": MODEL, "messages": {"role": "user"}}, "messages", "expected an array"),
    ("empty-messages", CHAT, {"model": MODEL, "messages": []}, "messages", "empty array"),
    ("message-not-object", CHAT, {"model": MODEL, "messages": ["hi"]}, "messages[0]", "expected an object"),
    (
        "bad-role",
        CHAT,
        {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
        "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and",
    ),
    ("missing-role", CHAT, {"model": MODEL, "messages": [{"content": "x"}]}, "messages[0].role", "Missing"),
    (
        "content-not-string",
        CHAT,
        {"model": MODEL, "messages": [{"role": "user", "content": 42}]},
        "messages[0].content",
        "got an integer",
    ),
    ("missing-content", CHAT, {"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content", "Missing"),
    ("max-tokens-0", CHAT, {"model": MODEL, "messages": [USER], "max_tokens": 0}, "max_tokens", "below minimum"),
    (
        "max-tokens-ten",
        CHAT,
        {"model": MODEL, "messages": [USER], "max_tokens": "ten"},
        "max_tokens",
        "expected an integer, but got a string",
    ),
    ("max-tokens-bool", CHAT, {"model": MODEL, "messages": [USER], "max_tokens": True}, "max_tokens", "a boolean"),
    ("stream-yes", CHAT, {"model": MODEL, "messages": [USER], "stream": "yes"}, "stream", "expected a boolean"),
    (
        "stream-options-without-stream",
        CHAT,
        {"model": MODEL, "messages": [USER], "stream_options": {"include_usage": True}},
        "stream_options",
        "only allowed when 'stream' is enabled",
    ),
    (
        "temperature-3",
        CHAT,
        {"model": MODEL, "messages": [USER], "temperature": 3},
        "temperature",
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
    ),
    (  # n > 1 is served; past the real API's 128 it is refused with its words
        "n-129",
        CHAT,
        {"model": MODEL, "messages": [USER], "n": 129},
        "n",
        "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead.",
    ),
    ("n-0", CHAT, {"model": MODEL, "messages": [USER], "n": 0}, "n", "integer below minimum value"),
    ("responses-missing-input", RESPONSES, {"model": MODEL}, "input", "Missing required parameter: 'input'"),
    ("responses-input-number", RESPONSES, {"model": MODEL, "input": 42}, "input", "got an integer"),
    ("responses-input-empty", RESPONSES, {"model": MODEL, "input": []}, "input", "empty array"),
    (
        "responses-input-bad-role",
        RESPONSES,
        {"model": MODEL, "input": [{"role": "robot", "content": "x"}]},
        "input[0].role",
        "Invalid value",
    ),
    (
        "responses-max-output-5",
        RESPONSES,
        {"model": MODEL, "input": "hi", "max_output_tokens": 5},
        "max_output_tokens",
        "Expected a value >= 16",
    ),
    ("responses-stream-yes", RESPONSES, {"model": MODEL, "input": "hi", "stream": "yes"}, "stream", "a boolean"),
]


@pytest.fixture(scope="module")
def small_upstream() -> Iterator[RunningUpstream]:
    """An upstream with a tiny body limit, for the bad-input tests (all share it)."""
    with upstream_in_thread(max_body_bytes=512, **FAST) as up:
        yield up


@pytest.fixture(scope="module")
def raw(small_upstream: RunningUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_upstream.base_url, headers=AUTH, timeout=5) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "body", "param", "fragment"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_bad_body_is_400(raw: httpx.Client, path: str, body: Any, param: str | None, fragment: str) -> None:
    response = raw.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = assert_openai_error(response.json(), status_param=param)
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"], error


@pytest.mark.parametrize("content", [b'{"model": ', b"", b"not json", b"\xff\xfe", b'{"model": NaN,}'])
def test_invalid_json_is_400(raw: httpx.Client, content: bytes) -> None:
    response = raw.post(CHAT, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = assert_openai_error(response.json(), status_param=None)
    assert error["message"] == JSON_PARSE_MESSAGE
    assert error["message"].startswith("We could not parse the JSON body")


def test_deeply_nested_json_is_400_not_500() -> None:
    with upstream_in_thread(**FAST) as up, httpx.Client(headers=AUTH, timeout=5) as c:
        response = c.post(up.base_url + CHAT, content=b"[" * 100_000 + b"]" * 100_000)
        assert response.status_code == 400
        assert response.json()["error"]["message"] == JSON_PARSE_MESSAGE


def test_oversized_body_is_413(raw: httpx.Client, small_upstream: RunningUpstream) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 2000}]}
    response = raw.post(CHAT, json=big)
    assert response.status_code == 413
    error = assert_openai_error(response.json(), status_param=None)
    assert error["code"] == "request_too_large" and "exceeds the limit of 512 bytes" in error["message"]

    def chunked() -> Iterator[bytes]:  # no content-length: the limit is enforced while reading
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 100
        yield b'"}]}'

    response = raw.post(CHAT, content=chunked())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert assert_openai_error(response.json())["code"] == "request_too_large"


def test_routing_errors(raw: httpx.Client) -> None:
    response = raw.post("/nope", json={})
    assert response.status_code == 404
    assert assert_openai_error(response.json())["message"] == "Invalid URL (POST /v1/nope)"
    response = raw.get("/chat/completions")
    assert response.status_code == 405
    assert assert_openai_error(response.json())["message"] == "Invalid method for URL (GET /v1/chat/completions)"
    response = raw.post("/models")
    assert response.status_code == 405
    response = raw.get(str(raw.base_url).removesuffix("/v1/") + "/")
    assert response.status_code == 404
    assert assert_openai_error(response.json())["message"] == "Invalid URL (GET /)"


@pytest.mark.parametrize(
    "header",
    [
        "explode",
        "server_error;status=404",
        "rate_limit;foo=1",
        "hang;seconds=-1",
        "rate_limit;rate=2",
        "stream_drop;after=x",
    ],
)
def test_invalid_fault_header_is_400(raw: httpx.Client, header: str) -> None:
    response = raw.post(CHAT, json={"model": MODEL, "messages": [USER]}, headers={"x-upstream-fault": header})
    assert response.status_code == 400
    error = assert_openai_error(response.json(), status_param="x-upstream-fault")
    assert error["code"] == "invalid_fault" and error["message"].startswith("Invalid x-upstream-fault:")


@pytest.mark.parametrize("value", ["abc", "-1", "601", "nan"])
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_latency_header_is_400(
    raw: httpx.Client, small_upstream: RunningUpstream, value: str, stream: bool
) -> None:
    response = raw.post(
        CHAT, json={"model": MODEL, "messages": [USER], "stream": stream}, headers={"x-upstream-latency": value}
    )
    assert response.status_code == 400
    assert_openai_error(response.json(), status_param="x-upstream-latency")
    assert small_upstream.journal.entries()[-1].outcome == "error"


def test_latency_header_is_honoured(raw: httpx.Client) -> None:
    started = time.monotonic()
    response = raw.post(CHAT, json={"model": MODEL, "messages": [USER]}, headers={"x-upstream-latency": "0.3"})
    assert response.status_code == 200 and time.monotonic() - started >= 0.3


def test_server_still_serves_after_bad_input(raw: httpx.Client, small_upstream: RunningUpstream) -> None:
    small_upstream.journal.clear()
    for _, path, body, _, _ in BAD_BODIES:
        assert raw.post(path, json=body).status_code == 400
    for content in (b"{", b"[]", b"x" * 4096, b"\xff"):
        assert raw.post(CHAT, content=content).status_code in (400, 413)
    assert (
        raw.post(CHAT, json={"model": MODEL, "messages": [USER]}, headers={"x-upstream-fault": "?"}).status_code == 400
    )
    assert raw.delete("/chat/completions").status_code == 405
    entries = small_upstream.journal.entries()
    assert len(entries) == len(BAD_BODIES) + 6
    assert {e.outcome for e in entries} == {"error"} and max(e.status for e in entries) < 500
    with OpenAI(base_url=small_upstream.base_url, api_key="k", max_retries=0) as client:
        assert client.chat.completions.create(model=MODEL, messages=[USER]).choices[0].message.content
        assert client.responses.create(model=MODEL, input="hi").output_text


# --- hypothesis: never a 5xx -----------------------------------------------------------------------


TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
MODELS_OR_TEXT = st.sampled_from(DEFAULT_MODELS) | TEXT
PARTS = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "input_text"]), "text": TEXT}), max_size=3)
GOOD_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "developer"]), "content": TEXT | PARTS}
)
GOOD_CHAT = st.fixed_dictionaries(
    {"model": MODELS_OR_TEXT, "messages": st.lists(GOOD_MESSAGE, min_size=1, max_size=3)},
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(1, 40),
        "max_completion_tokens": st.integers(1, 40),
        "temperature": st.floats(0, 2),
    },
)
GOOD_STREAM_OPTIONS = st.fixed_dictionaries(
    {
        "model": MODELS_OR_TEXT,
        "messages": st.lists(GOOD_MESSAGE, min_size=1, max_size=2),
        "stream": st.just(True),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    }
)
GOOD_RESPONSES = st.fixed_dictionaries(
    {"model": MODELS_OR_TEXT, "input": TEXT | st.lists(GOOD_MESSAGE, min_size=1, max_size=3)},
    optional={"stream": st.booleans(), "max_output_tokens": st.integers(16, 40), "instructions": TEXT},
)
FIELDS = [
    "model",
    "messages",
    "input",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "instructions",
    "temperature",
    "n",
]


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid body with up to two fields replaced by arbitrary JSON and up to two removed."""
    body = dict(draw(bodies))
    body.update(draw(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=2)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        body.pop(name, None)
    return body


VALID_BODIES = GOOD_CHAT | GOOD_STREAM_OPTIONS | GOOD_RESPONSES
REQUEST_BODIES = JSON_VALUES | VALID_BODIES | mutated(VALID_BODIES)


@pytest.fixture(scope="module")
def lenient_upstream() -> Iterator[tuple[RunningUpstream, httpx.Client]]:
    """Any model name is served (models=[]), so every valid body is a 200."""
    with (
        upstream_in_thread(models=[], latency=0, ttft=0, chunk_delay=0, reply_tokens=8) as up,
        httpx.Client(base_url=up.base_url, headers=AUTH, timeout=10) as c,
    ):
        yield up, c


def test_any_json_body_is_200_or_openai_400(lenient_upstream: tuple[RunningUpstream, httpx.Client]) -> None:
    up, c = lenient_upstream
    up.journal.clear()

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=REQUEST_BODIES)
    def post_anything(body: Any) -> None:
        content = json.dumps(body).encode()  # ascii, so lone surrogates travel as \ud800 escapes
        for path in (CHAT, RESPONSES):
            response = c.post(path, content=content, headers={"content-type": "application/json"})
            assert response.status_code in (200, 400), (path, response.status_code, response.text)
            if response.status_code == 400:
                error = assert_openai_error(response.json())
                assert error["type"] == "invalid_request_error"
            elif response.headers["content-type"].startswith("text/event-stream"):
                last_event = response.text.rstrip("\n").rsplit("\n\n", 1)[-1]
                if path == CHAT:
                    assert last_event == "data: [DONE]"
                else:  # incomplete: a reasoning model spent a small max_output_tokens thinking
                    assert last_event.startswith(("event: response.completed\n", "event: response.incomplete\n"))
            else:
                assert response.json()["object"] in ("chat.completion", "response")

    post_anything()
    entries = up.journal.entries()
    assert len(entries) >= 200
    assert {e.outcome for e in entries} == {"ok", "error"}
    assert {e.status for e in entries} == {200, 400}  # the strategies reach both
    assert any(e.stream and e.status == 200 for e in entries)
    # the server is still up and answering correctly
    assert c.get("/models").status_code == 200
    assert c.post(CHAT, json={"model": "anything", "messages": [USER]}).status_code == 200


def test_lone_surrogate_in_prompt_is_answered(lenient_upstream: tuple[RunningUpstream, httpx.Client]) -> None:
    _, c = lenient_upstream
    content = b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}'
    first = c.post(CHAT, content=content)
    second = c.post(CHAT, content=content)
    assert first.status_code == 200, first.text
    assert first.json()["choices"][0]["message"]["content"] == second.json()["choices"][0]["message"]["content"]


# --- async: plain, stream, disconnect --------------------------------------------------------------


def test_async_client_plain_and_stream() -> None:
    async def main() -> None:
        async with run_upstream(seed=7, reply_tokens=12, **FAST) as up:
            async with AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
                plains = await asyncio.gather(
                    *(client.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(5))
                )
                texts = {p.choices[0].message.content for p in plains}
                assert len(texts) == 1
                stream = await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
                )
                chunks = [c async for c in stream]
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) in texts
                assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
                response = await client.responses.create(model=MODEL, input=MESSAGES[0]["content"])
                assert response.output_text in texts
                events = [e.type async for e in await client.responses.create(model=MODEL, input="x", stream=True)]
                assert events[-1] == "response.completed"
                async with client.responses.stream(model=MODEL, input="x") as helper:
                    async for _ in helper:
                        pass
                    final = await helper.get_final_response()
                assert final.status == "completed"
                assert [m.id async for m in client.models.list()] == DEFAULT_MODELS
            # the same seed in a thread-served upstream gives the same text
            with upstream_in_thread(seed=7, reply_tokens=12, **FAST) as threaded:
                async with AsyncOpenAI(base_url=threaded.base_url, api_key="k") as other:
                    again = await other.chat.completions.create(model=MODEL, messages=MESSAGES)
            assert again.choices[0].message.content in texts
            entries = await up.journal.wait_for(lambda es: len(es) == 10 and all_finished(es))
            assert {e.outcome for e in entries} == {"ok"}

    asyncio.run(main())


def test_async_stream_close_is_seen_as_disconnect() -> None:
    async def main() -> None:
        async with run_upstream(reply_tokens=200, ttft=0.01, chunk_delay=0.01) as up:
            async with AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
                stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
                received = 0
                async for _ in stream:
                    received += 1
                    if received == 3:
                        break
                await stream.close()
                closed_at = time.time()
                [entry] = await up.journal.wait_for(
                    lambda es: len(es) == 1 and es[0].finished_at is not None, timeout=1.0
                )
            total = 1 + 200 + 1
            assert entry.outcome == "disconnected" and entry.client_disconnected is True
            assert 3 <= entry.chunks_sent < total // 4, entry
            assert entry.completion_tokens < 50
            assert entry.finished_at - closed_at < 1.0

    asyncio.run(main())


# --- the journal over HTTP ---------------------------------------------------------------------------


def test_journal_over_http(up: RunningUpstream, client: OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    client.models.list()
    root = up.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=5) as control:  # no Authorization needed
        listed = control.get("/_upstream/journal")
        assert listed.status_code == 200
        entries = listed.json()["entries"]
        assert [e["endpoint"] for e in entries] == ["chat.completions", "models"]
        first = entries[0]
        assert isinstance(first, dict) and first == up.journal.entries()[0].to_dict()
        assert first["duration"] == pytest.approx(first["finished_at"] - first["received_at"])
        assert first["outcome"] == "ok" and first["request_id"].startswith("req_")
        assert control.get("/_upstream/journal").json()["entries"] == entries  # GET is not journaled
        assert control.post("/_upstream/journal").status_code == 405
        cleared = control.delete("/_upstream/journal")
        assert cleared.status_code == 200 and cleared.json() == {"cleared": True}
        assert control.get("/_upstream/journal").json() == {"entries": []}
    assert len(up.journal) == 0
    client.models.list()
    [entry] = up.journal.entries()
    assert entry.seq == first["seq"] + 2  # sequence numbers keep counting after a clear
