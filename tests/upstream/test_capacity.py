"""The upstream's own capacity: at most N generations at once, the rest queued (not refused).

Driven by the real async SDK over a real socket; the journal's ``started_at`` (a
generation got its slot) and ``finished_at`` show what the server did. Latencies are a
few tenths of a second so the waits are unmistakable and the tests stay fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import openai
import pytest
from openai import AsyncOpenAI

from support.upstream import JournalEntry, run_upstream
from support.upstream.capacity import GenerationGate, Turn
from tests.conftest import MODEL

MESSAGES = [{"role": "user", "content": "Say something about event loops."}]
LATENCY = 0.2


def most_generating(entries: Iterable[JournalEntry]) -> int:
    """The most generations in progress at one moment, from started_at to finished_at (an end before a start)."""
    moments = []
    for entry in entries:
        if entry.started_at is not None and entry.finished_at is not None:
            moments += [(entry.started_at, 1), (entry.finished_at, -1)]
    current = most = 0
    for _, step in sorted(moments):
        current += step
        most = max(most, current)
    return most


def test_six_calls_through_capacity_two_take_three_latencies() -> None:
    async def main() -> None:
        async with (
            run_upstream(capacity=2, latency=LATENCY, ttft=0, chunk_delay=0) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            started = time.monotonic()
            replies = await asyncio.gather(
                *(client.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(6))
            )
            elapsed = time.monotonic() - started
            entries = await up.journal.wait_for(lambda es: len(es) == 6 and all(e.finished_at for e in es))
        assert all(reply.choices[0].message.content for reply in replies)
        assert 3 * LATENCY <= elapsed < 3 * LATENCY + 0.3, elapsed  # served two at a time, none refused
        assert {e.outcome for e in entries} == {"ok"}
        assert most_generating(entries) == 2
        for entry in entries:  # each one's latency runs from its turn, not from its arrival
            assert entry.started_at is not None and entry.finished_at is not None and entry.queued is not None
            assert entry.finished_at - entry.started_at >= LATENCY - 0.002
        waits = sorted(round(e.queued / LATENCY) for e in entries if e.queued is not None)
        assert waits == [0, 0, 1, 1, 2, 2], [e.queued for e in entries]

    asyncio.run(main())


def test_a_client_leaving_the_queue_is_recorded_and_frees_nothing() -> None:
    async def main() -> None:
        async with (
            run_upstream(capacity=1, latency=0.3, ttft=0, chunk_delay=0) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            first = asyncio.create_task(client.chat.completions.create(model=MODEL, messages=MESSAGES))
            await up.journal.wait_for(lambda es: len(es) == 1 and es[0].started_at is not None)
            with pytest.raises(openai.APITimeoutError):  # queued behind the first, then gives up
                await client.chat.completions.create(model=MODEL, messages=MESSAGES, timeout=0.1)
            third = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # queued too
            await first
            entries = await up.journal.wait_for(lambda es: len(es) == 3 and all(e.finished_at for e in es))
        assert third.choices[0].message.content
        held, left, waited = entries
        assert (left.outcome, left.client_disconnected, left.started_at, left.status) == (
            "disconnected",
            True,
            None,
            None,
        )
        assert left.finished_at is not None and left.finished_at - left.received_at < 0.25  # left the queue at once
        assert held.finished_at is not None and waited.started_at is not None
        # The slot passed from the first straight to the third: the leaver neither kept one (the third
        # would wait forever) nor gave back one it never held (the third would have started at once).
        assert held.finished_at <= waited.started_at < held.finished_at + 0.05
        assert most_generating(entries) == 1 and waited.outcome == "ok"

    asyncio.run(main())


def test_a_stream_holds_its_slot_until_its_last_event() -> None:
    async def main() -> None:
        async with (
            run_upstream(capacity=1, latency=0.05, ttft=0.05, chunk_delay=0.01, reply_tokens=10) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):

            async def streamed() -> str:
                stream = await client.responses.create(model=MODEL, input="hi", stream=True)
                return "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])

            text, plain = await asyncio.gather(
                streamed(), client.chat.completions.create(model=MODEL, messages=MESSAGES)
            )
            entries = await up.journal.wait_for(lambda es: len(es) == 2 and all(e.finished_at for e in es))
        assert text and plain.choices[0].message.content
        stream_entry, plain_entry = sorted(entries, key=lambda e: e.started_at or 0)
        assert stream_entry.stream and not plain_entry.stream
        assert stream_entry.finished_at is not None and plain_entry.started_at is not None
        assert plain_entry.started_at >= stream_entry.finished_at  # it waited for the whole stream
        assert plain_entry.finished_at is not None
        assert plain_entry.finished_at - plain_entry.started_at >= 0.05 - 0.002

    asyncio.run(main())


def test_without_capacity_nothing_waits() -> None:
    async def main() -> None:
        async with (
            run_upstream(latency=LATENCY, ttft=0, chunk_delay=0) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            assert up.settings.capacity is None
            started = time.monotonic()
            await asyncio.gather(*(client.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(6)))
            assert time.monotonic() - started < 2 * LATENCY
            entries = await up.journal.wait_for(lambda es: len(es) == 6 and all(e.finished_at for e in es))
        assert most_generating(entries) == 6
        assert all(e.queued is not None and e.queued < 0.05 for e in entries)

    asyncio.run(main())


def test_rejected_requests_take_no_slot() -> None:
    """Validation errors and faults answer at once, even when every slot is busy."""

    async def main() -> None:
        async with (
            run_upstream(capacity=1, latency=0.5, ttft=0, chunk_delay=0) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            busy = asyncio.create_task(client.chat.completions.create(model=MODEL, messages=MESSAGES))
            await up.journal.wait_for(lambda es: len(es) == 1 and es[0].started_at is not None)
            started = time.monotonic()
            with pytest.raises(openai.BadRequestError):
                await client.chat.completions.create(model=MODEL, messages=MESSAGES, n=0)
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, extra_headers={"x-upstream-fault": "rate_limit"}
                )
            assert time.monotonic() - started < 0.25
            await busy
            entries = await up.journal.wait_for(lambda es: len(es) == 3 and all(e.finished_at for e in es))
        assert [e.started_at is not None for e in entries] == [True, False, False]

    asyncio.run(main())


def test_gate_settles_every_way_a_wait_can_end() -> None:
    """The gate alone: a slot obtained just as the client leaves is handed on, a cancelled wait holds nothing."""

    async def main() -> None:
        gate = GenerationGate(1)
        here, gone = asyncio.Event(), asyncio.Event()
        assert await gate.enter(here) is Turn.AT_ONCE
        waiter = asyncio.create_task(gate.enter(here))
        leaver = asyncio.create_task(gate.enter(gone))
        cancelled = asyncio.create_task(gate.enter(here))
        await asyncio.sleep(0.01)
        assert gate.waiting == 3
        gone.set()
        cancelled.cancel()
        assert await leaver is Turn.LEFT
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        gate.leave()  # the first holder is done: the slot goes to the waiter
        assert await waiter is Turn.AFTER_WAITING
        assert gate.waiting == 0
        assert await asyncio.wait_for(_enter_after(gate), 1) is Turn.AFTER_WAITING  # one slot, passed on once more
        gate.leave()
        assert await gate.enter(here) is Turn.AT_ONCE  # and nothing leaked: it is free again

    asyncio.run(main())


async def _enter_after(gate: GenerationGate) -> Turn:
    entering = asyncio.create_task(gate.enter(asyncio.Event()))
    await asyncio.sleep(0.01)
    gate.leave()
    return await entering
