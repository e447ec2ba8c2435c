"""The parameter space, broadly: valid instances for schemas, never a 5xx, tokens counted as billed.

- For well-formed schemas Hypothesis generates, the seeded instance the upstream puts in
  structured output and tool arguments is valid (checked with jsonschema, formats too).
- Hypothesis sends bodies built from every parameter the upstream interprets (tools,
  tool_choice, formats with arbitrary schemas, n, logprobs, stop, reasoning, include,
  previous_response_id...), valid and mutated: every answer is an OpenAI-shaped 400 or a
  200 whose payload (every chunk or event of a stream) is strictly valid for the SDK's types.
- A stream's journal entry counts the output tokens its usage bills.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from support.upstream import RunningUpstream, upstream_in_thread
from support.upstream.models import EFFORTS
from support.upstream.patterns import sample
from support.upstream.requests import INCLUDABLE
from support.upstream.schemas import make_instance, strict_problem
from support.upstream.stored import ResponseStore, StoredResponse
from tests.conftest import MODEL
from tests.upstream.test_strict_validation import sse_events, strict_event, strictly

AUTH = {"Authorization": "Bearer test-key"}
VALIDATOR = jsonschema.Draft202012Validator


# --- instances of well-formed schemas ------------------------------------------------------------------

NAMES = st.text(st.characters(categories=["L", "N"], include_characters="_-"), min_size=1, max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=5)
LEAVES = st.one_of(
    st.just({"type": "string"}),
    st.builds(
        lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
        st.integers(0, 30),
        st.integers(0, 10),
    ),
    st.sampled_from([{"type": "string", "format": f} for f in ("date-time", "date", "email", "uuid", "ipv4", "ipv6")]),
    st.sampled_from(
        [
            {"type": "string", "pattern": p}
            for p in (r"^\d{5}$", r"^[A-Z]{2}-\d{3,}$", r"^[a-z]+(_[a-z]+)*$", r"^\+?[0-9 ]{7,15}$", "(ab|cd)+e")
        ]
    ),
    st.builds(
        lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
        st.integers(-(10**6), 10**6),
        st.integers(0, 5),
    ),
    st.builds(
        lambda lo, span: {"type": "integer", "exclusiveMinimum": lo, "exclusiveMaximum": lo + span},
        st.integers(-1000, 1000),
        st.integers(2, 5),
    ),
    st.builds(
        lambda step, lo: {"type": "integer", "multipleOf": step, "minimum": lo},
        st.integers(1, 20),
        st.integers(-50, 50),
    ),
    st.builds(
        lambda lo, span: {"type": "number", "exclusiveMinimum": lo, "exclusiveMaximum": lo + span},
        st.floats(-1e6, 1e6),
        st.floats(1e-3, 1e3),
    ),
    st.builds(lambda lo: {"type": "number", "minimum": lo}, st.floats(-1e9, 1e9)),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(lambda values: {"enum": values}, st.lists(SCALARS, min_size=1, max_size=4)),
    st.builds(lambda value: {"const": value}, SCALARS),
)


def _object(properties: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    required = data.draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    return {"type": "object", "properties": properties, "required": required}


SCHEMAS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.builds(_object, st.dictionaries(NAMES, children, max_size=4), st.data()),
        st.builds(
            lambda items, lo, extra: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + extra},
            children,
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        st.builds(lambda alternatives: {"anyOf": alternatives}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda child: {"anyOf": [child, {"type": "null"}]}, children),
    ),
    max_leaves=12,
)
ROOT_SCHEMAS = SCHEMAS | st.builds(lambda child: {"$defs": {"Node": child}, "$ref": "#/$defs/Node"}, SCHEMAS)


@settings(max_examples=300, deadline=None, database=None)
@given(schema=ROOT_SCHEMAS, seed=st.integers(0, 2**32))
def test_instances_are_valid_for_well_formed_schemas(schema: dict[str, Any], seed: int) -> None:
    instance = make_instance(schema, random.Random(seed))
    VALIDATOR(schema, format_checker=VALIDATOR.FORMAT_CHECKER).validate(instance)
    json.dumps(instance, allow_nan=False)  # and it travels as strict JSON


def test_recursive_and_strict_schemas_from_the_sdk_helpers_get_valid_instances() -> None:
    from openai.lib._pydantic import to_strict_json_schema
    from pydantic import BaseModel, Field

    class Node(BaseModel):
        label: str = Field(pattern=r"^[A-Z][a-z]+$")
        weight: float = Field(gt=0, lt=1)
        children: list[Node]
        parent: Node | None

    schema = to_strict_json_schema(Node)
    assert strict_problem(schema) is None
    for seed in range(20):
        instance = make_instance(schema, random.Random(seed))
        jsonschema.validate(instance, schema)
        Node.model_validate(instance)


@pytest.mark.parametrize(
    "pattern",
    [r"^\d{5}$", r"^[A-Z]{2}-\d{3,}$", r"(ab|c)\1x", r"^[^0-9]+$", r"\w+@\w+\.com", r"(?P<y>\d{4})-(?P=y)", r"[\s\S]"],
)
def test_pattern_samples_match(pattern: str) -> None:
    for seed in range(10):
        text = sample(pattern, random.Random(seed))
        assert text is not None and re.search(pattern, text), (pattern, text)


@pytest.mark.parametrize("pattern", [r"^(?=a)b", r"x{100000}", "("])
def test_pattern_without_a_simple_sample_is_none(pattern: str) -> None:
    assert sample(pattern, random.Random(0)) is None


def test_strict_problems_name_their_context() -> None:
    closed = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    nested = {
        "type": "object",
        "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "string"}}}}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert strict_problem(closed) is None
    assert strict_problem(nested) == (
        "In context=('properties', 'a', 'items'), 'additionalProperties' is required to be supplied and to be false."
    )
    assert (
        strict_problem({"type": "array"})
        == "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."
    )


def test_response_store_keeps_a_bounded_window() -> None:
    store = ResponseStore(capacity=3, budget=12)
    for i in range(5):
        store.put(StoredResponse(f"resp_{i}", "abcd", 1, "e", frozenset()))
    assert [store.get(f"resp_{i}") is not None for i in range(5)] == [False, False, False, True, True]  # 10 chars
    store.put(StoredResponse("resp_big", "x" * 20, 1, "", frozenset()))  # larger than the budget alone
    assert len(store) == 0


# --- fuzzing the parameters ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=()), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null"]) | JSON_VALUES,
        "enum": st.lists(JSON_VALUES, max_size=3) | JSON_VALUES,
        "minimum": st.integers() | st.floats(allow_nan=False, allow_infinity=False) | JSON_VALUES,
        "exclusiveMaximum": st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
        "multipleOf": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        "minLength": st.integers(-5, 10**9),
        "maxItems": st.integers(-5, 10),
        "minItems": st.integers(-5, 10**9),
        "pattern": st.sampled_from([r"^\d+$", "(", "a{99999}", r"(?<=x)y"]) | TEXT,
        "format": st.sampled_from(["email", "uuid", "date-time"]) | TEXT,
        "$ref": st.sampled_from(["#", "#/$defs/a", "#/nope", "other.json#"]) | JSON_VALUES,
    },
)
RAW_SCHEMAS = st.recursive(
    KEYWORDS,
    lambda children: st.builds(
        lambda base, extra: {**base, **extra},
        KEYWORDS,
        st.fixed_dictionaries(
            {},
            optional={
                "properties": st.dictionaries(TEXT, children, max_size=3) | JSON_VALUES,
                "items": children | st.booleans(),
                "anyOf": st.lists(children, max_size=3),
                "allOf": st.lists(children, max_size=2) | JSON_VALUES,
                "required": st.lists(TEXT, max_size=3) | JSON_VALUES,
                "additionalProperties": st.booleans() | children,
                "$defs": st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=2),
            },
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, database=None)
@given(schema=RAW_SCHEMAS | JSON_VALUES, seed=st.integers(0, 10))
def test_any_schema_a_client_sends_is_walked_without_error(schema: Any, seed: int) -> None:
    """Schemas arrive from clients: whatever they hold, the walks end and the instance is plain JSON."""
    json.dumps(make_instance(schema, random.Random(seed)), allow_nan=False)
    strict_problem(schema)


def test_a_schema_that_multiplies_through_its_own_root_is_built_in_bounded_time() -> None:
    """Arrays of at least MAX_ITEMS items, each the root again: MAX_ITEMS ** MAX_DEPTH values if
    followed to the end. A client could send it; the instance stops at MAX_VALUES."""
    schema = {"type": "array", "minItems": 10**9, "items": {"$ref": "#"}}
    started = time.perf_counter()
    instance = make_instance(schema, random.Random(0))
    assert time.perf_counter() - started < 5
    assert isinstance(instance, list) and json.dumps(instance, allow_nan=False)


FUNCTION_NAMES = st.sampled_from(["get_weather", "get_time"]) | TEXT
FUNCTION = st.fixed_dictionaries(
    {"name": FUNCTION_NAMES},
    optional={"parameters": RAW_SCHEMAS | JSON_VALUES, "strict": st.booleans() | JSON_VALUES, "description": TEXT},
)
CHAT_TOOLS = st.lists(st.builds(lambda f: {"type": "function", "function": f}, FUNCTION), max_size=3)
RESPONSES_TOOLS = st.lists(st.builds(lambda f: {"type": "function", **f}, FUNCTION), max_size=3) | st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["web_search", "custom", "nope"])}), max_size=1
)
CHAT_CHOICES = st.sampled_from(["auto", "none", "required", "sometimes"]) | st.builds(
    lambda n: {"type": "function", "function": {"name": n}}, FUNCTION_NAMES
)
RESPONSES_CHOICES = st.sampled_from(["auto", "none", "required"]) | st.builds(
    lambda n: {"type": "function", "name": n}, FUNCTION_NAMES
)
SCHEMA_FORMAT = st.fixed_dictionaries(
    {"name": st.sampled_from(["person", "x-1"]) | TEXT},
    optional={"schema": RAW_SCHEMAS | JSON_VALUES, "strict": st.booleans()},
)
CHAT_FORMATS = st.sampled_from([{"type": "text"}, {"type": "json_object"}, {"type": "xml"}]) | st.builds(
    lambda spec: {"type": "json_schema", "json_schema": spec}, SCHEMA_FORMAT
)
RESPONSES_FORMATS = st.sampled_from([{"type": "text"}, {"type": "json_object"}]) | st.builds(
    lambda spec: {"type": "json_schema", **spec}, SCHEMA_FORMAT
)
USER = {"role": "user", "content": "Answer in JSON, please."}
CHAT_MESSAGES = st.sampled_from(
    [
        [USER],
        [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        [USER, {"role": "tool", "tool_call_id": "c1", "content": "orphan"}],
        [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}, USER],
    ]
)
RESPONSES_INPUT = TEXT | st.sampled_from(
    [
        [USER],
        [
            USER,
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        [{"type": "function_call_output", "call_id": "nope", "output": "x"}],
        [{"type": "reasoning", "id": "rs_1", "summary": []}, USER],
        [{"type": "image_generation_call", "id": "x"}],
    ]
)
MODELS = st.sampled_from([MODEL, "gpt-5-mini", "o4-mini", "my-fine-tune"])
RICH_CHAT = st.fixed_dictionaries(
    {"model": MODELS, "messages": CHAT_MESSAGES},
    optional={
        "tools": CHAT_TOOLS,
        "tool_choice": CHAT_CHOICES,
        "parallel_tool_calls": st.booleans(),
        "response_format": CHAT_FORMATS,
        "n": st.integers(-1, 4) | st.just(129),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(-1, 21),
        "stop": TEXT | st.lists(TEXT, max_size=5),
        "max_completion_tokens": st.integers(0, 40),
        "max_tokens": st.integers(0, 40),
        "reasoning_effort": st.sampled_from([*EFFORTS, "extreme"]),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
        "metadata": st.dictionaries(TEXT, TEXT | JSON_VALUES, max_size=3),
        "temperature": st.floats(0, 2.5),
        "seed": st.integers() | JSON_VALUES,
        "service_tier": st.sampled_from(["auto", "default", "flex", "priority", "turbo"]),
        "logit_bias": st.dictionaries(TEXT, st.integers(-120, 120), max_size=2),
    },
)
RICH_RESPONSES = st.fixed_dictionaries(
    {"model": MODELS, "input": RESPONSES_INPUT},
    optional={
        "instructions": TEXT,
        "tools": RESPONSES_TOOLS,
        "tool_choice": RESPONSES_CHOICES,
        "parallel_tool_calls": st.booleans(),
        "max_tool_calls": st.integers(-1, 3),
        "text": st.fixed_dictionaries(
            {}, optional={"format": RESPONSES_FORMATS, "verbosity": st.sampled_from(["low", "high", "loud"])}
        ),
        "reasoning": st.fixed_dictionaries(
            {},
            optional={
                "effort": st.sampled_from([*EFFORTS, "extreme"]),
                "summary": st.sampled_from(["auto", "concise", "none"]),
            },
        ),
        "include": st.lists(st.sampled_from([*INCLUDABLE, "bogus"]), max_size=2),
        "top_logprobs": st.integers(-1, 21),
        "max_output_tokens": st.integers(10, 60),
        "stream": st.booleans(),
        "store": st.booleans(),
        "metadata": st.dictionaries(TEXT, TEXT, max_size=2),
        "previous_response_id": st.sampled_from(["resp_unknown", "STORED"]),
        "truncation": st.sampled_from(["auto", "disabled", "maybe"]),
        "background": st.booleans(),
    },
)
FIELDS = sorted(set(RICH_CHAT.wrapped_strategy.optional) | set(RICH_RESPONSES.wrapped_strategy.optional))  # type: ignore[attr-defined]


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A body with up to two fields replaced by arbitrary JSON and up to two removed."""
    body = dict(draw(bodies))
    body.update(draw(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=2)))
    for name in draw(st.lists(st.sampled_from([*FIELDS, "model", "messages", "input"]), max_size=2)):
        body.pop(name, None)
    return body


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[RunningUpstream, httpx.Client, str]]:
    """Any model name served, no delays; and one stored response to continue from."""
    with (
        upstream_in_thread(models=[], latency=0, ttft=0, chunk_delay=0, reply_tokens=8) as up,
        httpx.Client(base_url=up.base_url, headers=AUTH, timeout=10) as client,
    ):
        stored = client.post("/responses", json={"model": MODEL, "input": "hi"}).json()["id"]
        yield up, client, stored


