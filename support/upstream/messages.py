"""The conversation a request carries: chat ``messages`` or responses ``input``.

Besides the shape of each message, the real API checks that tool results answer tool
calls: a ``tool`` message must follow an assistant message with ``tool_calls`` (and
name one of its ids), every such call must get its ``tool`` message, and a Responses
``function_call_output`` must answer a ``function_call`` of the input or of the
previous response. The same checks, with the same words, are made here, since agent
loops get them wrong in exactly these ways.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import checks
from .errors import UpstreamError, empty_array, invalid_type, invalid_value, missing, not_served

CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
INPUT_ROLES = ("user", "assistant", "system", "developer")
INPUT_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")


@dataclass(frozen=True)
class Conversation:
    """What the model reads: one text per message or item, and how the conversation ends."""

    texts: tuple[str, ...]
    ends_with_tool_result: bool = False
    call_ids: frozenset[str] = frozenset()  # function calls made in it (Responses)


# --- chat messages -------------------------------------------------------------------------------


def chat_conversation(messages: Any) -> Conversation:
    """Validate ``messages`` of a chat request."""
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise empty_array("messages")
    texts = [_chat_message_text(message, f"messages[{i}]") for i, message in enumerate(messages)]
    _check_tool_turns(messages)
    return Conversation(tuple(texts), ends_with_tool_result=messages[-1].get("role") in ("tool", "function"))


def _chat_message_text(message: Any, param: str) -> str:
    if not isinstance(message, dict):
        raise invalid_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing(f"{param}.role")
    if role not in CHAT_ROLES:
        raise invalid_value(f"{param}.role", role, CHAT_ROLES)
    calls = _tool_calls(message, param) if role == "assistant" else []
    if role == "tool":
        checks.required_string(message, "tool_call_id", param=f"{param}.tool_call_id")
    if role == "function":
        checks.required_string(message, "name", param=f"{param}.name")
    content = message.get("content")
    if content is None:
        if role == "assistant":  # an assistant turn may carry only tool calls
            return "\n".join(calls)
        raise missing(f"{param}.content")
    return "\n".join([content_text(content, f"{param}.content", part_type="text"), *calls])


def _tool_calls(message: dict[str, Any], param: str) -> list[str]:
    """The assistant's ``tool_calls``, checked, as ``name(arguments)`` texts."""
    texts = []
    for j, call in enumerate(checks.array(message, "tool_calls", param=f"{param}.tool_calls") or []):
        call_param = f"{param}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise invalid_type(call_param, "an object", call)
        checks.required_string(call, "id", param=f"{call_param}.id")
        kind = checks.choice(call, "type", ("function", "custom"), param=f"{call_param}.type")
        if kind is None:
            raise missing(f"{call_param}.type")
        function = checks.obj(call, kind, param=f"{call_param}.{kind}")
        if function is None:
            raise missing(f"{call_param}.{kind}")
        name = checks.required_string(function, "name", param=f"{call_param}.{kind}.name")
        field = "arguments" if kind == "function" else "input"
        texts.append(f"{name}({checks.required_string(function, field, param=f'{call_param}.{kind}.{field}')})")
    return texts


def _check_tool_turns(messages: list[dict[str, Any]]) -> None:
    """Tool messages answer the tool calls of the assistant message right before them, all of them."""
    pending: dict[str, None] = {}  # ids still unanswered, in order
    caller: int | None = None  # index of the assistant message that made them
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            _answer(pending, caller, message["tool_call_id"], i)
            continue
        _require_answered(pending, caller)
        pending, caller = {}, None
        if role == "assistant" and message.get("tool_calls"):
            pending, caller = {call["id"]: None for call in message["tool_calls"]}, i
    _require_answered(pending, caller)


def _answer(pending: dict[str, None], caller: int | None, call_id: str, index: int) -> None:
    if caller is None:
        raise UpstreamError(
            400,
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
            "'tool_calls'.",
            param=f"messages.[{index}].role",
        )
    if call_id not in pending:
        raise UpstreamError(
            400,
            f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
            param=f"messages.[{index}].tool_call_id",
        )
    del pending[call_id]


