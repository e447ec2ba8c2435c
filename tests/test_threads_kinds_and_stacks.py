"""support.threads: thread_kinds, thread_stack_bytes and threads_back_to."""

from __future__ import annotations

import asyncio
import resource
import threading
from collections import Counter
from types import SimpleNamespace

import anyio
import pytest
from anyio import to_thread

import support.threads
from support.threads import proc_status, thread_kinds, thread_stack_bytes, threads_back_to


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