def check_answer(path: str, response: httpx.Response) -> None:
    """An OpenAI-shaped 400, or a 200 whose payload is strictly valid for the SDK's types."""
    assert response.status_code in (200, 400), (path, response.status_code, response.text)
    if response.status_code == 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
        return
    if not response.headers["content-type"].startswith("text/event-stream"):
        strictly(ChatCompletion if path == "/chat/completions" else Response, response.content)
        return
    events = sse_events(iter(response.text.splitlines()))
    if path == "/chat/completions":
        assert events[-1] == (None, "[DONE]")
        for _, data in events[:-1]:
            strictly(ChatCompletionChunk, data)
    else:
        for name, data in events:
            strict_event(name, data)
        assert events[-1][0] in ("response.completed", "response.incomplete")


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=RICH_CHAT | mutated(RICH_CHAT))
def test_any_chat_parameters_get_a_strictly_valid_200_or_an_openai_400(
    fuzzed: tuple[RunningUpstream, httpx.Client, str], body: dict[str, Any]
) -> None:
    _, client, _ = fuzzed
    check_answer("/chat/completions", client.post("/chat/completions", content=json.dumps(body)))


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=RICH_RESPONSES | mutated(RICH_RESPONSES))
def test_any_responses_parameters_get_a_strictly_valid_200_or_an_openai_400(
    fuzzed: tuple[RunningUpstream, httpx.Client, str], body: dict[str, Any]
) -> None:
    _, client, stored = fuzzed
    if body.get("previous_response_id") == "STORED":
        body["previous_response_id"] = stored
    check_answer("/responses", client.post("/responses", content=json.dumps(body)))


