"""Look at the threads behind the thread-based fixes while a service runs.

A ``def`` route borrows a token of AnyIO's default `CapacityLimiter` (one per event
loop) and runs on an AnyIO worker thread; ``asyncio.to_thread`` runs on the loop's
default `ThreadPoolExecutor`. These helpers read both from *inside* the loop that owns
them (a served app's loop runs in another thread), count this process's OS threads and
memory, measure a pool's size by how many calls it runs at once, and count the calls a
request sends to AnyIO's threads (`counting_thread_hops`). `quote_source` and
`param_doc` quote the installed libraries' own lines and docstrings, so that a notebook
cites what runs rather than paraphrasing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import platform
import re
import resource
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread

from .bench import procfs
from .installed import defined_in
from .serve import RunningServer

__all__ = [
    "Peaks",
    "ProcStatus",
    "counting_thread_hops",
    "default_executor_workers",
    "default_limiter_tokens",
    "executor_sizing_source",
    "max_in_flight",
    "param_doc",
    "proc_status",
    "quote_source",
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


def quote_source(function: Callable[..., Any], *texts: str) -> str:
    """The lines of `function`'s installed source that contain any of `texts`, in source
    order, indented under the file and function they are in (the file relative to its
    package's folder, e.g. ``anyio/_backends/_asyncio.py``): a library's own words,
    read where it runs. Raises LookupError when no line matches."""
    lines = [line.strip() for line in inspect.getsource(function).splitlines() if any(t in line for t in texts)]
    if not lines:
        raise LookupError(f"no line of {function.__qualname__} contains any of {texts}")
    return "\n".join([f"{defined_in(function)}, {function.__qualname__}:", *(f"    {line}" for line in lines)])


def param_doc(function: Callable[..., Any], name: str, width: int = 100) -> str:
    """What `function`'s docstring says of its parameter `name` (the reST
    ``:param name:`` paragraph), read from the installed library, after the file and
    function it comes from, wrapped at `width` characters."""
    lines = (inspect.getdoc(function) or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f":param {name}:")), None)
    if start is None:
        raise LookupError(f"{function.__qualname__}'s docstring does not describe {name!r}")
    paragraph = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith(":"):
            break
        paragraph.append(line.strip())
    return textwrap.fill(f"{defined_in(function)}, {function.__qualname__}: " + " ".join(paragraph), width)


def _sent_to_thread(func: Callable[..., Any]) -> str:
    """The name of what a ``run_sync`` call runs: the function inside partials, or the
    endpoint FastAPI wraps (``partial(_run_sync_endpoint, function=...)``)."""
    while isinstance(func, functools.partial):
        func = func.keywords.get("function", func.func)
    return getattr(func, "__qualname__", repr(func))


@contextlib.contextmanager
def counting_thread_hops() -> Iterator[list[str]]:
    """Record every call sent through ``anyio.to_thread.run_sync`` while the block runs,
    on any loop of this process (Starlette's ``run_in_threadpool`` and
    ``iterate_in_threadpool`` call it): the yielded list gets the name of each function
    sent to a worker thread, in order. Each is a token of that loop's limiter and a
    hop to a thread and back."""
    original = to_thread.run_sync
    hops: list[str] = []

    async def counted(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        hops.append(_sent_to_thread(func))
        return await original(func, *args, **kwargs)

    to_thread.run_sync = counted  # type: ignore[assignment]  # the same signature, recorded
    try:
        yield hops
    finally:
        to_thread.run_sync = original


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


async def max_in_flight(run: Callable[..., Awaitable[Any]], n: int, quiet_s: float = 0.25) -> int:
    """Start `n` calls of a blocking function through `run` (for example
    ``asyncio.to_thread``) and return how many were running at the same time: a pool's
    size, when `n` exceeds it.

    The calls count threads, not time: each one that starts holds its thread until no
    other call has started for `quiet_s` (or all `n` have), so every thread the pool can
    give is taken before any is handed back, however slowly a busy machine starts them.
    The count is taken once; the calls queued behind that first round return at once.
    """
    condition = threading.Condition()
    started = running = peak = 0
    last_start = time.monotonic()
    counted = False

    def hold() -> None:
        nonlocal started, running, peak, last_start, counted
        with condition:
            if counted:  # the pool's size is known: the rest only need to pass through
                return
            started, running, last_start = started + 1, running + 1, time.monotonic()
            peak = max(peak, running)
            condition.notify_all()
            while not counted and started < n and (left := last_start + quiet_s - time.monotonic()) > 0:
                condition.wait(left)
            counted = True
            running -= 1
            condition.notify_all()

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
