"""cancellation: what the caller saw (caller_outcome, under_deadline, each kind of deadline), whether a thread ran
on (ThreadedCall), what the upstream saw (deadline_experiment), and what a departed client left upstream."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from support.cancellation import (
    DEADLINE_KINDS,
    DeadlineOutcome,
    ThreadedCall,
    caller_outcome,
    client_leaves,
    deadline_experiment,
    format_deadlines,
    under_deadline,
)
from support.target import Target, connect
from tests.conftest import MODEL


async def answer() -> str:
    return "fine"


async def fail() -> None:
    raise LookupError("nope")


def test_caller_outcome_names_the_exception_or_says_answered() -> None:
    assert asyncio.run(caller_outcome(answer())) == "answered"
    assert asyncio.run(caller_outcome(fail())) == "LookupError"


@pytest.mark.parametrize("kind", DEADLINE_KINDS)
def test_under_deadline_times_out_a_slow_call_and_answers_a_fast_one(kind: str) -> None:
    caller, waited = asyncio.run(under_deadline(lambda: asyncio.sleep(30), 0.05, kind))
    assert caller == "TimeoutError" and waited < 20  # at the deadline, not after the call
    assert asyncio.run(under_deadline(answer, 30, kind))[0] == "answered"


@pytest.mark.parametrize("kind", DEADLINE_KINDS)
def test_under_deadline_lets_other_errors_through(kind: str) -> None:
    with pytest.raises(LookupError):
        asyncio.run(under_deadline(fail, 30, kind))


def test_under_deadline_knows_its_kinds() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        asyncio.run(under_deadline(answer, 30, "trio.fail_after"))


def sleeper(seconds: float) -> ThreadedCall:
    return ThreadedCall(functools.partial(time.sleep, seconds))


@pytest.mark.parametrize("kind", DEADLINE_KINDS)
def test_a_deadline_stops_the_waiting_for_to_thread_not_the_thread(kind: str) -> None:
    call = sleeper(0.5)

    async def main() -> tuple[str, bool]:
        caller, _ = await under_deadline(lambda: asyncio.to_thread(call), 0.05, kind)
        running = not call.returned.is_set()
        await call.wait(10)
        return caller, running

    assert asyncio.run(main()) == ("TimeoutError", True)


@pytest.mark.parametrize("kind", ["asyncio.timeout", "asyncio.wait_for"])
def test_asyncio_cancels_the_wait_for_run_in_threadpool(kind: str) -> None:
    call = sleeper(0.5)

    async def main() -> tuple[str, bool]:
        caller, _ = await under_deadline(lambda: run_in_threadpool(call), 0.05, kind)
        return caller, not call.returned.is_set()

    assert asyncio.run(main()) == ("TimeoutError", True)


def test_anyio_waits_for_run_in_threadpool_and_raises_at_the_next_await() -> None:
    """The thread call is shielded: no cancellation reaches the caller until it returns;
    then nothing inside the block is left to cancel (answered, late), unless the block
    awaits again, where the TimeoutError comes, after the thread."""
    plain, then_awaits = sleeper(0.3), sleeper(0.3)

    async def and_then_a_checkpoint() -> None:
        await run_in_threadpool(then_awaits)
        await anyio.lowlevel.checkpoint()

    async def main() -> tuple[tuple[str, float], tuple[str, float]]:
        return (
            await under_deadline(lambda: run_in_threadpool(plain), 0.05, "anyio.fail_after"),
            await under_deadline(and_then_a_checkpoint, 0.05, "anyio.fail_after"),
        )

    (caller, waited), (caller_after, waited_after) = asyncio.run(main())
    assert plain.returned.is_set() and caller == "answered" and waited >= 0.3
    assert then_awaits.returned.is_set() and caller_after == "TimeoutError" and waited_after >= 0.3


def test_threaded_call_passes_the_result_and_notes_the_return() -> None:
    call = ThreadedCall(lambda: 42)
    assert not call.returned.is_set() and call.returned_at is None
    assert call() == 42 and call.returned.is_set() and call.returned_at is not None
    failing = ThreadedCall(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing()
    assert failing.returned.is_set()  # an exception is a return too
    with pytest.raises(TimeoutError):
        asyncio.run(sleeper(5).wait(0.05))  # never started: never returns


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


def test_deadline_experiment_records_the_three_sides(target: Target) -> None:
    """The bundled upstream holds each call; a to_thread call and an awaited one under asyncio's deadline."""
    slow = {"x-upstream-latency": "0.5"}
    question = [{"role": "user", "content": "hi"}]

    async def main() -> tuple[DeadlineOutcome, DeadlineOutcome]:
        sync_client, async_client = target.sync_client(max_retries=0), target.async_client(max_retries=0)
        call = ThreadedCall(
            functools.partial(sync_client.chat.completions.create, model=MODEL, messages=question, extra_headers=slow)
        )
        threaded = await deadline_experiment(
            functools.partial(asyncio.to_thread, call),
            kind="asyncio.timeout",
            deadline_s=0.05,
            target=target,
            on_thread=call,
        )
        awaited = await deadline_experiment(
            functools.partial(async_client.chat.completions.create, model=MODEL, messages=question, extra_headers=slow),
            kind="asyncio.timeout",
            deadline_s=0.05,
            target=target,
        )
        sync_client.close()
        await async_client.close()
        return threaded, awaited

    threaded, awaited = asyncio.run(main())
    assert threaded.caller == awaited.caller == "TimeoutError"
    assert threaded.thread_running and threaded.thread_s is not None and threaded.thread_s >= 0.5
    assert threaded.upstream is not None and (threaded.upstream.outcome, threaded.upstream.client_disconnected) == (
        "ok",
        False,
    )
    assert awaited.thread_running is None and awaited.thread_s is None
    assert awaited.upstream is not None and awaited.upstream.client_disconnected
    assert awaited.upstream.completion_tokens == 0
    table = format_deadlines({("B", threaded.kind): threaded, ("C", awaited.kind): awaited}).splitlines()
    assert table[0].split()[:4] == ["call", "deadline", "caller", "got"]
    assert table[1].split()[:5] == ["B", "asyncio.timeout", "TimeoutError", table[1].split()[3], "s"]
    assert "running" in table[1] and "ok" in table[1] and "False" in table[1]
    assert "disconnected" in table[2] and "True" in table[2] and " - " in table[2]  # no thread


def test_format_deadlines_without_a_journal() -> None:
    outcome = DeadlineOutcome("anyio.fail_after", 0.1, "answered", 0.6, False, 0.6, None)
    [_, row] = format_deadlines({("A", "anyio.fail_after"): outcome}).splitlines()
    assert row.split() == [
        "A",
        "anyio.fail_after",
        "answered",
        "0.60",
        "s",
        "returned",
        "after",
        "0.60",
        "s",
        "-",
        "-",
        "-",
    ]
