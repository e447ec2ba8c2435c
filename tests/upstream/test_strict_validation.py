"""Strict validation: the installed SDK accepts every reply the upstream sends, for every parameter set.

The real `openai` SDK talks to the bundled upstream over a real socket with
``_strict_response_validation=True``, for Chat Completions, Responses and models, over
a broad set of request parameters, plain and streamed. Streams are read twice: through
the SDK, which in strict mode validates every chunk or event with its own types (its
``_process_response_data``), and as raw server-sent events, each decoded as the SDK
decodes it and validated with pydantic's strict mode against the SDK's type:
``ChatCompletionChunk``, or for Responses the member of the discriminated
``ResponseStreamEvent`` union that the event's ``type`` names (and the union itself).
Every payload must also hold no field the SDK's types do not declare. So when the SDK's
types and the upstream drift apart (a new required field, a renamed one, a new event
shape), these tests fail.

The semantic checks (tool call arguments valid for their schema, n choices with their
indexes, logprobs present exactly when asked...) run on the plain reply and on the
stream as the SDK's own accumulator assembles it, and the two must agree.
"""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jsonschema
import openai
import pydantic
import pytest
from openai import AsyncOpenAI, OpenAI, omit
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from support.upstream import RunningUpstream, upstream_in_thread
from tests.conftest import MODEL

REASONING_MODEL = "gpt-5-mini"  # a reasoning model: effort medium (32 reasoning tokens) by default
REPLY_TOKENS = 12
QUESTION = "Say something about event loops."
MESSAGES = [{"role": "user", "content": QUESTION}]
M = TypeVar("M", bound=pydantic.BaseModel)

# The Responses stream event classes by their `type`, from the SDK's own union.
EVENT_CLASSES: dict[str, type[pydantic.BaseModel]] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
EVENT_UNION: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)


# --- strict parsing -------------------------------------------------------------------------------


# Fields the real API sends that the installed SDK's types do not declare (kept as extras, still
# readable as attributes). The upstream sends them too; `test_undeclared_fields_are_still_undeclared`
# says when an SDK upgrade declares one, so it can leave this list.
SENT_BUT_UNDECLARED = {("Response", "store")}


def unknown_fields(value: Any, path: str = "$") -> list[str]:
    """Paths of fields the SDK's types do not declare (pydantic keeps them as extras)."""
    if isinstance(value, pydantic.BaseModel):
        extras = [name for name in value.model_extra or {} if (type(value).__name__, name) not in SENT_BUT_UNDECLARED]
        found = [f"{path}.{name}" for name in extras]
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in unknown_fields(item, f"{path}[{i}]")]
    return []


def strictly(model: type[M], data: str | bytes) -> M:
    """`data` validated by pydantic in strict mode against the SDK's `model`, with no undeclared field.

    Decoded with `json.loads`, as the SDK decodes bodies and events (httpx's ``response.json()``,
    its own ``sse.json()``), so a lone surrogate a client sent and a reply echoes reads as it does there.
    """
    parsed = model.model_validate(json.loads(data), strict=True)
    assert unknown_fields(parsed) == [], (model.__name__, unknown_fields(parsed))
    return parsed


def strict_event(name: str | None, data: str) -> pydantic.BaseModel:
    """A Responses stream event, validated strictly against its class and against the union."""
    kind = json.loads(data)["type"]
    assert name == kind, (name, kind)  # the SSE event name is the payload's type
    assert kind in EVENT_CLASSES, f"the SDK has no stream event type {kind!r}"
    event = strictly(EVENT_CLASSES[kind], data)
    assert type(EVENT_UNION.validate_python(json.loads(data), strict=True)) is EVENT_CLASSES[kind]
    return event


PER_REQUEST = ("id", "item_id", "call_id", "encrypted_content")  # what differs between two requests


def anonymous(value: Any) -> Any:
    """`value` (a model's dump) without ids: two requests for the same reply differ only in those."""
    if isinstance(value, pydantic.BaseModel):
        return anonymous(value.model_dump())
    if isinstance(value, dict):
        return {k: anonymous(v) for k, v in value.items() if k not in PER_REQUEST}
    if isinstance(value, list):
        return [anonymous(item) for item in value]
    return value


def sse_events(lines: Iterator[str]) -> list[tuple[str | None, str]]:
    """Raw server-sent events as (event name, data)."""
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
    if data:
        events.append((name, "\n".join(data)))
    return events


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(seed=5, reply_tokens=REPLY_TOKENS, latency=0, ttft=0, chunk_delay=0) as up:
        yield up


