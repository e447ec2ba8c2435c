"""Every way a chat stream can look, and the handler that survives them all.

``"".join(chunk.choices[0].delta.content for chunk in stream)`` is how streams are read
in countless answers, and it fails *after* the 200 has been sent: the route has already
promised a stream and can only cut it. Each row of `SHAPES` is a shape real
OpenAI-compatible servers send, reproduced by the bundled upstream (a fault header or a
request parameter, see `support.upstream.faults` and `support.upstream.chat_wire`);
`compare` runs three handlers on each one with a real `AsyncOpenAI` over a real socket:

- `naive_text`: the one-liner above;
- `guarded_text`: the same with ``or ""`` (the usual patch): it survives a plain OpenAI
  stream, still crashes on a chunk without choices, and silently returns ``""`` for a
  refusal or a tool call;
- `robust_text`: iterates ``chunk.choices``, skips what is None, keeps the refusal, the
  tool calls and the usage apart. Copy this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from openai import AsyncOpenAI, omit
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam

from .tables import text_table

__all__ = [
    "DEFAULT_MODEL",
    "HANDLERS",
    "MESSAGES",
    "SHAPES",
    "WEATHER_TOOL",
    "Outcome",
    "Shape",
    "ShapeRow",
    "StreamResult",
    "compare",
    "guarded_text",
    "naive_text",
    "robust_text",
    "run_handler",
    "shape_table",
]

FAULT_HEADER = "x-upstream-fault"
DEFAULT_MODEL = "gpt-4o-mini"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say something about event loops."}]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class Shape:
    """How to get one stream shape from the bundled upstream, and what its chunks look like."""

    looks: str  # what the chunks look like, and who sends them
    fault: str | None = None  # the x-upstream-fault header that produces it (bundled upstream only)
    include_usage: bool = False  # ask for ``stream_options={"include_usage": True}``
    tools: bool = False  # offer `WEATHER_TOOL` (the model calls it)

    @property
    def injected(self) -> bool:
        """True when only the bundled upstream produces it on demand (a real server ignores the header)."""
        return self.fault is not None


SHAPES: dict[str, Shape] = {
    "role-only first chunk, empty last": Shape(
        "first chunk: role only (content ''); last: an empty delta with the finish_reason (every OpenAI stream)"
    ),
    "filter annotations": Shape(
        "first chunk: choices [] with prompt_filter_results (Azure OpenAI, content filter on)",
        fault="filter_annotations",
    ),
    "usage-only last chunk": Shape(
        "last chunk: choices [] with the usage (stream_options.include_usage)",
        include_usage=True,
    ),
    "null content (tool calls)": Shape(
        "every delta's content is None: the tokens are tool-call arguments (tools=...)",
        tools=True,
    ),
    "refusal": Shape("content None, the tokens in delta.refusal (the model refuses)", fault="refusal"),
}


# --- the handlers -----------------------------------------------------------------------------


async def naive_text(stream: AsyncIterable[ChatCompletionChunk]) -> str:
    """The one-liner as it is usually written (async): index 0, content assumed to be a str."""
    # mypy --strict rejects this very line (content is `str | None`): the ignore is the bug.
    return "".join([chunk.choices[0].delta.content async for chunk in stream])  # type: ignore[misc]


async def guarded_text(stream: AsyncIterable[ChatCompletionChunk]) -> str:
    """The usual patch, ``content or ""``: no TypeError, still index 0 of a list that may be empty."""
    return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])


@dataclass
class StreamResult:
    """What a stream said, read so that no shape can break it."""

    text: str = ""
    refusal: str | None = None  # the model's refusal, kept apart from the text
    tool_calls: list[str] = field(default_factory=list)  # ``name(arguments)``, in call order
    finish_reason: str | None = None
    usage: CompletionUsage | None = None
    frames_without_choices: int = 0  # filter annotations, the usage chunk...

    def __str__(self) -> str:
        parts = []
        if self.text:
            parts.append(repr(_short(self.text)))
        if self.refusal is not None:
            parts.append(f"refusal {_short(self.refusal)!r}")
        if self.tool_calls:
            parts.append("calls " + ", ".join(_short(call) for call in self.tool_calls))
        parts.append(f"finish {self.finish_reason}")
        if self.usage is not None:
            parts.append(f"usage {self.usage.completion_tokens} tokens")
        return "; ".join(parts)


async def robust_text(stream: AsyncIterable[ChatCompletionChunk]) -> StreamResult:
    """Read a stream whatever its shape: every chunk's ``choices`` (maybe empty), None skipped.

    Only choice 0 is collected (ask for ``n=1``, or key the result by ``choice.index``).
    """
    result = StreamResult()
    text: list[str] = []
    refusal: list[str] = []
    calls: dict[int, list[str]] = {}  # the call's index -> [name, arguments]
    async for chunk in stream:
        if chunk.usage is not None:
            result.usage = chunk.usage
        if not chunk.choices:
            result.frames_without_choices += 1
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content is not None:
                text.append(delta.content)
            if delta.refusal is not None:
                refusal.append(delta.refusal)
            for call in delta.tool_calls or ():
                name_args = calls.setdefault(call.index, ["", ""])
                if call.function is not None:
                    name_args[0] += call.function.name or ""
                    name_args[1] += call.function.arguments or ""
            if choice.finish_reason is not None:
                result.finish_reason = choice.finish_reason
    result.text = "".join(text)
    result.refusal = "".join(refusal) if refusal else None
    result.tool_calls = [f"{name}({args})" for _, (name, args) in sorted(calls.items())]
    return result


# --- running them -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one handler ended on one stream: its result, or the exception it raised."""

    result: str | StreamResult | None
    error: Exception | None
    chunks: int  # chunks the handler had read when it ended

    def __str__(self) -> str:
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        return repr(_short(self.result)) if isinstance(self.result, str) else str(self.result)


