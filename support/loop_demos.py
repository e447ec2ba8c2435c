"""Notebook 05's demonstrations of what a running event loop refuses or breaks.

Each one patches asyncio for the whole process or ends the interpreter that runs it, so
call them through `support.isolated.run_python` or `run_in_fresh_kernel`, never in a
kernel you want to keep:

- `uvicorn_on_taken_port`: uvicorn's ``sys.exit(STARTUP_FAILURE)`` on a port in use;
- `uvicorn_task_on_taken_port`: the same SystemExit raised in a task of the running loop;
- `nest_asyncio_effects`: what ``nest_asyncio.apply()`` changes, observed before and after,
  built from `sync_helper` (the shape nest_asyncio exists for), `interleaving` (which task
  runs when) and `deadline_around_nested_run` (a timeout around a nested run).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

__all__ = [
    "deadline_around_nested_run",
    "interleaving",
    "nest_asyncio_effects",
    "sync_helper",
    "uvicorn_on_taken_port",
    "uvicorn_task_on_taken_port",
]


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that is never reached: the server fails before serving."""


def _taken_port() -> tuple[socket.socket, int]:
    holder = socket.create_server(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def uvicorn_on_taken_port() -> None:
    """Serve with uvicorn the usual way (it binds the port) on a port already in use.

    uvicorn logs the bind error and calls
    ``sys.exit(uvicorn.config.STARTUP_FAILURE)``: the interpreter ends with that
    SystemExit, after printing it.
    """
    import uvicorn

    holder, port = _taken_port()
    try:
        config = uvicorn.Config(_noop_app, host="127.0.0.1", port=port, log_level="error")
        try:
            asyncio.run(uvicorn.Server(config).serve())
        except SystemExit as exc:
            print(f"uvicorn raised SystemExit({exc.code})")
            raise
        print("uvicorn returned normally")
    finally:
        holder.close()


async def uvicorn_task_on_taken_port(wait_s: float = 1.0) -> str:
    """Start uvicorn as a background task of the running loop, on a port already in use.

    This is how one serves an app "in the background" of a notebook. The SystemExit it
    raises escapes the task and stops the loop itself; in a kernel, the kernel dies and
    this coroutine never returns.
    """
    import uvicorn

    holder, port = _taken_port()
    try:
        config = uvicorn.Config(_noop_app, host="127.0.0.1", port=port, log_level="critical")
        asyncio.get_running_loop().create_task(uvicorn.Server(config).serve())
        await asyncio.sleep(wait_s)
        return "the loop is still running"
    finally:
        holder.close()


def sync_helper() -> str:
    """The shape nest_asyncio exists for: sync code that runs a coroutine to completion."""
    coro = asyncio.sleep(0.2, result="helper: done")
    try:
        return asyncio.run(coro)
    except RuntimeError as exc:
        return f"helper: RuntimeError: {exc}"
    finally:
        coro.close()  # never awaited when asyncio.run refused it: no RuntimeWarning


def interleaving() -> list[str]:
    """The event order of a caller whose sync helper runs a coroutine while another task ticks."""
    log: list[str] = []

    async def other_task() -> None:
        for i in range(3):
            log.append(f"other task: tick {i}")
            await asyncio.sleep(0.01)

    async def caller() -> None:
        other = asyncio.create_task(other_task())
        await asyncio.sleep(0)  # the other task takes its first tick
        log.append("caller: calls the sync helper")
        log.append(sync_helper())  # no await here: asyncio promises no other task runs
        log.append("caller: the helper returned")
        await other

    asyncio.run(caller())
    return log


def _trivial_tasks_s(n_tasks: int) -> float:
    """The best of three runs of `n_tasks` trivial tasks, in seconds."""

    async def bench() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(n_tasks)))
        return time.perf_counter() - started

    return min(asyncio.run(bench()) for _ in range(3))


async def deadline_around_nested_run(limit: float = 0.05, work: float = 0.3) -> dict[str, Any]:
    """What an ``asyncio.timeout`` does to a nested, synchronous ``asyncio.run``."""
    started, outcome = time.perf_counter(), "the block ended normally, and so did the next await"
    try:
        async with asyncio.timeout(limit):  # noqa: ASYNC100 - the missing checkpoint is the demonstration
            asyncio.run(asyncio.sleep(work))  # a nested, synchronous run
        await asyncio.sleep(0)
    except TimeoutError:
        outcome = "TimeoutError"
    except asyncio.CancelledError:
        outcome = "the block ended normally; the next await raised CancelledError"
    return {"limit_s": limit, "work_s": work, "elapsed_s": time.perf_counter() - started, "outcome": outcome}


async def _anyio_run_inside() -> str:
    import anyio

    try:
        anyio.run(anyio.sleep, 0)
        return "ran"
    except RuntimeError as exc:
        return f"RuntimeError: {exc}"


def _patch_uvloop() -> str:
    import nest_asyncio
    import uvloop

    loop = uvloop.new_event_loop()
    try:
        nest_asyncio.apply(loop)
        return "patched"
    except ValueError as exc:
        return f"ValueError: {exc}"
    finally:
        loop.close()


def nest_asyncio_effects(bench_tasks: int = 10_000) -> dict[str, Any]:
    """What ``nest_asyncio.apply()`` changes, observed before and after applying it.

    It patches the asyncio module of the whole process, so run it in a fresh interpreter.
    Returns a JSON-serializable report: the event order of a caller whose *sync* helper
    runs a coroutine (``asyncio.run`` inside a running loop), what the patch replaced, what
    becomes of an ``asyncio.timeout`` around such a call, whether ``anyio.run`` and a uvloop
    loop accept it, and the time to run `bench_tasks` trivial tasks before and after.
    """
    import nest_asyncio

    report: dict[str, Any] = {"before": interleaving(), "bench_before_s": _trivial_tasks_s(bench_tasks)}
    original_run, original_task = asyncio.run, asyncio.Task
    nest_asyncio.apply()
    report["replaced"] = {
        "asyncio.run": asyncio.run is not original_run,
        "asyncio.Task (C) -> pure-Python Task": original_task is not asyncio.Task
        and asyncio.Task is asyncio.tasks._PyTask,  # type: ignore[attr-defined]
    }
    report["after"] = interleaving()
    report["deadline"] = asyncio.run(deadline_around_nested_run())
    report["anyio.run"] = asyncio.run(_anyio_run_inside())
    report["uvloop"] = _patch_uvloop()
    report["bench_after_s"] = _trivial_tasks_s(bench_tasks)
    report["bench_tasks"] = bench_tasks
    return report