@pytest.fixture(scope="module")
def strict(upstream: RunningUpstream) -> Iterator[OpenAI]:
    with OpenAI(base_url=upstream.base_url, api_key="k", max_retries=0, _strict_response_validation=True) as client:
        yield client


@pytest.fixture(scope="module")
def reference(strict: OpenAI) -> str:
    """The text a plain request gets (the same words whatever the bookkeeping parameters)."""
    text = strict.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    assert text is not None and len(text.split()) == REPLY_TOKENS
    return text


# --- chat completions -----------------------------------------------------------------------------


@dataclass
class Seen:
    """What a check may look at besides the completion: how it arrived, and the reference text."""

    streamed: bool
    reference: str
    chunks: list[Any] = field(default_factory=list)  # the SDK-parsed chunks or events of a stream


def chat_plain(client: OpenAI, params: dict[str, Any]) -> ChatCompletion:
    raw = client.chat.completions.with_raw_response.create(**params)
    strictly(ChatCompletion, raw.http_response.content)
    return raw.parse()  # the SDK's own strict validation


def chat_streamed(client: OpenAI, params: dict[str, Any]) -> tuple[ChatCompletion, list[ChatCompletionChunk]]:
    """The stream through the SDK, and raw: every chunk strictly valid; assembled by the SDK's accumulator."""
    params = {**params, "stream": True, "stream_options": {"include_usage": True}}
    chunks = list(client.chat.completions.create(**params))
    with client.chat.completions.with_streaming_response.create(**params) as response:
        events = sse_events(response.iter_lines())
    assert events[-1] == (None, "[DONE]")
    raw = [strictly(ChatCompletionChunk, data) for name, data in events[:-1] if name is None]
    assert len(raw) == len(events) - 1
    assert anonymous(raw) == anonymous(chunks)
    assert all(len(c.choices) == 1 for c in chunks[:-1]) and chunks[-1].choices == []  # then the usage chunk
    return accumulated(params, chunks), chunks


def accumulated(params: dict[str, Any], chunks: list[ChatCompletionChunk]) -> ChatCompletion:
    """The completion the SDK's own stream accumulator assembles from `chunks`."""
    state = ChatCompletionStreamState(
        input_tools=params.get("tools", omit), response_format=params.get("response_format", omit)
    )
    for chunk in chunks:
        state.handle_chunk(chunk)
    try:
        return state.get_final_completion()
    except openai.LengthFinishReasonError as cut:  # the accumulator refuses to parse a cut reply; it built it
        return cut.completion


def summary(completion: ChatCompletion) -> list[tuple[Any, ...]]:
    """What must agree between a plain reply and a stream: per choice, text, finish, calls and logprobs."""
    rows = []
    for choice in sorted(completion.choices, key=lambda c: c.index):
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]  # type: ignore[union-attr]
        tokens = (
            [
                (t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs])
                for t in (choice.logprobs.content or [])
            ]
            if choice.logprobs
            else None
        )
        rows.append((choice.index, choice.message.content or "", choice.finish_reason, calls, tokens))
    return rows


WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
CLOCK_PARAMETERS = {
    "type": "object",
    "properties": {"timezone": {"type": "string", "pattern": "^[A-Z][a-z]+/[A-Z][a-z]+$"}},
    "required": ["timezone"],
    "additionalProperties": False,
}
PARAMETERS = {"get_weather": WEATHER_PARAMETERS, "get_time": CLOCK_PARAMETERS}
CHAT_TOOLS = [
    {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": p, "strict": True}}
    for name, p in PARAMETERS.items()
]
PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "email": {"type": "string", "format": "email"},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "home": {"$ref": "#/$defs/Address"},
        "role": {"type": "string", "enum": ["reader", "writer"]},
    },
    "required": ["name", "age", "email", "nickname", "tags", "home", "role"],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}, "street": {"type": "string"}},
            "required": ["zip", "street"],
            "additionalProperties": False,
        }
    },
}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
TOOL_TURN = [
    *MESSAGES,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "12 degrees, rain"},
]


def calls_of(completion: ChatCompletion, index: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """The choice's tool calls as (name, arguments), each checked: JSON valid for its function's schema."""
    calls = completion.choices[index].message.tool_calls or []
    result = []
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, PARAMETERS[call.function.name])
        result.append((call.function.name, arguments))
    assert len({call.id for call in calls}) == len(calls)
    return result


