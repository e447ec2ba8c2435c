"""One SDK client shared by task-queue workers that each run ``asyncio.run(task())``, and the fixes.

Celery, RQ and plain `ThreadPoolExecutor` workers are synchronous; the usual way to call
async code from them is ``asyncio.run(task())`` per task, which makes a new event loop
each time and closes it at the end. A module-level `AsyncOpenAI` shared by those tasks
keeps connections (httpx2) or a whole session (aiohttp) bound to the first loops that
used it. `run_tasks` runs many such tasks through a thread pool, each bounded by a hard
timeout, and tallies how each one ended, per strategy (`STRATEGIES`):

- ``shared``: one module-level `AsyncOpenAI`, every task in its own ``asyncio.run``;
- ``per_loop``: a client per event loop (`LoopClients`), closed before its loop ends;
- ``runner``: one long-lived loop per worker thread (`asyncio.Runner`) with one client each;
- ``sync``: the sync `OpenAI` client, shared, no event loop at all.

What asyncio and the transports log while a run goes on ("Task exception was never
retrieved", "Unclosed client session") is counted, not printed, so a notebook's output
stays the table.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from openai import APITimeoutError, AsyncOpenAI, DefaultAioHttpClient
from openai.types.chat import ChatCompletionMessageParam

from .pools import Transport
from .tables import text_table
from .target import Target
from .upstream.journal import JournalEntry
from .upstream_calls import UpstreamCalls, calls_from_now

__all__ = [
    "KINDS",
    "STRATEGIES",
    "LoopClients",
    "RunnerPerThread",
    "Tally",
    "ask",
    "classify",
    "exact_errors",
    "run_tasks",
    "tally_table",
    "worker_jobs",
]

T = TypeVar("T")
Strategy = Literal["shared", "per_loop", "runner", "sync"]
STRATEGIES: dict[Strategy, str] = {
    "shared": "one shared AsyncOpenAI, asyncio.run per task",
    "per_loop": "a client per event loop",
    "runner": "an asyncio.Runner per worker thread",
    "sync": "the sync OpenAI client, shared",
}
# How a task can end, in the order the table shows them.
KINDS = ("ok", "Event loop is closed", "different loop", "timeout", "other")
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Summarise this ticket in one line."}]


def _without_reprs(message: str) -> str:
    """`message` with every outermost ``<...>`` span (nested ones included) shortened to ``<...>``."""
    kept, depth = [], 0
    for char in message:
        if char == "<":
            depth += 1
            if depth == 1:
                kept.append("<...>")
        elif char == ">" and depth:
            depth -= 1
        elif not depth:
            kept.append(char)
    return "".join(kept)


def classify(exc: BaseException) -> tuple[str, str]:
    """The kind of a task's failure and its exact ``Class: first line of the message``.

    Object reprs in the message (``<Task pending ... at /path/file.py:12>``) become ``<...>``:
    they hold addresses and paths that differ on every run and machine.
    """
    message = _without_reprs(str(exc).splitlines()[0] if str(exc) else "")
    text = f"{type(exc).__name__}: {message}".rstrip(": ")
    if isinstance(exc, TimeoutError | APITimeoutError):
        return "timeout", text
    if isinstance(exc, RuntimeError) and "Event loop is closed" in message:
        return "Event loop is closed", text
    if isinstance(exc, RuntimeError) and (
        "attached to a different loop" in message or "different event loop" in message
    ):
        return "different loop", text
    return "other", text


@dataclass
class Tally:
    """How the tasks of one strategy ended."""

    strategy: str
    transport: str
    tasks: int
    outcomes: Counter[str] = field(default_factory=Counter)  # kind -> tasks
    examples: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> exact texts -> tasks
    wall_s: float = 0.0
    clients: int = 0  # SDK clients built for the run
    received: int | None = None  # chat requests the bundled upstream received (None: no journal)
    answered: int | None = None  # ... and answered in full: generated, sent and billed
    logged: int = 0  # records asyncio and the transports logged meanwhile (stray task errors, unclosed sessions)

    @property
    def failed(self) -> int:
        return self.tasks - self.outcomes["ok"]

    @property
    def failure_rate(self) -> float:
        return self.failed / self.tasks if self.tasks else 0.0

    def record(self, kind: str, text: str) -> None:
        self.outcomes[kind] += 1
        self.examples.setdefault(kind, Counter())[text] += 1


class LoopClients:
    """A client per event loop, for code that cannot be handed one: `get` returns the running
    loop's client, building it on first use. Keyed weakly by the loop, so a finished loop's
    entry goes away with the loop; `run` closes the loop's client before the loop ends."""

    def __init__(self, build: Callable[[], AsyncOpenAI]) -> None:
        self._build = build
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # worker threads add entries at the same time
        self.built = 0

    def get(self) -> AsyncOpenAI:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = self._build()
                self.built += 1
        return client

    async def close_current(self) -> None:
        """Close the running loop's client, if it has one (before the loop closes, or its
        connections would be cleaned up on a loop that no longer runs)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def run(self, work: Callable[[AsyncOpenAI], Awaitable[T]]) -> T:
        """``asyncio.run`` of `work` with this loop's client, closed before the loop ends."""

        async def main() -> T:
            try:
                return await work(self.get())
            finally:
                await self.close_current()

        return asyncio.run(main())


