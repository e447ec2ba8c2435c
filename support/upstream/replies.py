"""Deterministic replies and the OpenAI wire payloads that carry them.

The same request always gets the same text (seeded by the server seed and the
request's model and input), so notebook outputs are reproducible; ids derive from
the seed and the request's sequence number.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

from .requests import GenerationRequest

SENTENCES = (
    "An awaited call lets the event loop serve other requests while this one waits.",
    "A blocking call holds the whole loop until the network answers.",
    "One client per process keeps its connection pool warm.",
    "Threads help a sync client, but every pool has a size.",
    "Streams should stop when the reader goes away.",
    "Retries belong in one layer, with a deadline above them.",
    "Latency is measured, not guessed.",
    "The upstream answered after the configured delay.",
)


@dataclass(frozen=True)
class Reply:
    """One generated answer: its text pieces and token counts."""

    ids: str  # hex digest behind every id of this reply
    pieces: tuple[str, ...]  # one piece per output token, as streamed
    prompt_tokens: int
    finish_reason: str  # "stop" or "length"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


def make_reply(request: GenerationRequest, *, seed: int, seq: int, reply_tokens: int) -> Reply:
    """Generate the seeded reply to `request`."""
    # surrogatepass: JSON may carry lone surrogates ("\ud800"), which strict UTF-8 cannot encode
    key = f"{seed}\x00{request.model}\x00{request.prompt_text}".encode("utf-8", "surrogatepass")
    rng = random.Random(hashlib.sha256(key).digest())
    limit = request.max_tokens if request.max_tokens is not None else reply_tokens
    count = min(reply_tokens, limit)
    words: list[str] = []
    while len(words) < reply_tokens:  # seeded sentences, one word per token
        words += rng.choice(SENTENCES).split()
    words = words[:count]
    pieces = tuple(word if i == 0 else " " + word for i, word in enumerate(words))
    return Reply(
        ids=hashlib.sha256(f"{seed}:{seq}".encode()).hexdigest(),
        pieces=pieces,
        prompt_tokens=prompt_tokens(request),
        finish_reason="stop" if count == reply_tokens else "length",
    )


def prompt_tokens(request: GenerationRequest) -> int:
    """The usual estimate: about four characters a token, plus a few per message."""
    return math.ceil(len(request.prompt_text) / 4) + 3 * request.prompt_items + 3


def request_id(seed: int, seq: int) -> str:
    return "req_" + hashlib.sha256(f"{seed}:{seq}:request".encode()).hexdigest()[:32]


# --- Chat Completions -----------------------------------------------------------------


def chat_completion(reply: Reply, model: str, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{reply.ids[:29]}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _chat_usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_bundled",
    }


def chat_chunks(reply: Reply, model: str, created: int, include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream, in order (before ``[DONE]``)."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{reply.ids[:29]}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_bundled",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in reply.pieces]
    chunks.append(chunk({}, reply.finish_reason))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _chat_usage(reply)
        chunks.append(final)
    return chunks


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


# --- Responses ------------------------------------------------------------------------


def response_object(
    reply: Reply, model: str, created: int, *, status: str = "completed", max_output_tokens: int | None = None
) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": f"resp_{reply.ids[:48]}",
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None if reply.finish_reason == "stop" or not done else {"reason": "max_output_tokens"},
        "instructions": None,
        "max_output_tokens": max_output_tokens,
        "model": model,
        "output": [_message_item(reply)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _responses_usage(reply) if done else None,
        "metadata": {},
    }


def response_events(reply: Reply, model: str, created: int, max_output_tokens: int | None) -> list[dict[str, Any]]:
    """The events of a streamed response, in order; each has ``type`` and ``sequence_number``."""
    item_id = _message_id(reply)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response_object(reply, model, created, status="in_progress")},
        {"type": "response.in_progress", "response": response_object(reply, model, created, status="in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "part": _text_part(""),
        },
    ]
    for piece in reply.pieces:
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
        )
    events += [
        {
            "type": "response.output_text.done",
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "text": reply.text,
            "logprobs": [],
        },
        {
            "type": "response.content_part.done",
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "part": _text_part(reply.text),
        },
        {"type": "response.output_item.done", "output_index": 0, "item": _message_item(reply)},
        {
            "type": "response.completed",
            "response": response_object(reply, model, created, max_output_tokens=max_output_tokens),
        },
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def _message_id(reply: Reply) -> str:
    return f"msg_{reply.ids[16:64]}"


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(reply: Reply) -> dict[str, Any]:
    return {
        "id": _message_id(reply),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [_text_part(reply.text)],
    }


def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
