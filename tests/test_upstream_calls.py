"""support.upstream_calls: a window on the bundled upstream's journal, from "now" on."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from support.target import Target, connect
from support.upstream.journal import Journal, JournalEntry
from support.upstream_calls import UpstreamCalls, calls_from_now, most_in_flight


def record(journal: Journal, *, finished: bool = True) -> JournalEntry:
    entry = journal.open("POST", "/v1/chat/completions", lambda seq: f"req_{seq}")
    if finished:
        entry.finished_at = time.time()
    return entry


def test_the_window_holds_only_what_came_after_it_opened() -> None:
    journal = Journal()
    before = record(journal)
    calls = UpstreamCalls(journal)
    assert calls.observable and len(calls) == 0 and calls.entries == []
    after = [record(journal), record(journal)]
    assert calls.entries == after and len(calls) == 2
    assert before not in calls.entries


def test_the_window_survives_a_cleared_journal() -> None:
    journal = Journal()
    record(journal)
    record(journal)
    journal.clear()  # positions start again at 0; sequence numbers keep counting
    calls = UpstreamCalls(journal)
    new = record(journal)
    assert calls.entries == [new]
    other = UpstreamCalls(journal)  # opened after `new`: must not see it
    assert other.entries == []


def test_settled_waits_for_the_requests_to_finish() -> None:
    journal = Journal()
    calls = UpstreamCalls(journal)
    entry = record(journal, finished=False)
    timer = threading.Timer(0.1, lambda: setattr(entry, "finished_at", time.time()))
    timer.start()
    started = time.perf_counter()
    assert asyncio.run(calls.settled(timeout=5)) == [entry]
    assert time.perf_counter() - started >= 0.05  # it did wait for the finish
    timer.join()


def test_settled_waits_for_at_least_n_requests_and_times_out() -> None:
    journal = Journal()
    calls = UpstreamCalls(journal)
    record(journal)
    with pytest.raises(TimeoutError):
        asyncio.run(calls.settled(at_least=2, timeout=0.1))
    record(journal)
    assert len(asyncio.run(calls.settled(at_least=2, timeout=1))) == 2


def test_without_a_journal_the_window_is_empty() -> None:
    calls = calls_from_now(Target(base_url="https://api.example.com/v1", model="m", api_key="k"))
    assert not calls.observable and calls.entries == [] and len(calls) == 0
    assert asyncio.run(calls.settled(timeout=0.1)) == []


def test_calls_from_now_on_the_bundled_upstream() -> None:
    with connect(None, "gpt-4o-mini", latency=0.01) as target:
        target.sync_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
        calls = calls_from_now(target)
        target.sync_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}])
        [entry] = asyncio.run(calls.settled(timeout=5))
        assert entry.endpoint == "chat.completions" and entry.outcome == "ok"


def entry(seq: int, received: float, finished: float | None) -> JournalEntry:
    return JournalEntry(seq, f"req_{seq}", "POST", "/", received_at=received, finished_at=finished)


def test_most_in_flight() -> None:
    assert most_in_flight([]) == 0
    assert most_in_flight([entry(0, 0, 1), entry(1, 2, 3)]) == 1
    assert most_in_flight([entry(0, 0, 2), entry(1, 1, 3), entry(2, 1.5, 4)]) == 3
    assert most_in_flight([entry(0, 0, 1), entry(1, 1, 2)]) == 1  # back to back is not overlap
    assert most_in_flight([entry(0, 0, None), entry(1, 5, 6)]) == 2  # an unfinished request is still in flight
