"""`support.stream_shapes`: each shape live against the bundled upstream, each handler's real fate.

The real `AsyncOpenAI` reads real streams over loopback (`run_upstream` inside
`asyncio.run`); the naive handlers must fail with exactly the exception each shape
causes, the robust one must read them all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from openai import AsyncOpenAI

from support.stream_shapes import (
    DEFAULT_MODEL,
    MESSAGES,
    SHAPES,
    Outcome,
    ShapeRow,
    StreamResult,
    compare,
    shape_table,
)
from support.upstream import run_upstream
from support.upstream.chat_wire import REFUSAL_PIECES

FAST = {"latency": 0.01, "ttft": 0.005, "chunk_delay": 0.0, "reply_tokens": 12}
NONE_ITEM = "expected str instance, NoneType found"


@dataclass(frozen=True)
class Live:
    rows: dict[str, ShapeRow]
    plain_text: str  # what the same prompt gets unstreamed (the upstream is deterministic)


@pytest.fixture(scope="module")
def live() -> Live:
    async def run() -> Live:
        async with run_upstream(**FAST) as upstream:
            rows = await compare(upstream.base_url)
            async with AsyncOpenAI(base_url=upstream.base_url, api_key="k") as client:
                plain = await client.chat.completions.create(model=DEFAULT_MODEL, messages=MESSAGES)
        assert plain.choices[0].message.content
        return Live({row.shape: row for row in rows}, plain.choices[0].message.content)

    return asyncio.run(run())


@pytest.fixture
def rows(live: Live) -> dict[str, ShapeRow]:
    return live.rows


@pytest.fixture
def plain_text(live: Live) -> str:
    return live.plain_text


def failed(outcome: Outcome, kind: type[Exception], message: str) -> bool:
    return type(outcome.error) is kind and str(outcome.error) == message and outcome.result is None


def robust(row: ShapeRow) -> StreamResult:
    assert row.robust.error is None, row.robust
    assert isinstance(row.robust.result, StreamResult)
    return row.robust.result


def test_every_shape_is_covered(rows: dict[str, ShapeRow]) -> None:
    assert (
        list(rows)
        == list(SHAPES)
        == [
            "role-only first chunk, empty last",
            "filter annotations",
            "usage-only last chunk",
            "null content (tool calls)",
            "refusal",
        ]
    )
    assert [name for name, shape in SHAPES.items() if shape.injected] == ["filter annotations", "refusal"]


def test_plain_stream(rows: dict[str, ShapeRow], plain_text: str) -> None:
    row = rows["role-only first chunk, empty last"]
    # 14 chunks: the role, 12 tokens, the empty delta with finish_reason: item 13 is None.
    assert failed(row.naive, TypeError, f"sequence item 13: {NONE_ITEM}") and row.naive.chunks == 14
    assert row.guarded.result == plain_text
    result = robust(row)
    assert (result.text, result.finish_reason, result.usage, result.frames_without_choices) == (
        plain_text,
        "stop",
        None,
        0,
    )


def test_filter_annotations(rows: dict[str, ShapeRow], plain_text: str) -> None:
    row = rows["filter annotations"]
    for outcome in (row.naive, row.guarded):  # the very first chunk, right after the 200
        assert failed(outcome, IndexError, "list index out of range") and outcome.chunks == 1
    result = robust(row)
    assert result.text == plain_text and result.frames_without_choices == 1


def test_usage_only_last_chunk(rows: dict[str, ShapeRow], plain_text: str) -> None:
    row = rows["usage-only last chunk"]
    for outcome in (row.naive, row.guarded):  # the last chunk: the whole text was read, then lost
        assert failed(outcome, IndexError, "list index out of range") and outcome.chunks == 15
    result = robust(row)
    assert result.text == plain_text and result.usage is not None
    assert result.usage.completion_tokens == 12 and result.frames_without_choices == 1


def test_tool_calls(rows: dict[str, ShapeRow]) -> None:
    row = rows["null content (tool calls)"]
    assert failed(row.naive, TypeError, f"sequence item 0: {NONE_ITEM}")
    assert row.guarded.result == "" and row.guarded.error is None  # silently nothing
    result = robust(row)
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert len(result.tool_calls) == 1 and result.tool_calls[0].startswith('get_weather({"city":')


def test_refusal(rows: dict[str, ShapeRow]) -> None:
    row = rows["refusal"]
    assert failed(row.naive, TypeError, f"sequence item 0: {NONE_ITEM}")
    assert row.guarded.result == "" and row.guarded.error is None  # the refusal silently dropped
    result = robust(row)
    assert (result.text, result.refusal, result.finish_reason) == ("", "".join(REFUSAL_PIECES), "stop")


def test_table(rows: dict[str, ShapeRow]) -> None:
    table = shape_table(list(rows.values())).splitlines()
    assert table[0].split() == ["shape", "naive_text", "guarded_text", "robust_text"]
    assert len(table) == 2 + len(SHAPES)
    assert "IndexError: list index out of range" in table[3]
    assert "refusal \"I'm sorry, but I can't help with that.\"" in table[-1]