def test_the_fuzzing_reached_both_outcomes(fuzzed: tuple[RunningUpstream, httpx.Client, str]) -> None:
    up, client, _ = fuzzed
    statuses = {e.status for e in up.journal.entries()}
    assert statuses <= {200, 400}
    assert client.post("/chat/completions", json={"model": "m", "messages": [USER], "n": 2}).status_code == 200


def test_a_bug_still_answers_like_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last-resort net: an unexpected exception is an OpenAI-shaped 500, not a plain-text traceback page."""
    import support.upstream.app

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(support.upstream.app, "make_reply", broken)
    with upstream_in_thread(latency=0) as up, httpx.Client(headers=AUTH, timeout=5) as client:
        response = client.post(up.base_url + "/chat/completions", json={"model": MODEL, "messages": [USER]})
        [entry] = up.journal.entries()
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert (entry.status, entry.outcome) == (500, "error")


# --- what a stream bills ----------------------------------------------------------------------------------

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n": 3},
        {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]},
        {"model": "gpt-5-mini", "reasoning_effort": "high"},
        {"model": "gpt-5-mini", "max_completion_tokens": 10},
        {"logprobs": True, "top_logprobs": 2, "max_completion_tokens": 3},
    ],
    ids=["plain", "n3", "tools", "reasoning", "reasoning-cut", "logprobs-cut"],
)
def test_chat_stream_journal_counts_the_billed_tokens(params: dict[str, Any]) -> None:
    with (
        upstream_in_thread(latency=0, ttft=0, chunk_delay=0, reply_tokens=9) as up,
        OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
    ):
        request = {"model": MODEL, "messages": [USER], **params}
        plain = client.chat.completions.create(**request)
        chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
        plain_entry, stream_entry = up.journal.entries()
    assert plain.usage is not None and chunks[-1].usage == plain.usage
    assert plain_entry.completion_tokens == stream_entry.completion_tokens == plain.usage.completion_tokens
    assert stream_entry.chunks_sent == len(chunks)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER}]},
        {"model": "gpt-5-mini", "reasoning": {"effort": "low", "summary": "detailed"}},
        {"model": "gpt-5-mini", "max_output_tokens": 20},
    ],
    ids=["plain", "tools", "reasoning", "reasoning-cut"],
)
def test_responses_stream_journal_counts_the_billed_tokens(params: dict[str, Any]) -> None:
    with (
        upstream_in_thread(latency=0, ttft=0, chunk_delay=0, reply_tokens=9) as up,
        OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
    ):
        request = {"model": MODEL, "input": "hi", **params}
        plain = client.responses.create(**request)
        events = list(client.responses.create(**request, stream=True))
        plain_entry, stream_entry = up.journal.entries()
    assert plain.usage is not None and events[-1].response.usage == plain.usage
    assert plain_entry.completion_tokens == stream_entry.completion_tokens == plain.usage.output_tokens
    assert stream_entry.chunks_sent == len(events)
