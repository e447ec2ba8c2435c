"""A `Reply` as the Responses API sends it: a ``response`` object, or its stream of events.

The output holds, in order: a reasoning item (for a reasoning reply, with a summary when
``reasoning.summary`` asks for one and ``encrypted_content`` when ``include`` does),
then either the function calls or one message. A reply cut by ``max_output_tokens`` is
``incomplete`` (``incomplete_details.reason = max_output_tokens``) and its stream ends
with ``response.incomplete`` instead of ``response.completed``; when reasoning used up
the whole limit there is no message at all, as with the real service.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .chat_wire import StreamEvent
from .replies import Choice, Reply, TokenLogprob, ToolCall
from .requests import GenerationRequest
from .stored import StoredResponse

DEFAULT_ECHO: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "prompt_cache_key": None,
    "reasoning": {"effort": None, "summary": None},
    "safety_identifier": None,
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def response_id(reply: Reply) -> str:
    return f"resp_{reply.ids[:48]}"


def _message_id(reply: Reply) -> str:
    return f"msg_{reply.ids[16:64]}"


def _reasoning_id(reply: Reply) -> str:
    return f"rs_{reply.ids[8:56]}"


def status_of(choice: Choice) -> str:
    return "incomplete" if choice.finish_reason == "length" else "completed"


def response_object(reply: Reply, request: GenerationRequest, created: int, *, done: bool = True) -> dict[str, Any]:
    """The response object; `done=False` gives the in-progress one of a stream's first events."""
    choice = reply.first
    status = status_of(choice) if done else "in_progress"
    return {
        "id": response_id(reply),
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": request.model,
        "output": output_items(reply, request) if done else [],
        **DEFAULT_ECHO,
        **request.echo,
        "usage": usage(reply) if done else None,
    }


def output_items(reply: Reply, request: GenerationRequest) -> list[dict[str, Any]]:
    choice = reply.first
    items = [_reasoning_item(reply, request, done=True)] if choice.reasoning_tokens else []
    if request.calls:
        return items + [_call_item(call, done=True) for call in choice.tool_calls]
    if not choice.exhausted:
        items.append(_message_item(reply, request, done=True))
    return items


def usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def stored(reply: Reply, request: GenerationRequest) -> StoredResponse:
    """What a later request with ``previous_response_id`` needs of this one."""
    choice = reply.first
    said = [choice.text, *(f"{call.name}({call.arguments})" for call in choice.tool_calls)]
    return StoredResponse(
        response_id(reply),
        request.prompt_text,
        request.prompt_items,
        "\n".join(part for part in said if part),
        frozenset(call.call_id for call in choice.tool_calls),
    )


# --- items ------------------------------------------------------------------------------------------------


def _message_item(reply: Reply, request: GenerationRequest, *, done: bool) -> dict[str, Any]:
    choice = reply.first
    return {
        "id": _message_id(reply),
        "type": "message",
        "status": status_of(choice) if done else "in_progress",
        "role": "assistant",
        "content": [_text_part(choice.text, choice.logprobs, request)] if done else [],
    }


def _text_part(text: str, entries: tuple[TokenLogprob, ...] | None, request: GenerationRequest) -> dict[str, Any]:
    logprobs = [_logprob(entry) for entry in entries or ()] if request.logprobs else []
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}


def _logprob(entry: TokenLogprob) -> dict[str, Any]:
    return {
        "token": entry.token,
        "bytes": _bytes(entry.token),
        "logprob": entry.logprob,
        "top_logprobs": [{"token": t, "bytes": _bytes(t), "logprob": lp} for t, lp in entry.top],
    }


def _delta_logprob(entry: TokenLogprob) -> dict[str, Any]:
    """The lighter shape stream events use (no bytes)."""
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in entry.top],
    }


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", "surrogatepass"))


def _call_item(call: ToolCall, *, done: bool) -> dict[str, Any]:
    return {
        "id": call.item_id,
        "type": "function_call",
        "status": ("completed" if call.complete else "incomplete") if done else "in_progress",
        "arguments": call.arguments if done else "",
        "call_id": call.call_id,
        "name": call.name,
    }


