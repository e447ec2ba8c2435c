"""`support.background_flood`: a burst of tickets against the background-task service, probed.

The service's limiter is shrunk to a few tokens from inside its loop, so a small burst
fills it; the checks are what the flood reports (limiter peaks, probes, the journal's
calls at once), with timing only as wide bounds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from anyio import to_thread

from support import background_flood
from support.background_flood import Flood, flood
from support.serve import RunningServer, serve_in_thread
from support.target import Target, connect
from support.threads import run_in, server_loop

TOKENS = 4


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with connect(None, "gpt-4o-mini", latency=0.25) as bundled:
        yield bundled


@pytest.fixture
def server(target: Target) -> Iterator[RunningServer]:
    service = target.import_service("background")
    with serve_in_thread(service.app) as running:
        asyncio.run(run_in(server_loop(running), _tokens(TOKENS)))
        yield running


async def _tokens(tokens: int) -> None:
    to_thread.current_default_thread_limiter().total_tokens = tokens


def test_def_tasks_fill_the_limiter_and_the_journal_caps_at_its_tokens(server: RunningServer, target: Target) -> None:
    run = asyncio.run(flood(server, "def task, sync client", 4 * TOKENS, target=target))
    assert run.statuses == Counter({202: 4 * TOKENS}) and run.failed == 0
    assert (run.total_tokens, run.borrowed_peak) == (TOKENS, TOKENS) and run.waiting_peak > 0
    assert run.upstream_peak == TOKENS
    assert run.worst("/health/def") > run.worst("/health")
    assert run.done_s >= 3 * 0.25  # four rounds of model calls, at least three after the first


def test_async_tasks_borrow_no_token_and_all_run_at_once(server: RunningServer, target: Target) -> None:
    run = asyncio.run(flood(server, "async def task, AsyncOpenAI", 4 * TOKENS, target=target))
    assert run.waiting_peak == 0 and run.borrowed_peak < TOKENS
    assert run.upstream_peak is not None and run.upstream_peak > TOKENS
    assert all(len(times) >= 1 for times in run.probes.values())


def test_without_a_target_there_is_no_journal_count(server: RunningServer) -> None:
    run = asyncio.run(flood(server, "async def task, AsyncOpenAI", 2))
    assert run.upstream_peak is None and run.statuses == Counter({202: 2})


@pytest.mark.parametrize(
    ("task", "tickets", "message"),
    [("threads", 3, "task must be one of"), ("def task, sync client", 0, "tickets must be at least 1")],
)
def test_bad_arguments_are_refused(server: RunningServer, task: str, tickets: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        asyncio.run(flood(server, task, tickets))


def test_table_has_a_row_per_flood_and_every_probe() -> None:
    probes = {path: [0.5, 0.25] for path in background_flood.PROBES}
    made = Flood("def task, sync client", 3, Counter({202: 3}), 0.1, 1.0, 0, 40, 40, 7, probes, 40)
    text = background_flood.table([made])
    header, row = text.splitlines()
    assert all(f"{p} worst s" in header for p in background_flood.PROBES)
    assert "40 of 40" in row and "0.500" in row and "0.375" in row


def test_back_to_back_floods_do_not_count_the_last_ones_tokens(server: RunningServer, target: Target) -> None:
    """A def task writes its summary before its thread gives the token back; the next flood
    waits for the limiter to be idle, so it never starts with the last round's tokens."""
    for _ in range(2):
        asyncio.run(flood(server, "def task, sync client", 2 * TOKENS, target=target))
        run = asyncio.run(flood(server, "async def task, AsyncOpenAI", TOKENS, target=target))
        assert run.borrowed_peak < TOKENS and run.waiting_peak == 0, run
