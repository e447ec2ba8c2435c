"""Validate request bodies the way the OpenAI API does, with its error wording.

Every parameter the SDK sends for ``chat.completions.create`` and ``responses.create``
is checked for type and range; the ones that shape a reply (tools and tool_choice,
response formats, n, logprobs, stop, token limits, reasoning, previous_response_id,
instructions...) are turned into a `GenerationRequest`. Parameters that only steer a
real model's sampling or bookkeeping (temperature, top_p, penalties, seed, user,
metadata, store, service_tier, prediction...) are validated and, where the real API
echoes them, echoed; they do not change the seeded text. Unknown fields are accepted,
as OpenAI-compatible clients send many optional ones. Features nothing here could act
out (audio, hosted tools, background responses, conversations, stored prompts) are
refused with a plain "the bundled upstream does not serve ..." message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import checks
from .errors import (
    UpstreamError,
    invalid_type,
    json_type,
    missing,
    not_served,
    only_with,
    out_of_range,
    unsupported_default_only,
    unsupported_parameter,
)
from .formats import TEXT, OutputFormat, chat_format, require_json_word, responses_format
from .messages import Conversation, chat_conversation, responses_conversation
from .models import EFFORTS, effective_effort, family
from .stored import StoredResponse
from .tools import Tool, chat_tool_choice, chat_tools, planned_calls, responses_tool_choice, responses_tools

RESPONSES_MIN_OUTPUT_TOKENS = 16
MAX_CHOICES = 128
MAX_TOP_LOGPROBS = 20
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
SUMMARIES = ("auto", "concise", "detailed")
INCLUDABLE = (
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "message.input_image.image_url",
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
    "web_search_call.action.sources",
    "web_search_call.results",
)
JSON_PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)

Lookup = Callable[[str], StoredResponse | None]


@dataclass(frozen=True)
class GenerationRequest:
    """What a valid chat or responses request asks the model for."""

    model: str
    prompt_text: str  # all input text, for the token count and the seeded reply
    prompt_items: int  # messages or input items, for the token count
    max_tokens: int | None  # the limit on output tokens, reasoning included
    stream: bool
    include_usage: bool = False
    n: int = 1
    tools: tuple[Tool, ...] = ()
    calls: tuple[Tool, ...] = ()  # the functions the reply calls (see tools.planned_calls)
    output_format: OutputFormat = TEXT
    logprobs: bool = False
    top_logprobs: int = 0
    stop: tuple[str, ...] = ()
    reasoning_effort: str | None = None  # None: the reply does not reason
    reasoning_summary: bool = False
    encrypted_reasoning: bool = False
    service_tier: str = "default"
    store: bool = True
    echo: Mapping[str, Any] = field(default_factory=dict)  # what a response object repeats of the request


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object (NaN and Infinity are not JSON)."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise UpstreamError(400, JSON_PARSE_MESSAGE) from None
    if not isinstance(body, dict):
        raise UpstreamError(400, f"Invalid request body: expected a JSON object, but got {json_type(body)}.")
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- chat completions ---------------------------------------------------------------------------


def parse_chat_request(body: dict[str, Any]) -> GenerationRequest:
    """Validate a ``POST /v1/chat/completions`` body."""
    model = _model(body)
    conversation = chat_conversation(body.get("messages"))
    prompt_text = "\n".join(conversation.texts)
    tools = chat_tools(body)
    choice = chat_tool_choice(body, tools)
    parallel = checks.boolean(body, "parallel_tool_calls", default=True, nullable=False)
    if "parallel_tool_calls" in body and not tools:
        raise UpstreamError(
            400,
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
            "specified.",
            param="parallel_tool_calls",
        )
    output_format = chat_format(body)
    require_json_word(output_format, prompt_text, api="chat")
    max_tokens = _max_tokens(body, ("max_completion_tokens", "max_tokens"), minimum=1)
    _sampling(body)
    n = checks.integer(body, "n", minimum=1, maximum=MAX_CHOICES) or 1
    logprobs, top_logprobs = _chat_logprobs(body)
    stop = checks.stop_sequences(body)
    stream = checks.boolean(body, "stream")
    include_usage = _stream_options(body, stream)
    effort = checks.choice(body, "reasoning_effort", EFFORTS)
    _model_rules(model, body, effort_param="reasoning_effort", effort=effort, chat=True)
    tier = _bookkeeping(body)
    _not_served_chat(body)
    return GenerationRequest(
        model,
        prompt_text,
        len(conversation.texts),
        max_tokens,
        stream,
        include_usage,
        n=n,
        tools=tools,
        calls=planned_calls(tools, choice, parallel=parallel, after_tool_result=conversation.ends_with_tool_result),
        output_format=output_format,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        stop=stop,
        reasoning_effort=effective_effort(model, effort),
        service_tier=tier,
        store=checks.boolean(body, "store"),
    )


def _chat_logprobs(body: checks.Body) -> tuple[bool, int]:
    logprobs = checks.boolean(body, "logprobs")
    top = checks.integer(body, "top_logprobs", minimum=0, maximum=MAX_TOP_LOGPROBS)
    if top is not None and not logprobs:
        raise only_with("top_logprobs", "'logprobs' is enabled")
    return logprobs, top or 0


def _not_served_chat(body: checks.Body) -> None:
    modalities = checks.string_array(body, "modalities", ("text", "audio"))
    if "audio" in modalities or body.get("audio") is not None:
        raise not_served("modalities" if "audio" in modalities else "audio", "audio output")
    if body.get("function_call") is not None or body.get("functions") is not None:
        raise not_served("functions", "the deprecated 'functions' and 'function_call' (use 'tools')")


# --- responses ------------------------------------------------------------------------------------


def parse_responses_request(body: dict[str, Any], lookup: Lookup = lambda _id: None) -> GenerationRequest:
    """Validate a ``POST /v1/responses`` body; `lookup` finds stored responses by id."""
    model = _model(body)
    if "input" not in body:
        raise missing("input")
    previous = _previous_response(body, lookup)
    conversation = responses_conversation(body["input"], previous.call_ids if previous else ())
    instructions = checks.string(body, "instructions")
    texts = _responses_texts(conversation, instructions, previous)
    prompt_text = "\n".join(texts)
    output_format, verbosity = responses_format(body)
    require_json_word(output_format, prompt_text, api="responses")
    tools = responses_tools(body)
    choice = responses_tool_choice(body, tools)
    parallel = checks.boolean(body, "parallel_tool_calls", default=True, nullable=False)
    most_calls = checks.integer(body, "max_tool_calls", minimum=0)
    max_tokens = _max_tokens(body, ("max_output_tokens",), minimum=RESPONSES_MIN_OUTPUT_TOKENS)
    temperature, top_p = _sampling(body)
    reasoning = checks.obj(body, "reasoning") or {}
    effort = checks.choice(reasoning, "effort", EFFORTS, param="reasoning.effort")
    summary = checks.choice(reasoning, "summary", SUMMARIES, param="reasoning.summary") or checks.choice(
        reasoning, "generate_summary", SUMMARIES, param="reasoning.generate_summary"
    )
    include = checks.string_array(body, "include", INCLUDABLE)
    top_logprobs = checks.integer(body, "top_logprobs", minimum=0, maximum=MAX_TOP_LOGPROBS)
    stream = checks.boolean(body, "stream")
    _stream_options(body, stream)
    _model_rules(model, body, effort_param="reasoning.effort", effort=effort, chat=False)
    tier = _bookkeeping(body)
    _not_served_responses(body)
    store = checks.boolean(body, "store", default=True)
    effective = effective_effort(model, effort)
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_tokens,
        "max_tool_calls": most_calls,
        "metadata": checks.metadata(body) or {},
        "parallel_tool_calls": parallel,
        "previous_response_id": previous.id if previous else None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": effective, "summary": summary if effective else None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": tier,
        "store": store,
        "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": output_format.echo(), "verbosity": verbosity},
        "tool_choice": choice.echo,
        "tools": [tool.echo() for tool in tools],
        "top_logprobs": top_logprobs or 0,
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": checks.choice(body, "truncation", ("auto", "disabled")) or "disabled",
        "user": body.get("user"),
    }
    calls = planned_calls(
        tools, choice, parallel=parallel, after_tool_result=conversation.ends_with_tool_result, most=most_calls
    )
    return GenerationRequest(
        model,
        prompt_text,
        len(texts) + (previous.prompt_items if previous else 0),
        max_tokens,
        stream,
        tools=tools,
        calls=calls,
        output_format=output_format,
        logprobs="message.output_text.logprobs" in include,
        top_logprobs=top_logprobs or 0,
        reasoning_effort=effective,
        reasoning_summary=summary is not None and effective is not None,
        encrypted_reasoning="reasoning.encrypted_content" in include,
        service_tier=tier,
        store=store,
        echo=echo,
    )


def _previous_response(body: checks.Body, lookup: Lookup) -> StoredResponse | None:
    response_id = checks.string(body, "previous_response_id")
    if response_id is None:
        return None
    found = lookup(response_id)
    if found is None:
        raise UpstreamError(
            400,
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return found


def _responses_texts(
    conversation: Conversation, instructions: str | None, previous: StoredResponse | None
) -> list[str]:
    """What the model reads: the previous exchange (billed again as input), instructions, the input."""
    texts = [previous.prompt_text, previous.output_text] if previous else []
    if instructions is not None:
        texts.append(instructions)
    return texts + list(conversation.texts)


def _not_served_responses(body: checks.Body) -> None:
    if checks.boolean(body, "background"):
        raise not_served("background", "background responses")
    for name, what in (("conversation", "conversations"), ("prompt", "stored prompts")):
        if body.get(name) is not None:
            raise not_served(name, what)


# --- shared -------------------------------------------------------------------------------------------


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise UpstreamError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    return model


def _max_tokens(body: checks.Body, names: tuple[str, ...], *, minimum: int) -> int | None:
    """The first of `names` that is set (``max_completion_tokens`` wins over ``max_tokens``)."""
    for name in names:
        value = checks.integer(body, name, minimum=minimum)
        if value is not None:
            return value
    return None


def _sampling(body: checks.Body) -> tuple[float | None, float | None]:
    """Sampling parameters: checked, and they do not change the seeded text. Returns temperature, top_p."""
    temperature = checks.number(body, "temperature", low=0, high=2)
    top_p = checks.number(body, "top_p", low=0, high=1)
    for name in ("frequency_penalty", "presence_penalty"):
        checks.number(body, name, low=-2, high=2)
    checks.integer(body, "seed")
    for token, bias in (checks.obj(body, "logit_bias") or {}).items():
        if isinstance(bias, bool) or not isinstance(bias, (int, float)):
            raise invalid_type(f"logit_bias.{token}", "a number", bias)
        if not -100 <= bias <= 100:
            raise out_of_range(f"logit_bias.{token}", bias, minimum=-100, maximum=100, kind="decimal")
    return temperature, top_p


def _bookkeeping(body: checks.Body) -> str:
    """Fields for the caller's own records: checked; returns the service tier a reply reports."""
    for name in ("user", "safety_identifier", "prompt_cache_key"):
        checks.string(body, name)
    checks.metadata(body)
    checks.boolean(body, "store", default=True)
    checks.choice(body, "prompt_cache_retention", ("in_memory", "24h"))
    checks.choice(body, "verbosity", ("low", "medium", "high"))
    tier = checks.choice(body, "service_tier", SERVICE_TIERS) or "auto"
    return "default" if tier == "auto" else tier


def _stream_options(body: checks.Body, stream: bool) -> bool:
    """``stream_options`` (only with ``stream``); returns ``include_usage``."""
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise only_with("stream_options", "'stream' is enabled", code="invalid_value")
    if not isinstance(options, dict):
        raise invalid_type("stream_options", "an object", options)
    checks.boolean(options, "include_obfuscation", param="stream_options.include_obfuscation")
    return checks.boolean(options, "include_usage", param="stream_options.include_usage")


def _model_rules(model: str, body: checks.Body, *, effort_param: str, effort: str | None, chat: bool) -> None:
    """What a model family refuses (see `models`), with the real API's messages."""
    kind = family(model)
    if kind == "classic" and effort is not None:
        raise unsupported_parameter(effort_param)
    if kind != "reasoning":
        return
    if chat and body.get("max_tokens") is not None:
        raise unsupported_parameter("max_tokens")
    if chat and body.get("stop") is not None:
        raise unsupported_parameter("stop")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and value != 1:
            raise unsupported_default_only(name, value) if chat else unsupported_parameter(name)