def _require_answered(pending: dict[str, None], caller: int | None) -> None:
    if pending:
        raise UpstreamError(
            400,
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            param=f"messages.[{caller}].role",
        )


# --- responses input --------------------------------------------------------------------------------


def responses_conversation(value: Any, earlier_calls: Iterable[str] = ()) -> Conversation:
    """Validate ``input`` of a responses request; `earlier_calls` are the previous response's call ids."""
    if isinstance(value, str):
        return Conversation((value,))
    if not isinstance(value, list):
        raise invalid_type("input", "a string or an array of input items", value)
    if not value:
        raise UpstreamError(400, "Invalid 'input': empty array.", param="input", code="empty_array")
    calls = set(earlier_calls)
    texts = []
    for i, item in enumerate(value):
        text = _input_item_text(item, f"input[{i}]", calls)
        if text is not None:
            texts.append(text)
    ends_with_result = isinstance(value[-1], dict) and value[-1].get("type") == "function_call_output"
    return Conversation(tuple(texts), ends_with_tool_result=ends_with_result, call_ids=frozenset(calls))


def _input_item_text(item: Any, param: str, calls: set[str]) -> str | None:
    """The text of one input item (None for items without text); records the call ids it makes."""
    if not isinstance(item, dict):
        raise invalid_type(param, "an object", item)
    kind = item.get("type")
    if kind is None or kind == "message":
        return _input_message_text(item, param)
    if kind == "function_call":
        call_id = checks.required_string(item, "call_id", param=f"{param}.call_id")
        name = checks.required_string(item, "name", param=f"{param}.name")
        arguments = checks.required_string(item, "arguments", param=f"{param}.arguments")
        calls.add(call_id)
        return f"{name}({arguments})"
    if kind == "function_call_output":
        return _function_output_text(item, param, calls)
    if kind in ("reasoning", "item_reference"):
        checks.string(item, "id", param=f"{param}.id")
        return None
    if not isinstance(kind, str):
        raise invalid_type(f"{param}.type", "a string", kind)
    raise not_served(f"{param}.type", f"input items of type '{kind}' (only {', '.join(INPUT_ITEM_TYPES)})")


def _input_message_text(item: dict[str, Any], param: str) -> str:
    if item.get("role") not in INPUT_ROLES:
        raise UpstreamError(
            400,
            f"Invalid value for '{param}.role': expected 'user', 'assistant', 'system' or 'developer'.",
            param=f"{param}.role",
            code="invalid_value",
        )
    if "content" not in item:
        raise missing(f"{param}.content")
    return content_text(item["content"], f"{param}.content", part_type="input_text")


def _function_output_text(item: dict[str, Any], param: str, calls: set[str]) -> str:
    call_id = checks.required_string(item, "call_id", param=f"{param}.call_id")
    if "output" not in item:
        raise missing(f"{param}.output")
    output = content_text(item["output"], f"{param}.output", part_type="input_text")
    if call_id not in calls:
        raise UpstreamError(400, f"No tool call found for function call output with call_id {call_id}.", param="input")
    return output


# --- content ------------------------------------------------------------------------------------------


def content_text(content: Any, param: str, *, part_type: str) -> str:
    """A message's content: a string, or text parts (the only parts served)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(param, "a string or an array of content parts", content)
    texts = []
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(part_param, "an object", part)
        if part.get("type") not in (part_type, "text", "output_text", "refusal"):
            raise UpstreamError(
                400,
                f"Invalid value for '{part_param}.type': the bundled upstream accepts text parts only.",
                param=f"{part_param}.type",
                code="invalid_value",
            )
        field = "refusal" if part.get("type") == "refusal" else "text"
        text = part.get(field)
        if not isinstance(text, str):
            raise invalid_type(f"{part_param}.{field}", "a string", text)
        texts.append(text)
    return "\n".join(texts)