class RunnerPerThread:
    """One long-lived event loop (`asyncio.Runner`) per worker thread, and one client on it.

    Every task a thread runs reuses its loop and its client's connections; `close_all`
    closes each client on its own loop and then the loop.
    """

    def __init__(self, build: Callable[[], AsyncOpenAI]) -> None:
        self._build = build
        self._local = threading.local()
        self._owned: list[tuple[asyncio.Runner, AsyncOpenAI]] = []
        self._lock = threading.Lock()

    def run(self, work: Callable[[AsyncOpenAI], Awaitable[T]]) -> T:
        if not hasattr(self._local, "runner"):
            self._local.runner, self._local.client = asyncio.Runner(), self._build()
            with self._lock:
                self._owned.append((self._local.runner, self._local.client))
        runner: asyncio.Runner = self._local.runner
        return runner.run(work(self._local.client))  # type: ignore[arg-type]  # Awaitable is enough here

    @property
    def loops(self) -> int:
        return len(self._owned)

    def close_all(self) -> None:
        """Close every client on its own loop, then the loop. Each loop is idle once its thread's
        last task returned, so a fresh thread (one with no running loop, which `Runner.run`
        requires) can drive them all."""
        with self._lock:
            owned, self._owned = self._owned, []

        def close() -> None:
            for runner, client in owned:
                with runner:
                    runner.run(client.close())

        _in_fresh_thread(close)


