"""Look at the threads behind the thread-based fixes while a service runs.

A ``def`` route borrows a token of AnyIO's default `CapacityLimiter` (one per event
loop) and runs on an AnyIO worker thread; ``asyncio.to_thread`` runs on the loop's
default `ThreadPoolExecutor`. These helpers read both from *inside* the loop that owns
them (a served app's loop runs in another thread), count this process's OS threads and
memory, and measure a pool's size by how many calls it runs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import platform
import re
import resource
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread

from .bench import procfs
from .serve import RunningServer

__all__ = [
    "Peaks",
    "ProcStatus",
    "default_executor_workers",
    "default_limiter_tokens",
    "executor_sizing_source",
    "max_in_flight",
    "proc_status",
    "run_in",
    "server_loop",
    "thread_kinds",
    "thread_stack_bytes",
    "threads_back_to",
    "time_run_sync",
    "usable_cpu_count",
    "watch",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ProcStatus:
    """This process's OS threads and memory. Memory is None where /proc is unavailable."""

    threads: int
    vm_size_kib: int | None  # address space reserved (virtual): thread stacks count in full
    vm_rss_kib: int | None  # resident: pages actually touched


def proc_status(pid: int | str = "self") -> ProcStatus:
    """Read ``Threads``, ``VmSize`` and ``VmRSS`` from /proc (Linux). Elsewhere, the
    thread count falls back to `threading.active_count` (Python threads only)."""
    fields = procfs.status_fields(pid)
    if "Threads" not in fields:
        return ProcStatus(threading.active_count(), None, None)
    return ProcStatus(int(fields["Threads"]), procfs.kib(fields, "VmSize"), procfs.kib(fields, "VmRSS"))


def thread_stack_bytes() -> int | None:
    """The address space a new thread reserves for its stack by default, where that is
    known: with glibc, pthreads take ``RLIMIT_STACK``'s soft limit (``ulimit -s``). None
    with another C library or an unlimited stack. It explains why ``VmSize`` grows by
    megabytes per worker thread while ``VmRSS`` barely moves."""
    if platform.libc_ver()[0] != "glibc":
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    return None if soft == resource.RLIM_INFINITY else soft


async def threads_back_to(baseline: int, *, timeout_s: float = 2.0, interval: float = 0.02) -> int:
    """How many more OS threads this process has than `baseline`, once that is zero or
    less, or when `timeout_s` has passed: a stopped service's worker threads exit a
    moment after its loop ends, so counting at once would blame them for a leak."""
    deadline = time.monotonic() + timeout_s
    while (extra := proc_status().threads - baseline) > 0:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    return extra


def thread_kinds() -> Counter[str]:
    """This process's Python threads by kind: ``anyio`` (AnyIO's workers, which run
    ``def`` routes and ``def`` dependencies), ``executor`` (a loop's default executor,
    behind ``asyncio.to_thread``), ``other``. The difference of two counts says which
    pool a service's calls used."""

    def kind(name: str) -> str:
        if name == "AnyIO worker thread":
            return "anyio"
        return "executor" if re.fullmatch(r"(asyncio|uvloop)_\d+", name) else "other"

    return Counter(kind(thread.name) for thread in threading.enumerate())


def usable_cpu_count() -> int:
    """The CPU count `ThreadPoolExecutor` sizes itself by: ``os.process_cpu_count()`` on
    Python 3.13+ (the CPUs this process may run on), ``os.cpu_count()`` before."""
    counter = getattr(os, "process_cpu_count", os.cpu_count)
    return counter() or 1


def default_executor_workers() -> int:
    """Workers of a ``ThreadPoolExecutor()`` without ``max_workers`` (what
    ``asyncio.to_thread`` uses unless the loop was given another default executor):
    ``min(32, cpus + 4)`` (concurrent/futures/thread.py)."""
    return min(32, usable_cpu_count() + 4)


def executor_sizing_source() -> str:
    """The line of this Python's ``ThreadPoolExecutor.__init__`` that picks the default
    number of workers (it changed in 3.13), read from the installed source."""
    source = inspect.getsource(ThreadPoolExecutor.__init__)
    return next(line.strip() for line in source.splitlines() if "min(32" in line)


def server_loop(server: RunningServer) -> asyncio.AbstractEventLoop:
    """The event loop a served app runs on (the loop of uvicorn's listening socket)."""
    servers = getattr(server.server, "servers", None)
    if not servers:
        raise RuntimeError("the server is not listening yet")
    loop: asyncio.AbstractEventLoop = servers[0].get_loop()
    return loop


async def run_in(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on `loop` (which may run in another thread) and await its result."""
    if loop is asyncio.get_running_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


async def default_limiter_tokens() -> int:
    """Total tokens of AnyIO's default thread limiter of the loop this runs on."""
    return int(to_thread.current_default_thread_limiter().total_tokens)


async def time_run_sync() -> float:
    """Seconds a no-op took through ``anyio.to_thread.run_sync`` on the loop this runs
    on: about zero when a token is free, the wait for one when the limiter is full."""
    started = time.perf_counter()
    await to_thread.run_sync(lambda: None)
    return time.perf_counter() - started


async def max_in_flight(run: Callable[..., Awaitable[Any]], n: int, hold_s: float) -> int:
    """Start `n` calls of a function that blocks for `hold_s` through `run` (for example
    ``asyncio.to_thread``) and return how many were running at the same time: a pool's
    size, when `n` exceeds it."""
    lock = threading.Lock()
    running = peak = 0

    def hold() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(hold_s)
        with lock:
            running -= 1

    await asyncio.gather(*(run(hold) for _ in range(n)))
    return peak


@dataclass
class Peaks:
    """The highest values `watch` saw, and the process CPU time spent meanwhile."""

    threads: int = 0
    vm_size_kib: int = 0
    vm_rss_kib: int = 0
    borrowed_tokens: int = 0  # of the watched loop's default AnyIO limiter
    tasks_waiting: int = 0  # tasks queued for a token of that limiter
    total_tokens: int = 0
    cpu_s: float = 0.0  # process CPU time (all threads) while the block ran


async def _sample(peaks: Peaks, stop: threading.Event, interval: float, limiter: bool) -> None:
    while True:
        status = proc_status()
        peaks.threads = max(peaks.threads, status.threads)
        peaks.vm_size_kib = max(peaks.vm_size_kib, status.vm_size_kib or 0)
        peaks.vm_rss_kib = max(peaks.vm_rss_kib, status.vm_rss_kib or 0)
        if limiter:
            stats = to_thread.current_default_thread_limiter().statistics()
            peaks.borrowed_tokens = max(peaks.borrowed_tokens, stats.borrowed_tokens)
            peaks.tasks_waiting = max(peaks.tasks_waiting, stats.tasks_waiting)
            peaks.total_tokens = int(stats.total_tokens)
        if stop.is_set():
            return
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def watch(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    interval: float = 0.01,
    limiter: bool = True,
) -> AsyncIterator[Peaks]:
    """Sample, from inside `loop` (default: the running one), this process's threads and
    memory and (if `limiter`) that loop's default AnyIO limiter, until the block ends.
    The yielded `Peaks` is complete after the block."""
    peaks = Peaks()
    stop = threading.Event()
    target = loop or asyncio.get_running_loop()
    cpu_started = time.process_time()
    sampler = asyncio.ensure_future(run_in(target, _sample(peaks, stop, interval, limiter)))
    try:
        yield peaks
    finally:
        stop.set()
        await sampler
        peaks.cpu_s = time.process_time() - cpu_started