@dataclass(frozen=True)
class ShapeRow:
    """One shape and what each handler made of it."""

    shape: str
    naive: Outcome
    guarded: Outcome
    robust: Outcome


Handler = Callable[[AsyncIterable[ChatCompletionChunk]], Awaitable["str | StreamResult"]]
HANDLERS: dict[str, Handler] = {"naive": naive_text, "guarded": guarded_text, "robust": robust_text}


async def run_handler(client: AsyncOpenAI, shape: Shape, handler: Handler, *, model: str = DEFAULT_MODEL) -> Outcome:
    """Open a stream of `shape` and hand it to `handler`; the stream is closed however it ends."""
    headers = {FAULT_HEADER: shape.fault} if shape.fault else None
    stream = await client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True} if shape.include_usage else omit,
        tools=[WEATHER_TOOL] if shape.tools else omit,
        extra_headers=headers,
    )
    counted = _Counted(stream)
    async with stream:
        try:
            result = await handler(counted)
        except Exception as exc:  # the lesson, not a reason to stop: kept for the table
            return Outcome(None, exc, counted.count)
    return Outcome(result, None, counted.count)


async def compare(
    base_url: str,
    *,
    api_key: str = "any",
    model: str = DEFAULT_MODEL,
    shapes: Mapping[str, Shape] = SHAPES,
) -> list[ShapeRow]:
    """Every shape against every handler, with a real `AsyncOpenAI` pointed at `base_url`.

    One stream per shape and handler (three per shape), all open at once; no retries, so
    each row is one request's fate. A real server ignores the fault header: skip
    `Shape.injected` shapes there.
    """
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:
        outcomes = await asyncio.gather(
            *(
                run_handler(client, shape, handler, model=model)
                for shape in shapes.values()
                for handler in HANDLERS.values()
            )
        )
    per_shape = len(HANDLERS)
    return [ShapeRow(name, *outcomes[i * per_shape : (i + 1) * per_shape]) for i, name in enumerate(shapes)]


def shape_table(rows: list[ShapeRow]) -> str:
    """The rows as an aligned text table (shape, then each handler's outcome)."""
    header = ["shape", "naive_text", "guarded_text", "robust_text"]
    body = [[row.shape, str(row.naive), str(row.guarded), str(row.robust)] for row in rows]
    return text_table([header, *body], numeric_from=4, rule=True)


class _Counted(AsyncIterator[ChatCompletionChunk]):
    """An async iterator over a stream that counts the chunks handed out."""

    def __init__(self, stream: AsyncIterable[ChatCompletionChunk]) -> None:
        self._it = aiter(stream)
        self.count = 0

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        chunk = await anext(self._it)
        self.count += 1
        return chunk


def _short(text: str | None, limit: int = 40) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
