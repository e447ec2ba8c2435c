"""support.threads: limiter and executor introspection, /proc counters, sampling a loop, thread kinds and stacks,
thread hops counted, and a library's own source and docstrings quoted."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import anyio
import httpx
import pytest
from anyio import to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import support.threads
from support.serve import serve_in_thread
from support.threads import (
    counting_thread_hops,
    default_executor_workers,
    default_limiter_tokens,
    executor_sizing_source,
    max_in_flight,
    param_doc,
    proc_status,
    quote_source,
    run_in,
    server_loop,
    thread_kinds,
    thread_stack_bytes,
    threads_back_to,
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
        return await max_in_flight(asyncio.to_thread, n=32 + 1)

    assert asyncio.run(main()) == default_executor_workers()


def test_max_in_flight_measures_a_capacity_limiter() -> None:
    async def main() -> int:
        limiter = anyio.CapacityLimiter(3)
        return await max_in_flight(lambda f: to_thread.run_sync(f, limiter=limiter), n=10)

    assert asyncio.run(main()) == 3


def test_max_in_flight_counts_threads_however_slowly_they_start() -> None:
    """A pool whose threads take longer to start than a fixed hold would last: the count
    waits until no call has started for `quiet_s`, so it still sees all of them."""

    async def main() -> int:
        limiter = anyio.CapacityLimiter(4)

        async def slow_start(f: Callable[[], None]) -> None:
            await asyncio.sleep(0.05)  # each call reaches its thread later than the one before
            await to_thread.run_sync(f, limiter=limiter)

        return await max_in_flight(lambda f: slow_start(f), n=6, quiet_s=0.3)

    assert asyncio.run(main()) == 4


def test_max_in_flight_when_the_pool_is_larger_than_the_calls() -> None:
    started = time.perf_counter()
    assert asyncio.run(max_in_flight(asyncio.to_thread, n=2, quiet_s=30)) == 2  # all started: no quiet wait
    assert time.perf_counter() - started < 20


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
        async with watch(interval=0.005) as peaks:
            await asyncio.gather(*(to_thread.run_sync(time.sleep, 0.2) for _ in range(5)))
        return peaks.borrowed_tokens, peaks.total_tokens, peaks.threads, peaks.cpu_s

    borrowed, total, threads, cpu_s = asyncio.run(main())
    assert (borrowed, total) == (5, 40)
    if Path("/proc/self/status").exists():
        # the five sleeping workers and the main thread, at least. (Not "five more than
        # before": idle threads left by earlier tests' loops may exit meanwhile.)
        assert threads >= 5 + 1
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


# --- thread_kinds, thread_stack_bytes and threads_back_to -------------------------------------------


def test_thread_kinds_sorts_threads_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["MainThread", "AnyIO worker thread", "AnyIO worker thread", "asyncio_0", "uvloop_12", "asyncio_x"]
    names += ["ThreadPoolExecutor-0_0", "uvicorn:8000"]
    monkeypatch.setattr(threading, "enumerate", lambda: [SimpleNamespace(name=name) for name in names])
    assert thread_kinds() == Counter(anyio=2, executor=2, other=4)


def test_the_names_are_the_ones_anyio_and_asyncio_give_their_workers() -> None:
    async def in_anyio_worker() -> tuple[str, Counter[str]]:
        return await to_thread.run_sync(lambda: (threading.current_thread().name, thread_kinds()))

    async def in_executor() -> tuple[str, Counter[str]]:
        return await asyncio.to_thread(lambda: (threading.current_thread().name, thread_kinds()))

    name, kinds = anyio.run(in_anyio_worker)
    assert name == "AnyIO worker thread" and kinds["anyio"] >= 1
    name, kinds = asyncio.run(in_executor())
    assert name.startswith("asyncio_") and kinds["executor"] >= 1


def test_thread_stack_bytes_is_rlimit_stack_with_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support.threads.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(support.threads.resource, "getrlimit", lambda _: (8 * 2**20, resource.RLIM_INFINITY))
    assert thread_stack_bytes() == 8 * 2**20


def test_thread_stack_bytes_is_unknown_when_unlimited_or_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support.threads.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(support.threads.resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert thread_stack_bytes() is None
    monkeypatch.setattr(support.threads.platform, "libc_ver", lambda: ("", ""))  # musl, for one
    assert thread_stack_bytes() is None


def test_threads_back_to_waits_for_a_thread_to_end() -> None:
    baseline = proc_status().threads
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()

    async def main() -> int:
        asyncio.get_running_loop().call_later(0.05, release.set)
        return await threads_back_to(baseline, timeout_s=30)

    try:
        assert asyncio.run(main()) <= 0
    finally:
        release.set()
        thread.join()


def test_threads_back_to_reports_what_is_left_at_the_timeout() -> None:
    baseline = proc_status().threads - 5  # five more threads than that cannot all end in 50 ms
    assert asyncio.run(threads_back_to(baseline, timeout_s=0.05)) > 0


# --- counting_thread_hops, quote_source, param_doc ---------------------------------------------------


def test_counting_thread_hops_names_what_went_to_a_thread() -> None:
    def work() -> int:
        return 1

    async def main() -> list[str]:
        with counting_thread_hops() as hops:
            await to_thread.run_sync(work)
            await asyncio.to_thread(work)  # the default executor: not AnyIO's limiter
            await run_in_threadpool(work)
        await to_thread.run_sync(work)  # after the block: not counted
        return hops

    hops = asyncio.run(main())
    assert hops == ["test_counting_thread_hops_names_what_went_to_a_thread.<locals>.work"] * 2
    assert to_thread.run_sync.__name__ == "run_sync"  # put back


def test_counting_thread_hops_sees_a_def_route_and_its_answers_validation() -> None:
    app = FastAPI()

    @app.get("/answer")
    def answer() -> dict[str, int]:
        return {"n": 1}

    with serve_in_thread(app) as server, counting_thread_hops() as hops:
        assert httpx.get(server.base_url + "/answer").json() == {"n": 1}
    assert hops[0].endswith("answer") and len(hops) == 2, hops


def test_quote_source_gives_the_lines_under_their_file_and_function() -> None:
    quoted = quote_source(ThreadPoolExecutor.__init__, "min(32", "max_workers <= 0")
    lines = quoted.splitlines()
    assert lines[0] == "concurrent/futures/thread.py, ThreadPoolExecutor.__init__:"
    assert lines[1].startswith("    ") and "min(32" in lines[1] and "max_workers <= 0" in lines[2]  # source order
    with pytest.raises(LookupError):
        quote_source(ThreadPoolExecutor.__init__, "not in there")


def test_param_doc_reads_one_parameter_of_a_docstring() -> None:
    text = param_doc(to_thread.run_sync, "abandon_on_cancel", width=1000)
    assert text.startswith("anyio/to_thread.py, run_sync: :param abandon_on_cancel:")
    assert "ignore cancellations" in text and ":param cancellable" not in text
    assert all(len(line) <= 60 for line in param_doc(to_thread.run_sync, "limiter", width=60).splitlines())
    with pytest.raises(LookupError):
        param_doc(to_thread.run_sync, "no_such_parameter")
