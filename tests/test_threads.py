"""support.threads: limiter and executor introspection, /proc counters, sampling a loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx
import pytest
from anyio import to_thread
from fastapi import FastAPI

from support.serve import serve_in_thread
from support.threads import (
    default_executor_workers,
    default_limiter_tokens,
    executor_sizing_source,
    max_in_flight,
    proc_status,
    run_in,
    server_loop,
    time_run_sync,
    usable_cpu_count,
    watch,
)
from tests.conftest import NO_SUCH_PID

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@linux_only
@pytest.mark.parametrize("pid", ["self", os.getpid()], ids=["self", "pid"])
def test_proc_status_reads_this_process(pid: int | str) -> None:
    status = proc_status(pid)
    assert status.threads >= threading.active_count() >= 1  # every Python thread is an OS thread
    assert status.vm_rss_kib is not None and status.vm_size_kib is not None
    assert status.vm_size_kib >= status.vm_rss_kib > 1024  # reserved >= resident; an interpreter is > 1 MiB


def test_proc_status_of_a_missing_process_falls_back_to_python_threads() -> None:
    parsed = proc_status(NO_SUCH_PID)
    assert parsed.threads == threading.active_count()
    assert parsed.vm_size_kib is None and parsed.vm_rss_kib is None


@linux_only
def test_proc_status_counts_a_new_os_thread() -> None:
    release = threading.Event()
    before = proc_status()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        during = proc_status()
    finally:
        release.set()
        thread.join()
    assert during.threads == before.threads + 1
    assert during.vm_size_kib is not None and during.vm_size_kib > 0


def test_default_executor_workers_matches_thread_pool_executor() -> None:
    expected = getattr(os, "process_cpu_count", os.cpu_count)() or 1
    assert usable_cpu_count() == expected
    assert default_executor_workers() == min(32, expected + 4)
    with ThreadPoolExecutor() as pool:
        assert pool._max_workers == default_executor_workers()  # private, but the point of the test


def test_executor_sizing_source_is_the_installed_formula() -> None:
    line = executor_sizing_source()
    assert line.startswith("max_workers = min(32")
    assert ("process_cpu_count" in line) == (sys.version_info >= (3, 13))


def test_max_in_flight_measures_the_default_executor() -> None:
    async def main() -> int:
        return await max_in_flight(asyncio.to_thread, n=2 * 32 + 1, hold_s=0.05)

    assert asyncio.run(main()) == default_executor_workers()


def test_max_in_flight_measures_a_capacity_limiter() -> None:
    async def main() -> int:
        limiter = anyio.CapacityLimiter(3)
        return await max_in_flight(lambda f: to_thread.run_sync(f, limiter=limiter), n=10, hold_s=0.05)

    assert asyncio.run(main()) == 3


def test_each_loop_has_its_own_default_limiter() -> None:
    async def set_and_read(tokens: int) -> int:
        to_thread.current_default_thread_limiter().total_tokens = tokens
        return await default_limiter_tokens()

    assert asyncio.run(default_limiter_tokens()) == 40
    assert asyncio.run(set_and_read(7)) == 7
    assert asyncio.run(default_limiter_tokens()) == 40  # a new loop starts from the default again


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` on the running loop for up to 10 s (a bounded wait for a positive signal)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within 10 s")


def test_time_run_sync_waits_for_a_token() -> None:
    hold_s = 0.3

    async def main() -> tuple[float, float]:
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        free = await time_run_sync()
        release = threading.Event()
        holder = asyncio.ensure_future(to_thread.run_sync(release.wait))
        await until(lambda: limiter.borrowed_tokens == 1)  # the holder has the only token
        timed = asyncio.ensure_future(time_run_sync())
        await until(lambda: limiter.statistics().tasks_waiting == 1)  # the timed call queues behind it
        await asyncio.sleep(hold_s)
        release.set()  # only now can the timed call get the token
        waited = await timed
        await holder
        return free, waited

    free, waited = asyncio.run(main())
    # The timed call waited at least as long as the token was held after it queued; with a
    # free token nothing is held, so it took less (an ordering, not a bound on the clock).
    assert waited >= hold_s
    assert free < waited


def test_watch_sees_borrowed_tokens_and_threads() -> None:
    async def main() -> tuple[int, int, int, float]:
        before = proc_status().threads
        async with watch(interval=0.005) as peaks:
            await asyncio.gather(*(to_thread.run_sync(time.sleep, 0.2) for _ in range(5)))
        return peaks.borrowed_tokens, peaks.total_tokens, peaks.threads - before, peaks.cpu_s

    borrowed, total, extra_threads, cpu_s = asyncio.run(main())
    assert (borrowed, total) == (5, 40)
    if Path("/proc/self/status").exists():
        assert extra_threads >= 5
    assert cpu_s >= 0


def test_server_loop_and_run_in_reach_a_served_app() -> None:
    app = FastAPI()

    @app.get("/sync")
    def sync_route() -> dict[str, str]:
        time.sleep(0.3)
        return {"thread": threading.current_thread().name}

    async def main(base_url: str, loop: asyncio.AbstractEventLoop) -> tuple[int, int, str]:
        assert loop is not asyncio.get_running_loop()
        tokens = await run_in(loop, default_limiter_tokens())
        async with watch(loop, interval=0.005) as peaks, httpx.AsyncClient() as client:
            reply = await client.get(base_url + "/sync")
        return tokens, peaks.borrowed_tokens, reply.json()["thread"]

    with serve_in_thread(app) as server:
        tokens, borrowed, thread_name = asyncio.run(main(server.base_url, server_loop(server)))
    assert tokens == 40
    assert borrowed == 1  # the def route held a token of the *server's* limiter
    assert thread_name == "AnyIO worker thread"


def test_run_in_the_running_loop_just_awaits() -> None:
    async def main() -> int:
        return await run_in(asyncio.get_running_loop(), default_limiter_tokens())

    assert asyncio.run(main()) == 40
