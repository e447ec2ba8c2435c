"""Validate request bodies the way the OpenAI API does, with its error wording.

Only what the runbook's calls use is checked strictly; unknown fields are accepted
(OpenAI-compatible clients send many optional ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import UpstreamError, invalid_type, json_type, missing

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
RESPONSES_MIN_OUTPUT_TOKENS = 16
JSON_PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


@dataclass(frozen=True)
class GenerationRequest:
    """What a valid chat or responses request asks the model for."""

    model: str
    prompt_text: str  # all input text, for the token count and the seeded reply
    prompt_items: int  # messages or input items, for the token count
    max_tokens: int | None
    stream: bool
    include_usage: bool = False


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise UpstreamError(400, JSON_PARSE_MESSAGE) from None
    if not isinstance(body, dict):
        raise UpstreamError(400, f"Invalid request body: expected a JSON object, but got {json_type(body)}.")
    return body


def parse_chat_request(body: dict[str, Any]) -> GenerationRequest:
    """Validate a ``POST /v1/chat/completions`` body."""
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise UpstreamError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    texts = [_chat_message_text(message, f"messages[{i}]") for i, message in enumerate(messages)]
    max_tokens = _max_tokens(body, ("max_completion_tokens", "max_tokens"), minimum=1)
    _number_in(body, "temperature", 0, 2)
    _number_in(body, "top_p", 0, 1)
    if body.get("n", 1) != 1:
        raise UpstreamError(400, "The bundled upstream serves n=1 only.", param="n", code="unsupported_value")
    stream = _bool(body, "stream")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise UpstreamError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
        include_usage = _bool(options, "include_usage", param="stream_options.include_usage")
    return GenerationRequest(model, "\n".join(texts), len(texts), max_tokens, stream, include_usage)


def parse_responses_request(body: dict[str, Any]) -> GenerationRequest:
    """Validate a ``POST /v1/responses`` body."""
    model = _model(body)
    if "input" not in body:
        raise missing("input")
    texts = _responses_input_texts(body["input"])
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid_type("instructions", "a string", instructions)
        texts.insert(0, instructions)
    max_tokens = _max_tokens(body, ("max_output_tokens",), minimum=RESPONSES_MIN_OUTPUT_TOKENS)
    _number_in(body, "temperature", 0, 2)
    return GenerationRequest(model, "\n".join(texts), len(texts), max_tokens, _bool(body, "stream"))


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise UpstreamError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    return model


def _chat_message_text(message: Any, param: str) -> str:
    if not isinstance(message, dict):
        raise invalid_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing(f"{param}.role")
    if role not in CHAT_ROLES:
        supported = ", ".join(f"'{r}'" for r in CHAT_ROLES[:-1]) + f", and '{CHAT_ROLES[-1]}'"
        raise UpstreamError(
            400,
            f"Invalid value: {json.dumps(role)}. Supported values are: {supported}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    content = message.get("content")
    if content is None:
        if role == "assistant":  # an assistant turn may carry only tool calls
            return ""
        raise missing(f"{param}.content")
    return _content_text(content, f"{param}.content", part_type="text")


def _responses_input_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid_type("input", "a string or an array of input items", value)
    if not value:
        raise UpstreamError(400, "Invalid 'input': empty array.", param="input", code="empty_array")
    texts = []
    for i, item in enumerate(value):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(param, "an object", item)
        if item.get("role") not in ("user", "assistant", "system", "developer"):
            raise UpstreamError(
                400,
                f"Invalid value for '{param}.role': expected 'user', 'assistant', 'system' or 'developer'.",
                param=f"{param}.role",
                code="invalid_value",
            )
        if "content" not in item:
            raise missing(f"{param}.content")
        texts.append(_content_text(item["content"], f"{param}.content", part_type="input_text"))
    return texts


def _content_text(content: Any, param: str, *, part_type: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(param, "a string or an array of content parts", content)
    texts = []
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(part_param, "an object", part)
        text = part.get("text")
        if part.get("type") not in (part_type, "text", "output_text"):
            raise UpstreamError(
                400,
                f"Invalid value for '{part_param}.type': the bundled upstream accepts text parts only.",
                param=f"{part_param}.type",
                code="invalid_value",
            )
        if not isinstance(text, str):
            raise invalid_type(f"{part_param}.text", "a string", text)
        texts.append(text)
    return "\n".join(texts)


def _max_tokens(body: dict[str, Any], names: tuple[str, ...], *, minimum: int) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(name, "an integer", value)
        if value < minimum:
            raise UpstreamError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
                f"but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None


def _number_in(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(name, "a number", value)
    if not low <= value <= high:
        raise UpstreamError(
            400,
            f"Invalid '{name}': expected a value between {low} and {high}, but got {value} instead.",
            param=name,
            code="invalid_value",
        )


def _bool(body: dict[str, Any], name: str, *, param: str | None = None) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_type(param or name, "a boolean", value)
    return value