def check_plain(c: ChatCompletion, seen: Seen) -> None:
    [choice] = c.choices
    assert (choice.index, choice.finish_reason, choice.message.content) == (0, "stop", seen.reference)
    assert choice.logprobs is None and choice.message.tool_calls is None
    assert c.usage is not None and c.usage.completion_tokens == REPLY_TOKENS
    assert c.usage.completion_tokens_details is not None and c.usage.completion_tokens_details.reasoning_tokens == 0


def check_bookkeeping(c: ChatCompletion, seen: Seen) -> None:
    assert c.choices[0].message.content == seen.reference  # sampling and bookkeeping do not change the text
    assert c.service_tier == "flex"


def check_n3(c: ChatCompletion, seen: Seen) -> None:
    assert [choice.index for choice in c.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in c.choices]
    assert texts[0] == seen.reference and len(set(texts)) == 3  # independent samples, the first as with n=1
    assert all(choice.finish_reason == "stop" for choice in c.choices)
    assert c.usage is not None and c.usage.completion_tokens == 3 * REPLY_TOKENS
    if seen.streamed:  # interleaved: the second chunk already belongs to choice 1
        assert [chunk.choices[0].index for chunk in seen.chunks[:3]] == [0, 1, 2]


def check_logprobs(c: ChatCompletion, seen: Seen) -> None:
    choice = c.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content == seen.reference
    assert len(tokens) == REPLY_TOKENS
    for t in tokens:
        assert t.logprob <= 0 and t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token
        assert [a.logprob for a in t.top_logprobs] == sorted((a.logprob for a in t.top_logprobs), reverse=True)
    if seen.streamed:
        with_tokens = [chunk for chunk in seen.chunks if chunk.choices and chunk.choices[0].delta.content]
        assert all(len(chunk.choices[0].logprobs.content) == 1 for chunk in with_tokens)


def check_forced_tool(c: ChatCompletion, seen: Seen) -> None:
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [(name, arguments)] = calls_of(c)
    assert name == "get_weather" and set(arguments) == {"city", "unit", "days"}
    if seen.streamed:
        deltas = [chunk.choices[0].delta.tool_calls for chunk in seen.chunks if chunk.choices]
        assert deltas[0] and deltas[0][0].id and deltas[0][0].function.name == "get_weather"  # the header first
        pieces = [d[0].function.arguments for d in deltas[1:] if d]
        assert len(pieces) > 3 and "".join(pieces) == choice.message.tool_calls[0].function.arguments


def check_parallel_tools(c: ChatCompletion, seen: Seen) -> None:
    assert c.choices[0].finish_reason == "tool_calls"
    assert [name for name, _ in calls_of(c)] == ["get_weather", "get_time"]


def check_serial_tools(c: ChatCompletion, seen: Seen) -> None:
    assert [name for name, _ in calls_of(c)] == ["get_weather"]


def check_text_reply(c: ChatCompletion, seen: Seen) -> None:
    choice = c.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert choice.message.content and len(choice.message.content.split()) == REPLY_TOKENS


def check_json_schema(c: ChatCompletion, seen: Seen) -> None:
    content = c.choices[0].message.content
    assert content is not None and c.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(content), PERSON_SCHEMA)


def check_json_object(c: ChatCompletion, seen: Seen) -> None:
    content = c.choices[0].message.content
    assert content is not None and isinstance(json.loads(content), dict)


def check_cut(c: ChatCompletion, seen: Seen) -> None:
    choice = c.choices[0]
    assert choice.finish_reason == "length" and choice.message.content is not None
    assert choice.message.content.split() == seen.reference.split()[:5]
    assert c.usage is not None and c.usage.completion_tokens == 5


def check_reasoning(c: ChatCompletion, seen: Seen) -> None:
    assert c.choices[0].finish_reason == "stop" and c.choices[0].message.content
    assert c.usage is not None and c.usage.completion_tokens_details is not None
    assert c.usage.completion_tokens_details.reasoning_tokens == 16  # effort low
    assert c.usage.completion_tokens == 16 + REPLY_TOKENS


def check_reasoning_exhausted(c: ChatCompletion, seen: Seen) -> None:
    """The real gotcha: a reasoning model can spend the whole limit thinking and answer nothing."""
    assert c.choices[0].finish_reason == "length" and c.choices[0].message.content == ""
    assert c.usage is not None and c.usage.completion_tokens == 20
    assert c.usage.completion_tokens_details is not None and c.usage.completion_tokens_details.reasoning_tokens == 20


