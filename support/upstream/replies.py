"""Deterministic replies: what the 'model' says to a request, before any wire format.

The same request always gets the same reply, seeded by the server seed and the
request's model and input, so notebook outputs are reproducible; ids derive from the
seed and the request's sequence number. A reply has ``n`` choices; each one is, in
order of precedence:

- function calls, when the request plans some (see `tools.planned_calls`), their
  arguments a seeded instance of each function's parameters schema;
- JSON, for a ``json_schema`` format (a seeded instance of the schema) or
  ``json_object`` (``{"answer": <the text reply>}``);
- text: ``reply_tokens`` words of seeded sentences.

A reasoning reply first spends hidden reasoning tokens (by effort, see `models`). The
output token limit covers reasoning and visible tokens together, and a reply cut by it
ends with finish reason ``length``; a ``stop`` sequence ends the text before it. Choice
0 of a plain request is the same text as ever, so outputs recorded earlier still hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from .models import REASONING_TOKENS
from .requests import GenerationRequest
from .schemas import make_instance
from .tools import Tool
from .vocabulary import SENTENCES, WORDS

TOKEN = re.compile(r"\s?\w+|[^\w\s]+|\s+")  # how structured text is split into tokens


@dataclass(frozen=True)
class ToolCall:
    """One function call of a choice; `pieces` are its arguments as streamed (cut short if the limit hit)."""

    call_id: str
    item_id: str  # the call's output item id (Responses)
    name: str
    pieces: tuple[str, ...]
    complete: bool

    @property
    def arguments(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class TokenLogprob:
    """A token's log probability and the `top` alternatives (the token itself first)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Choice:
    """One of a reply's ``n`` alternatives."""

    index: int
    pieces: tuple[str, ...]  # visible text, one piece per token, as streamed
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str  # "stop", "length" or "tool_calls"
    reasoning_tokens: int = 0
    summary: tuple[str, ...] = ()  # reasoning summary pieces (Responses), when asked for
    logprobs: tuple[TokenLogprob, ...] | None = None  # None when not asked for

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + len(self.pieces) + sum(len(call.pieces) for call in self.tool_calls)

    @property
    def exhausted(self) -> bool:
        """True when the limit ran out before any visible output (reasoning took it all)."""
        return self.finish_reason == "length" and not self.pieces and not self.tool_calls