def _reasoning_item(reply: Reply, request: GenerationRequest, *, done: bool) -> dict[str, Any]:
    summary = "".join(reply.first.summary)
    item: dict[str, Any] = {
        "id": _reasoning_id(reply),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if done and summary else [],
    }
    if done and request.encrypted_reasoning:
        digest = hashlib.sha256(f"{reply.ids}:reasoning".encode()).digest()
        item["encrypted_content"] = "gAAAAA" + base64.urlsafe_b64encode(digest * 4).decode()
    return item


# --- streams --------------------------------------------------------------------------------------------------


def response_events(reply: Reply, request: GenerationRequest, created: int) -> list[StreamEvent]:
    """The events of a streamed response, in order; each has ``type`` and ``sequence_number``."""
    choice = reply.first
    opening = response_object(reply, request, created, done=False)
    events = [
        StreamEvent("response.created", {"type": "response.created", "response": opening}),
        StreamEvent("response.in_progress", {"type": "response.in_progress", "response": opening}),
    ]
    index = 0
    if choice.reasoning_tokens:
        events += _reasoning_events(reply, request, index)
        index += 1
    if request.calls:
        for call in choice.tool_calls:
            events += _call_events(call, index)
            index += 1
    elif not choice.exhausted:
        events += _message_events(reply, request, index)
    final = response_object(reply, request, created)
    terminal = f"response.{final['status']}"
    events.append(StreamEvent(terminal, {"type": terminal, "response": final}))
    for number, event in enumerate(events):
        event.data["sequence_number"] = number
    return events


def _event(kind: str, tokens: int = 0, **fields: Any) -> StreamEvent:
    return StreamEvent(kind, {"type": kind, **fields}, tokens)


def _message_events(reply: Reply, request: GenerationRequest, index: int) -> list[StreamEvent]:
    choice, item_id = reply.first, _message_id(reply)
    at: dict[str, Any] = {"item_id": item_id, "output_index": index, "content_index": 0}
    entries = choice.logprobs or ()
    logprobs = [_delta_logprob(entry) for entry in entries] if request.logprobs else []
    events = [
        _event("response.output_item.added", output_index=index, item=_message_item(reply, request, done=False)),
        _event("response.content_part.added", **at, part=_text_part("", None, request)),
    ]
    for n, piece in enumerate(choice.pieces):
        events.append(_event("response.output_text.delta", 1, **at, delta=piece, logprobs=logprobs[n : n + 1]))
    final_part = _text_part(choice.text, choice.logprobs, request)
    events.append(_event("response.output_text.done", **at, text=choice.text, logprobs=logprobs))
    events.append(_event("response.content_part.done", **at, part=final_part))
    item = _message_item(reply, request, done=True)
    events.append(_event("response.output_item.done", output_index=index, item=item))
    return events


def _call_events(call: ToolCall, index: int) -> list[StreamEvent]:
    at: dict[str, Any] = {"item_id": call.item_id, "output_index": index}
    return [
        _event("response.output_item.added", output_index=index, item=_call_item(call, done=False)),
        *(_event("response.function_call_arguments.delta", 1, **at, delta=piece) for piece in call.pieces),
        _event("response.function_call_arguments.done", **at, arguments=call.arguments),
        _event("response.output_item.done", output_index=index, item=_call_item(call, done=True)),
    ]


def _reasoning_events(reply: Reply, request: GenerationRequest, index: int) -> list[StreamEvent]:
    choice = reply.first
    at: dict[str, Any] = {"item_id": _reasoning_id(reply), "output_index": index, "summary_index": 0}
    events = [
        _event("response.output_item.added", output_index=index, item=_reasoning_item(reply, request, done=False))
    ]
    if choice.summary:
        text = "".join(choice.summary)
        events += [
            _event("response.reasoning_summary_part.added", **at, part={"type": "summary_text", "text": ""}),
            *(_event("response.reasoning_summary_text.delta", **at, delta=piece) for piece in choice.summary),
            _event("response.reasoning_summary_text.done", **at, text=text),
            _event("response.reasoning_summary_part.done", **at, part={"type": "summary_text", "text": text}),
        ]
    done = _reasoning_item(reply, request, done=True)
    events.append(_event("response.output_item.done", choice.reasoning_tokens, output_index=index, item=done))
    return events