def check_n2_tools(c: ChatCompletion, seen: Seen) -> None:
    assert [choice.index for choice in c.choices] == [0, 1]
    assert [name for name, _ in calls_of(c, 0)] == [name for name, _ in calls_of(c, 1)] == ["get_time"]


@dataclass(frozen=True)
class Case:
    id: str
    params: dict[str, Any]
    check: Callable[[Any, Seen], None]


CHAT_CASES = [
    Case("plain", {}, check_plain),
    Case(
        "sampling-and-bookkeeping",
        {
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 42,
            "frequency_penalty": 0.5,
            "presence_penalty": -0.5,
            "logit_bias": {"50256": -100},
            "user": "reader-1",
            "safety_identifier": "reader-1-hash",
            "prompt_cache_key": "runbook",
            "metadata": {"purpose": "strict-test"},
            "store": True,
            "service_tier": "flex",
            "max_completion_tokens": 100,
        },
        check_bookkeeping,
    ),
    Case("n3", {"n": 3}, check_n3),
    Case("logprobs", {"logprobs": True, "top_logprobs": 3}, check_logprobs),
    Case(
        "tool-forced",
        {"tools": CHAT_TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        check_forced_tool,
    ),
    Case("tools-required-parallel", {"tools": CHAT_TOOLS, "tool_choice": "required"}, check_parallel_tools),
    Case("tools-auto-serial", {"tools": CHAT_TOOLS, "parallel_tool_calls": False}, check_serial_tools),
    Case("tools-after-result", {"tools": CHAT_TOOLS, "messages": TOOL_TURN}, check_text_reply),
    Case("tools-none", {"tools": CHAT_TOOLS, "tool_choice": "none"}, check_text_reply),
    Case("json-schema", {"response_format": PERSON_FORMAT}, check_json_schema),
    Case(
        "json-object",
        {"response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "Reply in JSON."}]},
        check_json_object,
    ),
    Case("max-completion-tokens-cut", {"max_completion_tokens": 5}, check_cut),
    Case("max-tokens-cut", {"max_tokens": 5}, check_cut),
    Case("reasoning", {"model": REASONING_MODEL, "reasoning_effort": "low"}, check_reasoning),
    Case("reasoning-exhausted", {"model": REASONING_MODEL, "max_completion_tokens": 20}, check_reasoning_exhausted),
    Case(
        "n2-tool-forced",
        {"n": 2, "tools": CHAT_TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
        check_n2_tools,
    ),
]


@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda c: c.id)
def test_chat_completions_validate_strictly(strict: OpenAI, reference: str, case: Case) -> None:
    params = {"model": MODEL, "messages": MESSAGES, **case.params}
    plain = chat_plain(strict, params)
    case.check(plain, Seen(streamed=False, reference=reference))
    streamed, chunks = chat_streamed(strict, params)
    case.check(streamed, Seen(streamed=True, reference=reference, chunks=chunks))
    assert summary(streamed) == summary(plain)
    assert streamed.usage == plain.usage  # include_usage: the last chunk carries the same usage


def test_chat_parse_helpers_with_pydantic_models(strict: OpenAI) -> None:
    """The SDK's structured-output helpers build strict schemas and parse the reply with the model."""

    class Address(pydantic.BaseModel):
        zip: str = pydantic.Field(pattern=r"^\d{5}$")
        street: str

    class Person(pydantic.BaseModel):
        name: str
        age: int = pydantic.Field(ge=18, le=99)
        nickname: str | None
        home: Address
        friends: list[Person]

    class GetWeather(pydantic.BaseModel):
        city: str
        days: int = pydantic.Field(ge=1, le=7)

    parsed = strict.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Person)
    person = parsed.choices[0].message.parsed
    assert isinstance(person, Person) and 18 <= person.age <= 99 and len(person.home.zip) == 5

    called = strict.chat.completions.parse(
        model=MODEL, messages=MESSAGES, tools=[openai.pydantic_function_tool(GetWeather)], tool_choice="required"
    )
    [call] = called.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather) and 1 <= call.function.parsed_arguments.days <= 7

    with strict.chat.completions.stream(model=MODEL, messages=MESSAGES, response_format=Person) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == person


