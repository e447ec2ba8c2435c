"""A `Reply` as Chat Completions sends it: a ``chat.completion`` or ``chat.completion.chunk`` events.

Streams follow the real service: per choice a first chunk with the role (merged with
the first tool call's header when the choice calls functions), one chunk per token
(content, or a tool call's arguments), then a chunk with ``finish_reason``; with n > 1
the choices' chunks interleave, each chunk carrying one choice and its index; with
``stream_options.include_usage`` every chunk has ``usage: null`` and a last chunk with
no choices carries the usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, NamedTuple

from .replies import Choice, Reply, TokenLogprob, ToolCall
from .requests import GenerationRequest

FINGERPRINT = "fp_bundled"


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event: its ``event:`` name (None for chat), data, and the output tokens it carries."""

    event: str | None
    data: dict[str, Any]
    tokens: int = 0


def completion_id(reply: Reply) -> str:
    return f"chatcmpl-{reply.ids[:29]}"


def chat_completion(reply: Reply, request: GenerationRequest, created: int) -> dict[str, Any]:
    return {
        "id": completion_id(reply),
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [_choice(choice, request) for choice in reply.choices],
        "usage": usage(reply),
        "service_tier": request.service_tier,
        "system_fingerprint": FINGERPRINT,
    }


def _choice(choice: Choice, request: GenerationRequest) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if request.calls else choice.text,
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in choice.tool_calls]
    return {
        "index": choice.index,
        "message": message,
        "logprobs": _logprobs(choice.logprobs, request),
        "finish_reason": choice.finish_reason,
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _logprobs(entries: tuple[TokenLogprob, ...] | None, request: GenerationRequest) -> dict[str, Any] | None:
    if entries is None:
        return None
    return {"content": None if request.calls else [_logprob(entry) for entry in entries], "refusal": None}


def _logprob(entry: TokenLogprob) -> dict[str, Any]:
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": _bytes(entry.token),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": _bytes(t)} for t, lp in entry.top],
    }


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", "surrogatepass"))


def usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# --- streams ------------------------------------------------------------------------------------------


def chat_chunks(reply: Reply, request: GenerationRequest, created: int) -> list[StreamEvent]:
    """The ``chat.completion.chunk`` events of a stream, in order (before ``[DONE]``)."""
    per_choice = [_choice_parts(choice, request) for choice in reply.choices]
    ordered = [part for step in zip_longest(*per_choice) for part in step if part is not None]
    events = [StreamEvent(None, _chunk(reply, request, created, [part.payload()]), part.tokens) for part in ordered]
    if request.include_usage:
        final = _chunk(reply, request, created, [])
        final["usage"] = usage(reply)
        events.append(StreamEvent(None, final))
    return events


class _Part(NamedTuple):
    """One choice's share of one chunk."""

    choice: int  # the choice's index
    delta: dict[str, Any]
    tokens: int = 0
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "index": self.choice,
            "delta": self.delta,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


def _choice_parts(choice: Choice, request: GenerationRequest) -> list[_Part]:
    """One choice's chunks: the role (it thought before it spoke), tokens, then the finish reason."""
    i = choice.index
    first: dict[str, Any] = {"role": "assistant", "content": None if request.calls else "", "refusal": None}
    headers = [_call_header(n, call) for n, call in enumerate(choice.tool_calls)]
    if headers:
        first["tool_calls"] = [headers[0]]
    parts = [_Part(i, first, tokens=choice.reasoning_tokens)]
    entries = choice.logprobs or ()
    for n, piece in enumerate(choice.pieces):
        logprobs = {"content": [_logprob(entries[n])], "refusal": None} if n < len(entries) else None
        parts.append(_Part(i, {"content": piece}, tokens=1, logprobs=logprobs))
    for n, call in enumerate(choice.tool_calls):
        if n:
            parts.append(_Part(i, {"tool_calls": [headers[n]]}))
        for piece in call.pieces:
            parts.append(_Part(i, {"tool_calls": [{"index": n, "function": {"arguments": piece}}]}, tokens=1))
    parts.append(_Part(i, {}, finish_reason=choice.finish_reason))
    return parts


def _call_header(number: int, call: ToolCall) -> dict[str, Any]:
    return {"index": number, "id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}


def _chunk(reply: Reply, request: GenerationRequest, created: int, choices: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion_id(reply),
        "object": "chat.completion.chunk",
        "created": created,
        "model": request.model,
        "service_tier": request.service_tier,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
    }
    if request.include_usage:
        body["usage"] = None
    return body