def _in_fresh_thread(work: Callable[[], None]) -> None:
    """Run `work` in a new thread and wait for it: there `asyncio.run` works even when the caller
    is a notebook cell, whose thread runs the kernel's loop."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="closer") as closer:
        closer.submit(work).result()


async def ask(client: AsyncOpenAI, model: str, bound_s: float) -> str:
    """The task: one chat completion, cut off after `bound_s` seconds whatever the client does."""
    async with asyncio.timeout(bound_s):
        completion = await client.chat.completions.create(model=model, messages=PROMPT)
    return completion.choices[0].message.content or ""


@contextlib.contextmanager
def _counting_logs(tally: Tally) -> Iterator[None]:
    """Count, instead of print, what asyncio and aiohttp log while the block runs."""
    loggers = [logging.getLogger(name) for name in ("asyncio", "aiohttp.client")]

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tally.logged += 1

    handler = Count()
    saved = [(logger.propagate, logger.handlers[:]) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        gc.collect()  # an unclosed session says so when it is collected: here, not in a later cell
        for logger, (propagate, handlers) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate


def run_tasks(
    target: Target,
    strategy: Strategy,
    *,
    transport: Transport = "httpx2",
    tasks: int,
    workers: int,
    task_timeout: float = 5.0,
) -> Tally:
    """Run `tasks` chat completions through a pool of `workers` threads, as `strategy` does,
    and tally how each ended. Each task is bounded by `task_timeout` (``asyncio.timeout`` in
    the task, the SDK's timeout for the sync client), and the whole run by twice the time the
    tasks could take one after another, so nothing can hang the caller.
    """
    if tasks < 1 or workers < 1 or task_timeout <= 0:
        raise ValueError("tasks and workers must be at least 1, and task_timeout positive")
    label = "-" if strategy == "sync" else transport
    tally = Tally(STRATEGIES[strategy], label, tasks)
    job, finish, built = worker_jobs(target, strategy, transport, task_timeout)
    calls = calls_from_now(target)
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="worker")
    stuck: set[concurrent.futures.Future[object]] = set()
    with _counting_logs(tally):
        try:
            started = time.perf_counter()
            futures = [pool.submit(job) for _ in range(tasks)]
            _, stuck = concurrent.futures.wait(futures, timeout=2 * task_timeout * tasks / workers + 5)
            tally.wall_s = time.perf_counter() - started
        finally:
            pool.shutdown(wait=not stuck, cancel_futures=True)  # a stuck thread is left behind, not waited for
        for future in futures:
            if future in stuck:
                tally.record("timeout", "no answer within the harness's bound")
            elif (exc := future.exception()) is not None:
                tally.record(*classify(exc))
            else:
                tally.record("ok", "ok")
        finish()
    tally.clients = len(built)
    if calls.observable:
        entries = _settled(calls, timeout=task_timeout + 5)
        tally.received = len(entries)
        tally.answered = sum(e.outcome == "ok" for e in entries)
    return tally


def _settled(calls: UpstreamCalls, *, timeout: float) -> list[JournalEntry]:
    """The window's chat requests once each has finished (a client that left can be a moment
    ahead of the upstream's record of it), or as they are after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in calls.entries if e.endpoint == "chat.completions"]
        if all(e.finished_at is not None for e in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.01)


def worker_jobs(
    target: Target, strategy: Strategy, transport: Transport, bound_s: float
) -> tuple[Callable[[], object], Callable[[], None], list[object]]:
    """What a worker runs per task, what runs once every task is done, and the clients built."""
    built: list[object] = []

    def build() -> AsyncOpenAI:
        options: dict[str, object] = {"timeout": bound_s}
        if transport == "aiohttp":
            options["http_client"] = DefaultAioHttpClient(timeout=bound_s)
        built.append(client := target.async_client(**options))
        return client

    model = target.model
    if strategy == "shared":
        shared = build()  # once, as a module-level client is built at import

        def close_shared() -> None:
            with contextlib.suppress(Exception):  # its connections belong to loops that are gone
                _in_fresh_thread(lambda: asyncio.run(shared.close()))

        return (lambda: asyncio.run(ask(shared, model, bound_s))), close_shared, built
    if strategy == "per_loop":
        clients = LoopClients(build)
        return (lambda: clients.run(lambda client: ask(client, model, bound_s))), lambda: None, built
    if strategy == "runner":
        runners = RunnerPerThread(build)
        return (lambda: runners.run(lambda client: ask(client, model, bound_s))), runners.close_all, built
    sync = target.sync_client(timeout=bound_s)  # thread-safe: its pool has a real lock
    built.append(sync)

    def ask_sync() -> str:
        completion = sync.chat.completions.create(model=model, messages=PROMPT)
        return completion.choices[0].message.content or ""

    return ask_sync, sync.close, built


def tally_table(tallies: list[Tally]) -> str:
    """One row per strategy: tasks per outcome, the failure rate, the clients built, the wall time."""
    rows = [["strategy", "transport", *KINDS, "failed", "clients", "wall s"]]
    for t in tallies:
        counts = [str(t.outcomes[kind]) for kind in KINDS]
        rows.append([t.strategy, t.transport, *counts, f"{t.failure_rate:.0%}", str(t.clients), f"{t.wall_s:.1f}"])
    return text_table(rows, numeric_from=2, rule=True)


def exact_errors(tallies: list[Tally]) -> str:
    """Every distinct failure text, with its strategy, transport and count."""
    rows = [["strategy", "transport", "tasks", "exception (first line)"]]
    for t in tallies:
        for kind in KINDS[1:]:
            for text, count in sorted(t.examples.get(kind, Counter()).items()):
                rows.append([t.strategy, t.transport, str(count), text])
    return text_table(rows, numeric_from=2, rule=True)
