"""Who can stop an upstream call: a client that leaves, a deadline, the SDK's timeout.

Each experiment has up to three sides. The caller's side is what its ``await``
returned or raised, and when (`caller_outcome`, `under_deadline`). A call run on a
worker thread has its own side: whether the thread was still in the call when the
caller got control back (`ThreadedCall`). The upstream's side is in the bundled
upstream's journal: whether the call ran to the end and was billed, or saw its client
disconnect (`support.upstream_calls` waits until the journal has the final word).
`deadline_experiment` runs all three for one call under one kind of deadline
(`DEADLINE_KINDS`: asyncio's two and AnyIO's); `client_leaves` runs the first
experiment of notebook 03: an HTTP client that gives up on a service before the answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from .serve import serve_in_thread
from .tables import text_table
from .target import Target
from .upstream.journal import JournalEntry
from .upstream_calls import calls_from_now

__all__ = [
    "DEADLINE_KINDS",
    "DeadlineOutcome",
    "ThreadedCall",
    "caller_outcome",
    "client_leaves",
    "deadline_experiment",
    "format_deadlines",
    "under_deadline",
]

# The deadlines a route's caller can put around an await: asyncio cancels the awaiting
# task (``Task.cancel``); AnyIO cancels a scope, and skips whatever a shielded scope holds.
DEADLINE_KINDS = ("asyncio.timeout", "asyncio.wait_for", "anyio.fail_after")


async def caller_outcome(awaitable: Awaitable[object]) -> str:
    """``"answered"``, or the name of the exception the awaitable raised: what the caller
    saw, as a value a table or an assertion can hold. (`support.outcomes.outcome` is the
    sync counterpart, with the exception's message.)"""
    try:
        await awaitable
    except Exception as exc:
        return type(exc).__name__
    return "answered"


async def under_deadline(
    start: Callable[[], Awaitable[object]], deadline_s: float, kind: str = "asyncio.timeout"
) -> tuple[str, float]:
    """Start a call and give it `deadline_s`, the way a route would bound it; return what
    the caller saw (``"answered"`` or ``"TimeoutError"``) and how long it waited.

    `kind` is one of `DEADLINE_KINDS`. Each cancels the task that awaits the call when
    the deadline passes; whether that stops the waiting, and the call itself, depends
    on how the call was started: the thread and the upstream's journal tell.
    """
    started = time.perf_counter()
    try:
        if kind == "asyncio.timeout":
            async with asyncio.timeout(deadline_s):
                await start()
        elif kind == "asyncio.wait_for":
            await asyncio.wait_for(start(), deadline_s)
        elif kind == "anyio.fail_after":
            with anyio.fail_after(deadline_s):
                await start()
        else:
            raise ValueError(f"kind must be one of {DEADLINE_KINDS}, got {kind!r}")
        caller = "answered"
    except TimeoutError:
        caller = "TimeoutError"
    return caller, time.perf_counter() - started


class ThreadedCall:
    """A sync function to run on a worker thread, which records when it returned, so
    that a caller who got control back can ask whether the thread is still in the call."""

    def __init__(self, function: Callable[[], object]) -> None:
        self.function = function
        self.returned = threading.Event()
        self.returned_at: float | None = None  # time.perf_counter() when the function returned

    def __call__(self) -> object:
        try:
            return self.function()
        finally:
            self.returned_at = time.perf_counter()
            self.returned.set()

    async def wait(self, timeout_s: float) -> None:
        """Wait, without taking a thread, until the function has returned."""
        deadline = time.monotonic() + timeout_s
        while not self.returned.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the threaded call did not return within {timeout_s} s")
            await asyncio.sleep(0.01)


@dataclass(frozen=True)
class DeadlineOutcome:
    """One call under one deadline: the caller's side, the thread's, the upstream's."""

    kind: str  # one of DEADLINE_KINDS
    deadline_s: float
    caller: str  # "TimeoutError" or "answered"
    waited_s: float  # until the caller got control back
    thread_running: bool | None  # was the thread still in the call at that moment? None: no thread
    thread_s: float | None  # until the thread's call returned (None: no thread)
    upstream: JournalEntry | None  # the upstream's record, once settled (None: no journal)


async def deadline_experiment(
    start: Callable[[], Awaitable[object]],
    *,
    kind: str,
    deadline_s: float,
    target: Target,
    on_thread: ThreadedCall | None = None,
    settle_timeout_s: float = 30.0,
) -> DeadlineOutcome:
    """Run `start()` under a deadline of `kind` and record all three sides. `on_thread`
    is the `ThreadedCall` that `start` sends to a thread, if it does: its state is read
    the moment the caller gets control back, then its return is awaited, and so is the
    upstream's last word on the request (none to read from a server that is not bundled)."""
    calls = calls_from_now(target)
    started = time.perf_counter()
    caller, waited_s = await under_deadline(start, deadline_s, kind)
    running = None if on_thread is None else not on_thread.returned.is_set()
    thread_s = None
    if on_thread is not None:
        await on_thread.wait(settle_timeout_s)
        thread_s = (on_thread.returned_at or started) - started
    entries = await calls.settled(timeout=settle_timeout_s)
    return DeadlineOutcome(kind, deadline_s, caller, waited_s, running, thread_s, entries[0] if entries else None)


def format_deadlines(outcomes: Mapping[tuple[str, str], DeadlineOutcome]) -> str:
    """One row per (call, kind of deadline): what the caller got and after how long,
    whether the thread was still in the call at that moment and when it returned, and
    the upstream's record (outcome, ``client_disconnected``, output tokens)."""
    rows = [
        [
            "call",
            "deadline",
            "caller got",
            "after",
            "thread then",
            "thread returned",
            "upstream",
            "disconnected",
            "tokens",
        ]
    ]
    for (name, _), o in outcomes.items():
        thread = "-" if o.thread_running is None else ("running" if o.thread_running else "returned")
        entry = o.upstream
        rows.append(
            [
                name,
                o.kind,
                o.caller,
                f"{o.waited_s:.2f} s",
                thread,
                "-" if o.thread_s is None else f"after {o.thread_s:.2f} s",
                "-" if entry is None else entry.outcome,
                "-" if entry is None else str(entry.client_disconnected),
                "-" if entry is None else str(entry.completion_tokens),
            ]
        )
    return text_table(rows, numeric_from=len(rows[0]))


async def client_leaves(
    app: Any,
    target: Target,
    *,
    json: Any,
    read_timeout_s: float,
    path: str = "/chat",
    settle_timeout_s: float = 30.0,
) -> tuple[str, list[JournalEntry]]:
    """Serve `app`, ``POST path`` with a client that stops waiting after `read_timeout_s`,
    and return what that client got and the upstream calls the request caused, once the
    upstream is done with them (none to read from a server that is not bundled).

    The service keeps running until the upstream has settled: a service that stopped
    first would cut its own upstream call and hide what the departed client left behind.
    """
    with serve_in_thread(app) as service:
        calls = calls_from_now(target)
        impatience = httpx2.Timeout(10.0, read=read_timeout_s)  # gives up waiting for the response
        async with httpx2.AsyncClient(base_url=service.base_url, timeout=impatience) as impatient:
            got = await caller_outcome(impatient.post(path, json=json))
        return got, await calls.settled(timeout=settle_timeout_s)
