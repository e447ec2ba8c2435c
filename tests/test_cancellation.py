"""cancellation: what the caller saw (caller_outcome, under_deadline) and what a departed client left upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from support.cancellation import caller_outcome, client_leaves, under_deadline
from support.target import Target, connect
from tests.conftest import MODEL


async def answer() -> str:
    return "fine"


async def fail() -> None:
    raise LookupError("nope")


def test_caller_outcome_names_the_exception_or_says_answered() -> None:
    assert asyncio.run(caller_outcome(answer())) == "answered"
    assert asyncio.run(caller_outcome(fail())) == "LookupError"


def test_under_deadline_times_out_a_slow_call_and_answers_a_fast_one() -> None:
    caller, waited = asyncio.run(under_deadline(lambda: asyncio.sleep(30), 0.05))
    assert caller == "TimeoutError" and waited < 20  # at the deadline, not after the call
    assert asyncio.run(under_deadline(answer, 30))[0] == "answered"


def test_under_deadline_lets_other_errors_through() -> None:
    with pytest.raises(LookupError):
        asyncio.run(under_deadline(fail, 30))


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(variable, raising=False)  # import_service sets them; restored afterwards
    with connect(None, MODEL, latency=0.3) as bundled:
        yield bundled


def test_a_departed_client_leaves_the_upstream_call_to_finish(target: Target) -> None:
    fix_c = target.import_service("fix_async_client")
    got, entries = asyncio.run(client_leaves(fix_c.app, target, json={"prompt": "hi"}, read_timeout_s=0.05))
    assert got == "ReadTimeout"
    assert [(e.outcome, e.client_disconnected) for e in entries] == [("ok", False)]  # settled: finished, billed
    assert entries[0].completion_tokens > 0


def test_without_a_journal_there_is_nothing_to_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TEST_KEY", "not-a-real-key")
    external = connect("http://127.0.0.1:9/v1", MODEL, "RUNBOOK_TEST_KEY")
    app = FastAPI()

    @app.post("/chat")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.5)
        return {"text": "late"}

    got, entries = asyncio.run(client_leaves(app, external, json={}, read_timeout_s=0.05))
    assert (got, entries) == ("ReadTimeout", [])