def test_chat_stop_sequence_ends_the_text_before_it(strict: OpenAI, reference: str) -> None:
    fourth = " " + reference.split()[3]
    stop = fourth + " "  # the fourth word with its spaces: the text must end after the third word
    for completion in (
        strict.chat.completions.create(model=MODEL, messages=MESSAGES, stop=[stop, "never-there"]),
        chat_streamed(strict, {"model": MODEL, "messages": MESSAGES, "stop": stop})[0],
    ):
        choice = completion.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.message.content == reference[: reference.index(stop)]


# --- responses ------------------------------------------------------------------------------------


def responses_plain(client: OpenAI, params: dict[str, Any]) -> Response:
    raw = client.responses.with_raw_response.create(**params)
    strictly(Response, raw.http_response.content)
    return raw.parse()


def responses_streamed(client: OpenAI, params: dict[str, Any]) -> tuple[Response, list[Any]]:
    """The stream through the SDK, and raw: every event strictly valid for its member of the union."""
    params = {**params, "stream": True}
    events = list(client.responses.create(**params))
    with client.responses.with_streaming_response.create(**params) as response:
        raw = [strict_event(name, data) for name, data in sse_events(response.iter_lines())]
    assert anonymous(raw) == anonymous(events)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    final = events[-1]
    assert final.type in ("response.completed", "response.incomplete")
    assert final.response.status == final.type.removeprefix("response.")
    return final.response, events


def response_summary(response: Response) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [(response.status, response.incomplete_details, response.output_text)]
    for item in response.output:
        if item.type == "function_call":
            rows.append((item.type, item.name, item.arguments, item.status))
        elif item.type == "reasoning":
            rows.append((item.type, [s.text for s in item.summary], bool(item.encrypted_content)))
        else:
            rows.append((item.type, item.status, [part.model_dump() for part in item.content]))
    return rows


def function_calls(response: Response) -> list[tuple[str, dict[str, Any]]]:
    calls = [item for item in response.output if item.type == "function_call"]
    result = []
    for call in calls:
        assert call.id is not None and call.id.startswith("fc_") and call.call_id.startswith("call_")
        assert call.status == "completed"
        arguments = json.loads(call.arguments)
        jsonschema.validate(arguments, PARAMETERS[call.name])
        result.append((call.name, arguments))
    return result


def check_response_plain(r: Response, seen: Seen) -> None:
    assert r.status == "completed" and r.incomplete_details is None and r.error is None
    assert r.instructions == "Be brief." and r.previous_response_id is None
    assert [item.type for item in r.output] == ["message"]
    assert len(r.output_text.split()) == REPLY_TOKENS
    assert r.usage is not None and r.usage.output_tokens == REPLY_TOKENS
    assert r.usage.input_tokens_details.cache_write_tokens == 0 and r.usage.output_tokens_details.reasoning_tokens == 0
    assert r.reasoning is not None and r.reasoning.effort is None


def check_response_bookkeeping(r: Response, seen: Seen) -> None:
    assert r.output_text == seen.reference
    assert r.metadata == {"purpose": "strict-test"} and r.store is False and r.user == "reader-1"
    assert (r.temperature, r.top_p, r.service_tier, r.truncation) == (0.3, 0.8, "priority", "auto")
    assert (r.safety_identifier, r.prompt_cache_key, r.max_output_tokens) == ("reader-1-hash", "runbook", 100)
    assert r.parallel_tool_calls is False and r.tools == [] and r.tool_choice == "auto"


def check_response_json_schema(r: Response, seen: Seen) -> None:
    assert r.status == "completed"
    jsonschema.validate(json.loads(r.output_text), PERSON_SCHEMA)
    assert r.text is not None and r.text.format is not None and r.text.format.type == "json_schema"


def check_response_json_object(r: Response, seen: Seen) -> None:
    assert isinstance(json.loads(r.output_text), dict)


def check_response_forced_tool(r: Response, seen: Seen) -> None:
    assert r.status == "completed" and r.output_text == ""
    assert [name for name, _ in function_calls(r)] == ["get_time"]
    assert [tool.name for tool in r.tools] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    if seen.streamed:
        types = [e.type for e in seen.chunks[2:-1]]
        assert types[0] == "response.output_item.added" and types[-1] == "response.output_item.done"
        assert set(types[1:-2]) == {"response.function_call_arguments.delta"}
        assert types[-2] == "response.function_call_arguments.done"


