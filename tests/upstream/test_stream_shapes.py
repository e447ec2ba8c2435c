"""The shape faults (``filter_annotations``, ``refusal``) on the wire, read by the real SDK over a real socket.

Each raw chunk is read through the SDK's own ``with_streaming_response`` and validated
with pydantic's strict mode against ``ChatCompletionChunk``; the SDK's stream (default
and strict client) and its plain replies are checked for what a caller sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai import OpenAI, omit
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from support.upstream import RunningUpstream, upstream_in_thread
from support.upstream.chat_wire import REFUSAL_PIECES, SAFE
from support.upstream.faults import KINDS, parse_fault, spec_of
from tests.conftest import MODEL

FAST = {"latency": 0.01, "ttft": 0.005, "chunk_delay": 0.0}
MESSAGES: list[Any] = [{"role": "user", "content": "Say something about event loops."}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}
REFUSAL = "".join(REFUSAL_PIECES)


@pytest.fixture(scope="module")
def up() -> Iterator[RunningUpstream]:
    with upstream_in_thread(seed=3, reply_tokens=8, **FAST) as upstream:
        yield upstream


@pytest.fixture
def client(up: RunningUpstream) -> Iterator[OpenAI]:
    with OpenAI(base_url=up.base_url, api_key="test-key", max_retries=0) as c:
        yield c


def raw_chunks(client: OpenAI, fault: str, **params: Any) -> list[dict[str, Any]]:
    """The stream's ``data:`` payloads as sent, read through the SDK (no parsing by it)."""
    with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-upstream-fault": fault}, **params
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def strict_chunk(data: dict[str, Any]) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(data, strict=True)


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["filter_annotations", "refusal"])
def test_shape_kinds_parse_and_take_only_the_common_params(kind: str) -> None:
    assert KINDS[kind] == set()
    fault = parse_fault(f"{kind};times=1")
    assert fault is not None and spec_of(fault) == f"{kind};times=1"


@pytest.mark.parametrize("header", ["refusal;after=2", "filter_annotations;status=500", "refusal;times=x", "refusals"])
def test_bad_shape_fault_is_an_openai_shaped_400(client: OpenAI, header: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": header})
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_fault" and caught.value.param == "x-upstream-fault"
    assert caught.value.message.startswith("Error code: 400 - ") and "Invalid x-upstream-fault:" in caught.value.message


# --- filter_annotations -------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True])
def test_filter_annotations_stream_opens_with_azures_frame(client: OpenAI, include_usage: bool) -> None:
    options: Any = {"include_usage": True} if include_usage else omit
    chunks = raw_chunks(client, "filter_annotations", stream_options=options)
    first, rest = chunks[0], chunks[1:]
    assert first == {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}],
    }
    assert set(SAFE) == {"hate", "self_harm", "sexual", "violence"}
    # Azure's own frame says object "", which the SDK's strict types refuse; nothing else about it.
    with pytest.raises(pydantic.ValidationError) as caught:
        strict_chunk(first)
    assert [error["loc"] for error in caught.value.errors()] == [("object",)]
    assert strict_chunk({**first, "object": "chat.completion.chunk"}).choices == []
    parsed = [strict_chunk(chunk) for chunk in rest]  # every other chunk is strictly valid
    with_choice = [chunk for chunk in parsed if chunk.choices]
    for chunk in with_choice:
        results = chunk.choices[0].model_extra or {}
        expected = SAFE if chunk.choices[0].delta.content else {}
        assert results == {"content_filter_results": expected}
    assert with_choice[0].choices[0].delta.role == "assistant"
    assert with_choice[-1].choices[0].finish_reason == "stop"
    assert (parsed[-1].usage is not None and not parsed[-1].choices) is include_usage


def test_filter_annotations_through_the_sdk(client: OpenAI, up: RunningUpstream) -> None:
    """The default client reads Azure's frame as a chunk with no choices; a strict client refuses it."""
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-upstream-fault": "filter_annotations"}
    )
    chunks = list(stream)
    assert chunks[0].choices == [] and chunks[0].model_extra == {
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}]
    }
    assert "".join(c.choices[0].delta.content or "" for c in chunks[1:]) == plain.choices[0].message.content
    assert up.journal.entries()[-1].fault == "filter_annotations"
    with OpenAI(base_url=up.base_url, api_key="k", max_retries=0, _strict_response_validation=True) as strict:
        strict_stream = strict.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-upstream-fault": "filter_annotations"}
        )
        with pytest.raises(openai.APIResponseValidationError):
            next(iter(strict_stream))
        strict_stream.close()


def test_filter_annotations_plain_reply(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "filter_annotations"}
    )
    body = json.loads(raw.content)
    completion = ChatCompletion.model_validate(body, strict=True)
    assert body["prompt_filter_results"] == [{"prompt_index": 0, "content_filter_results": SAFE}]
    assert completion.choices[0].model_extra == {"content_filter_results": SAFE}
    assert completion.choices[0].message.content


def test_filter_annotations_with_tool_calls_and_two_choices(client: OpenAI) -> None:
    chunks = raw_chunks(client, "filter_annotations", tools=[TOOL], n=2)
    assert chunks[0]["choices"] == []
    parsed = [strict_chunk(chunk) for chunk in chunks[1:]]
    assert {chunk.choices[0].index for chunk in parsed} == {0, 1}
    calls = [c for c in parsed if c.choices[0].delta.tool_calls]
    assert calls and all((c.choices[0].model_extra or {})["content_filter_results"] == SAFE for c in calls)


# --- refusal ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [False, True])
def test_refusal_stream(client: OpenAI, up: RunningUpstream, tools: bool) -> None:
    chunks = raw_chunks(client, "refusal", stream_options={"include_usage": True}, tools=[TOOL] if tools else omit)
    parsed = [strict_chunk(chunk) for chunk in chunks]  # all strictly valid
    *body, last = parsed
    deltas = [chunk.choices[0].delta for chunk in body]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": ""}
    assert all(delta.content is None and delta.tool_calls is None for delta in deltas)
    assert "".join(delta.refusal or "" for delta in deltas) == REFUSAL
    assert [chunk.choices[0].finish_reason for chunk in body][-1] == "stop"
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == len(REFUSAL_PIECES)
    entry = up.journal.entries()[-1]
    assert entry.fault == "refusal" and entry.outcome == "ok" and entry.completion_tokens == len(REFUSAL_PIECES)


def test_refusal_through_the_sdk_plain_and_accumulated(client: OpenAI) -> None:
    headers = {"x-upstream-fault": "refusal"}
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers=headers, n=2)
    for choice in plain.choices:
        assert choice.message.content is None and choice.message.refusal == REFUSAL
        assert choice.finish_reason == "stop"
    assert plain.usage is not None and plain.usage.completion_tokens == 2 * len(REFUSAL_PIECES)
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES, extra_headers=headers) as stream:
        final = stream.get_final_completion()  # the SDK's own accumulator
    assert final.choices[0].message.refusal == REFUSAL and final.choices[0].message.content is None


def test_shape_faults_leave_the_responses_endpoint_alone(client: OpenAI) -> None:
    for fault in ("refusal", "filter_annotations"):
        response = client.responses.create(model=MODEL, input="hi", extra_headers={"x-upstream-fault": fault})
        assert response.status == "completed" and response.output_text
