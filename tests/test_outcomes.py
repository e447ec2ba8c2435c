"""support.outcomes: a call's outcome as one line, whichever way it ended."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from support.outcomes import outcome


@dataclass
class FakeResponse:
    status_code: int


def test_a_response_gives_its_status_code() -> None:
    assert outcome(lambda: FakeResponse(201)) == "201"


def test_another_result_gives_its_text() -> None:
    assert outcome(lambda: "answered: hi") == "answered: hi"
    assert outcome(lambda: None) == "None"
    assert outcome(lambda: SimpleNamespace(status_code="201")) == "namespace(status_code='201')"  # not an int: a text


def test_an_exception_gives_its_type_and_message() -> None:
    def fail() -> None:
        raise ValueError("boom")

    assert outcome(fail) == "ValueError: boom"


def test_where_names_the_two_innermost_frames() -> None:
    def inner() -> None:
        raise KeyError("missing")

    def outer() -> None:
        inner()

    expected = "KeyError: 'missing'  (raised in test_outcomes.py:outer -> test_outcomes.py:inner)"
    assert outcome(outer, where=True) == expected


def test_asyncio_run_inside_a_running_loop() -> None:
    async def main() -> str:
        probe = asyncio.sleep(0)
        try:
            return outcome(lambda: asyncio.run(probe))
        finally:
            probe.close()

    assert asyncio.run(main()) == "RuntimeError: asyncio.run() cannot be called from a running event loop"