def check_response_parallel(r: Response, seen: Seen) -> None:
    assert [name for name, _ in function_calls(r)] == ["get_weather", "get_time"]


def check_response_one_call(r: Response, seen: Seen) -> None:
    assert [name for name, _ in function_calls(r)] == ["get_weather"]


def check_response_text(r: Response, seen: Seen) -> None:
    assert r.status == "completed" and [item.type for item in r.output] == ["message"]
    assert len(r.output_text.split()) == REPLY_TOKENS


def check_response_reasoning(r: Response, seen: Seen) -> None:
    reasoning, message = r.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.summary and reasoning.summary[0].text.startswith("**")
    assert reasoning.encrypted_content
    assert r.reasoning is not None and (r.reasoning.effort, r.reasoning.summary) == ("low", "auto")
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens == 16
    assert r.usage.output_tokens == 16 + REPLY_TOKENS
    if seen.streamed:
        types = {e.type for e in seen.chunks}
        assert {"response.reasoning_summary_text.delta", "response.reasoning_summary_part.done"} <= types


def check_response_exhausted(r: Response, seen: Seen) -> None:
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert [item.type for item in r.output] == ["reasoning"] and r.output_text == ""
    assert r.usage is not None and r.usage.output_tokens == r.usage.output_tokens_details.reasoning_tokens == 16
    assert r.reasoning is not None and r.reasoning.effort == "medium"  # a reasoning model's default


def check_response_logprobs(r: Response, seen: Seen) -> None:
    [message] = r.output
    assert message.type == "message"
    [part] = message.content
    assert part.type == "output_text" and part.logprobs is not None
    assert "".join(lp.token for lp in part.logprobs) == part.text
    assert all(len(lp.top_logprobs) == 2 and lp.top_logprobs[0].token == lp.token for lp in part.logprobs)
    if seen.streamed:
        deltas = [e for e in seen.chunks if e.type == "response.output_text.delta"]
        assert all(len(e.logprobs) == 1 and e.logprobs[0].token == e.delta for e in deltas)


def check_response_cut(r: Response, seen: Seen) -> None:
    assert r.status == "incomplete" and r.incomplete_details is not None
    [message] = r.output
    assert message.type == "message" and message.status == "incomplete"
    assert r.usage is not None and r.usage.output_tokens == 16
    with pytest.raises(json.JSONDecodeError):  # JSON cut in the middle, as the real service cuts it
        json.loads(r.output_text)


RESPONSES_TOOLS = [
    {"type": "function", "name": name, "description": f"{name} tool", "parameters": p, "strict": True}
    for name, p in PARAMETERS.items()
]
TEXT_PERSON = {"format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA, "strict": True}}
FUNCTION_TURN = [
    {"role": "user", "content": QUESTION},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "12 degrees, rain"},
]

RESPONSES_CASES = [
    Case("plain", {"instructions": "Be brief."}, check_response_plain),
    Case(
        "bookkeeping",
        {
            "metadata": {"purpose": "strict-test"},
            "store": False,
            "user": "reader-1",
            "safety_identifier": "reader-1-hash",
            "prompt_cache_key": "runbook",
            "temperature": 0.3,
            "top_p": 0.8,
            "service_tier": "priority",
            "truncation": "auto",
            "max_output_tokens": 100,
            "parallel_tool_calls": False,
        },
        check_response_bookkeeping,
    ),
    Case("json-schema", {"text": TEXT_PERSON}, check_response_json_schema),
    Case(
        "json-object",
        {"text": {"format": {"type": "json_object"}}, "input": "Reply in JSON."},
        check_response_json_object,
    ),
    Case(
        "tool-forced",
        {"tools": RESPONSES_TOOLS, "tool_choice": {"type": "function", "name": "get_time"}},
        check_response_forced_tool,
    ),
    Case("tools-auto-parallel", {"tools": RESPONSES_TOOLS}, check_response_parallel),
    Case("tools-max-one", {"tools": RESPONSES_TOOLS, "max_tool_calls": 1}, check_response_one_call),
    Case("tools-serial", {"tools": RESPONSES_TOOLS, "parallel_tool_calls": False}, check_response_one_call),
    Case("tool-output-answered", {"tools": RESPONSES_TOOLS, "input": FUNCTION_TURN}, check_response_text),
    Case(
        "reasoning-summary",
        {
            "model": REASONING_MODEL,
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
        },
        check_response_reasoning,
    ),
    Case("reasoning-exhausted", {"model": REASONING_MODEL, "max_output_tokens": 16}, check_response_exhausted),
    Case(
        "logprobs",
        {"include": ["message.output_text.logprobs"], "top_logprobs": 2},
        check_response_logprobs,
    ),
    Case("max-output-tokens-cut", {"text": TEXT_PERSON, "max_output_tokens": 16}, check_response_cut),
]