@dataclass(frozen=True)
class Reply:
    """One generated answer: its choices and token counts."""

    ids: str  # hex digest behind every id of this reply
    choices: tuple[Choice, ...]
    prompt_tokens: int

    @property
    def first(self) -> Choice:
        return self.choices[0]

    @property
    def text(self) -> str:
        return self.first.text

    @property
    def pieces(self) -> tuple[str, ...]:
        return self.first.pieces

    @property
    def finish_reason(self) -> str:
        return self.first.finish_reason

    @property
    def completion_tokens(self) -> int:
        return sum(choice.completion_tokens for choice in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(choice.reasoning_tokens for choice in self.choices)


def make_reply(request: GenerationRequest, *, seed: int, seq: int, reply_tokens: int) -> Reply:
    """Generate the seeded reply to `request`."""
    # surrogatepass: JSON may carry lone surrogates ("\ud800"), which strict UTF-8 cannot encode
    key = f"{seed}\x00{request.model}\x00{request.prompt_text}".encode("utf-8", "surrogatepass")
    ids = hashlib.sha256(f"{seed}:{seq}".encode()).hexdigest()
    choices = tuple(_choice(request, key, ids, index, reply_tokens) for index in range(request.n))
    return Reply(ids=ids, choices=choices, prompt_tokens=prompt_tokens(request))


def prompt_tokens(request: GenerationRequest) -> int:
    """The usual estimate: about four characters a token, plus a few per message."""
    return math.ceil(len(request.prompt_text) / 4) + 3 * request.prompt_items + 3


def request_id(seed: int, seq: int) -> str:
    return "req_" + hashlib.sha256(f"{seed}:{seq}:request".encode()).hexdigest()[:32]


def tokenize(text: str) -> tuple[str, ...]:
    """Structured text as tokens: words with their leading space, runs of punctuation."""
    return tuple(TOKEN.findall(text))


# --- one choice ------------------------------------------------------------------------------------


def _choice(request: GenerationRequest, key: bytes, ids: str, index: int, reply_tokens: int) -> Choice:
    thinking = REASONING_TOKENS.get(request.reasoning_effort, 0) if request.reasoning_effort else 0
    budget = request.max_tokens
    reasoning = thinking if budget is None else min(thinking, budget)
    remaining = None if budget is None else budget - reasoning
    summary = _summary(key, index) if request.reasoning_summary and reasoning else ()
    if request.calls:
        calls, cut = _tool_calls(request.calls, key, ids, index, remaining)
        finish = "length" if cut else "tool_calls"
        return Choice(index, (), calls, finish, reasoning, summary, () if request.logprobs else None)
    natural = _stopped(_content(request, key, index, reply_tokens), request.stop)
    pieces = natural if remaining is None else natural[:remaining]
    finish = "length" if len(pieces) < len(natural) else "stop"
    logprobs = _logprobs(pieces, key, index, request.top_logprobs) if request.logprobs else None
    return Choice(index, pieces, (), finish, reasoning, summary, logprobs)


def _rng(key: bytes, *salt: object) -> random.Random:
    """A generator for one purpose; no salt gives the text generator replies have always used."""
    material = key + b"".join(f"\x00{part}".encode() for part in salt)
    return random.Random(hashlib.sha256(material).digest())


def _content(request: GenerationRequest, key: bytes, index: int, reply_tokens: int) -> tuple[str, ...]:
    words = _words(_rng(key, *((index,) if index else ())), reply_tokens)
    fmt = request.output_format
    if fmt.kind == "text":
        return words
    if fmt.kind == "json_schema" and fmt.schema is not None:
        return tokenize(_compact(make_instance(fmt.schema, _rng(key, index, "json"))))
    return tokenize(_compact({"answer": "".join(words)}))


def _words(rng: random.Random, count: int) -> tuple[str, ...]:
    words: list[str] = []
    while len(words) < count:  # seeded sentences, one word per token
        words += rng.choice(SENTENCES).split()
    return tuple(word if i == 0 else " " + word for i, word in enumerate(words[:count]))


def _stopped(pieces: tuple[str, ...], stops: tuple[str, ...]) -> tuple[str, ...]:
    """The pieces before the first stop sequence (the last one cut inside if needed)."""
    text = "".join(pieces)
    at = min((found for stop in stops if (found := text.find(stop)) >= 0), default=-1)
    if at < 0:
        return pieces
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) > at:
            if at > length:
                kept.append(piece[: at - length])
            break
        kept.append(piece)
        length += len(piece)
    return tuple(kept)


def _tool_calls(
    tools: tuple[Tool, ...], key: bytes, ids: str, index: int, remaining: int | None
) -> tuple[tuple[ToolCall, ...], bool]:
    """The calls of one choice, and whether the token limit cut them short."""
    calls: list[ToolCall] = []
    for number, tool in enumerate(tools):
        if remaining == 0:
            return tuple(calls), True
        arguments = make_instance(tool.parameters or {"type": "object"}, _rng(key, index, "call", number))
        pieces = tokenize(_compact(arguments if isinstance(arguments, dict) else {}))
        taken = pieces if remaining is None else pieces[:remaining]
        digest = hashlib.sha256(f"{ids}:{index}:{number}".encode()).hexdigest()
        calls.append(ToolCall(f"call_{digest[:24]}", f"fc_{digest[:48]}", tool.name, taken, len(taken) == len(pieces)))
        if remaining is not None:
            remaining -= len(taken)
        if len(taken) < len(pieces):
            return tuple(calls), True
    return tuple(calls), False


def _summary(key: bytes, index: int) -> tuple[str, ...]:
    rng = _rng(key, index, "summary")
    return ("**Weighing", " the", " question**", "\n\n", *_words(rng, 12))


def _logprobs(pieces: tuple[str, ...], key: bytes, index: int, top: int) -> tuple[TokenLogprob, ...]:
    """Seeded log probabilities: the chosen token likely, `top` alternatives less so."""
    rng = _rng(key, index, "logprobs")
    result = []
    for piece in pieces:
        chosen = -round(rng.expovariate(8.0), 6)
        others = [w for w in WORDS if w != piece.strip()]
        alternatives = [(piece, chosen)]
        logprob = chosen
        for word in rng.sample(others, max(0, top - 1)):
            logprob = round(logprob - rng.uniform(0.5, 4.0), 6)
            alternatives.append((" " + word if piece.startswith(" ") else word, logprob))
        result.append(TokenLogprob(piece, chosen, tuple(alternatives[:top])))
    return tuple(result)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