@pytest.mark.parametrize("case", RESPONSES_CASES, ids=lambda c: c.id)
def test_responses_validate_strictly(strict: OpenAI, reference: str, case: Case) -> None:
    params = {"model": MODEL, "input": QUESTION, **case.params}
    plain = responses_plain(strict, params)
    case.check(plain, Seen(streamed=False, reference=reference))
    streamed, events = responses_streamed(strict, params)
    case.check(streamed, Seen(streamed=True, reference=reference, chunks=events))
    assert response_summary(streamed) == response_summary(plain)
    assert streamed.usage == plain.usage


def test_responses_helpers_parse_and_stream(strict: OpenAI) -> None:
    class Weather(pydantic.BaseModel):
        city: str
        celsius: float = pydantic.Field(ge=-50, le=50)

    parsed = strict.responses.parse(model=MODEL, input=QUESTION, text_format=Weather)
    assert isinstance(parsed.output_parsed, Weather) and -50 <= parsed.output_parsed.celsius <= 50
    with strict.responses.stream(model=MODEL, input=QUESTION, tools=RESPONSES_TOOLS, tool_choice="required") as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert kinds.count("response.function_call_arguments.done") == 2
    assert [name for name, _ in function_calls(final)] == ["get_weather", "get_time"]


def test_previous_response_id_continues_a_stored_response(strict: OpenAI) -> None:
    """A tool loop over previous_response_id: the call's output answers the stored response's call."""
    first = strict.responses.create(model=MODEL, input=QUESTION, tools=RESPONSES_TOOLS, tool_choice="required")
    calls = [item for item in first.output if item.type == "function_call"]
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "done"} for c in calls]
    second = responses_plain(
        strict, {"model": MODEL, "input": outputs, "previous_response_id": first.id, "tools": RESPONSES_TOOLS}
    )
    assert second.previous_response_id == first.id
    assert [item.type for item in second.output] == ["message"]  # it read the tools' output: it answers
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens  # billed again

    unstored = strict.responses.create(model=MODEL, input=QUESTION, store=False)
    for missing_id in (unstored.id, "resp_does_not_exist"):
        with pytest.raises(openai.BadRequestError) as info:
            strict.responses.create(model=MODEL, input="again", previous_response_id=missing_id)
        assert info.value.body["message"] == f"Previous response with id '{missing_id}' not found."  # type: ignore[index]
        assert (info.value.param, info.value.code) == ("previous_response_id", "previous_response_not_found")


def test_undeclared_fields_are_still_undeclared() -> None:
    from openai.types import responses

    for class_name, name in SENT_BUT_UNDECLARED:
        assert name not in getattr(responses, class_name).model_fields, f"the SDK now declares {class_name}.{name}"


ASYNC_CASES = ["plain", "n3", "logprobs", "tool-forced", "json-schema", "reasoning-exhausted"]


@pytest.mark.parametrize("name", ASYNC_CASES)
def test_async_client_validates_strictly_too(upstream: RunningUpstream, reference: str, name: str) -> None:
    """`AsyncOpenAI` in strict mode: the same replies, plain and streamed, for both endpoints."""
    [chat_case] = [c for c in CHAT_CASES if c.id == name]
    responses_case = next((c for c in RESPONSES_CASES if c.id == name), RESPONSES_CASES[0])

    async def main() -> None:
        async with AsyncOpenAI(
            base_url=upstream.base_url, api_key="k", max_retries=0, _strict_response_validation=True
        ) as client:
            params = {"model": MODEL, "messages": MESSAGES, **chat_case.params}
            plain = await client.chat.completions.create(**params)
            chat_case.check(plain, Seen(streamed=False, reference=reference))
            stream = await client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            streamed = accumulated(params, chunks)
            chat_case.check(streamed, Seen(streamed=True, reference=reference, chunks=chunks))
            assert summary(streamed) == summary(plain)

            request = {"model": MODEL, "input": QUESTION, **responses_case.params}
            response = await client.responses.create(**request)
            responses_case.check(response, Seen(streamed=False, reference=reference))
            events = [event async for event in await client.responses.create(**request, stream=True)]
            final = events[-1].response
            responses_case.check(final, Seen(streamed=True, reference=reference, chunks=events))
            assert response_summary(final) == response_summary(response)
            assert MODEL in [m.id async for m in client.models.list()]
            assert (await client.models.retrieve(MODEL)).id == MODEL

    asyncio.run(main())


# --- models ---------------------------------------------------------------------------------------


def test_models_validate_strictly(strict: OpenAI) -> None:
    raw = strict.models.with_raw_response.list()
    page = json.loads(raw.http_response.content)
    assert page["object"] == "list"
    models = [strictly(Model, json.dumps(card)) for card in page["data"]]
    assert [m.id for m in raw.parse()] == [m.id for m in models]
    retrieved = strict.models.with_raw_response.retrieve(MODEL)
    assert strictly(Model, retrieved.http_response.content).id == retrieved.parse().id == MODEL


# --- rejections -----------------------------------------------------------------------------------

BAD_TOOL = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object"}}}
CHAT_REJECTIONS = [
    (
        {"max_completion_tokens": 0},
        "max_completion_tokens",
        "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
    ),
    ({"n": 129}, "n", "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead."),
    (
        {"response_format": {"type": "xml"}},
        "response_format.type",
        "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.",
    ),
    (
        {"messages": [{"role": "robot", "content": "hi"}]},
        "messages[0].role",
        "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "
        "and 'developer'.",
    ),
    (
        {"top_logprobs": 2},
        "top_logprobs",
        "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.",
    ),
    (
        {"messages": [*MESSAGES, {"role": "tool", "tool_call_id": "call_1", "content": "12"}]},
        "messages.[1].role",
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
    ),
    (
        {"messages": TOOL_TURN[:2]},
        "messages.[1].role",
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: call_1",
    ),
    (
        {"tools": [BAD_TOOL]},
        "tools[0].function.parameters",
        "Invalid schema for function 'f': In context=(), 'additionalProperties' is required to be supplied and to "
        "be false.",
    ),
    (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {**PERSON_FORMAT["json_schema"], "schema": {**PERSON_SCHEMA, "required": ["name"]}},
            }
        },
        "response_format",
        "Invalid schema for response_format 'person': In context=(), 'required' is required to be supplied and to "
        "be an array including every key in properties. Missing 'age'.",
    ),
    (
        {"response_format": {"type": "json_object"}},
        "messages",
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
    ),
    (
        {"reasoning_effort": "low"},
        "reasoning_effort",
        "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
    ),
    (
        {"model": REASONING_MODEL, "max_tokens": 50},
        "max_tokens",
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    ),
    (
        {"model": REASONING_MODEL, "temperature": 0.2},
        "temperature",
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is "
        "supported.",
    ),
]


@pytest.mark.parametrize(("params", "param", "message"), CHAT_REJECTIONS, ids=[r[1] for r in CHAT_REJECTIONS])
def test_chat_rejections_are_the_real_apis(strict: OpenAI, params: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        strict.chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **params})
    assert info.value.status_code == 400
    assert info.value.body["message"] == message  # type: ignore[index]
    assert info.value.param == param and info.value.type == "invalid_request_error"


RESPONSES_REJECTIONS = [
    (
        {"input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]},
        "input",
        "No tool call found for function call output with call_id call_9.",
    ),
    (
        {"text": {"format": {**TEXT_PERSON["format"], "schema": {"type": "object", "properties": {}}}}},
        "text.format.schema",
        "Invalid schema for response_format 'person': In context=(), 'additionalProperties' is required to be "
        "supplied and to be false.",
    ),
    (
        {"reasoning": {"effort": "high"}},
        "reasoning.effort",
        "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
    ),
    (
        {"max_output_tokens": 15},
        "max_output_tokens",
        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 15 instead.",
    ),
    (
        {"tools": [{"type": "web_search"}]},
        "tools[0].type",
        "The bundled upstream does not serve 'web_search' tools (function tools only).",
    ),
]


@pytest.mark.parametrize(("params", "param", "message"), RESPONSES_REJECTIONS, ids=[r[1] for r in RESPONSES_REJECTIONS])
def test_responses_rejections(strict: OpenAI, params: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        strict.responses.create(**{"model": MODEL, "input": QUESTION, **params})
    assert info.value.body["message"] == message  # type: ignore[index]
    assert info.value.param == param
