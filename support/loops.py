"""Run what a notebook's own event loop cannot host, and bring back what happened.

A Jupyter kernel executes cells on a running asyncio loop. ``asyncio.run()`` refuses to
start there, ``nest_asyncio.apply()`` would patch asyncio for the rest of the session,
and uvicorn's ``sys.exit()`` on a taken port, raised in a task, stops the loop and with
it the kernel. Notebook 05 shows each of these by running the code somewhere else:

- `run_python`: a fresh interpreter (project root importable), output captured;
- `run_in_fresh_kernel`: a cell in a fresh Jupyter kernel, and whether the kernel survived;
- `nest_asyncio_effects`, `uvicorn_on_taken_port`, `uvicorn_task_on_taken_port`: the
  demonstrations themselves. They patch or end the interpreter that runs them, so call
  them through `run_python` or `run_in_fresh_kernel`, never in a kernel you want to keep.
"""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KernelRun",
    "PROJECT_ROOT",
    "nest_asyncio_effects",
    "run_in_fresh_kernel",
    "run_python",
    "uvicorn_on_taken_port",
    "uvicorn_task_on_taken_port",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(unset: Iterable[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    removed = set(unset)
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def run_python(
    *args: str,
    unset: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: str | Path = PROJECT_ROOT,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` (this interpreter), capturing its output; ``support`` is importable.

    The child gets this process's environment without the variables named in `unset` (for
    example ``OPENAI_API_KEY``) and with `env` added. Output is captured rather than
    inherited because a kernel forwards whatever a child writes to its inherited file
    descriptors into whichever cell is running, at whatever moment it arrives.
    """
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(unset, env),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@dataclass(frozen=True)
class KernelRun:
    """What became of one cell run in a fresh kernel."""

    finished: bool  # the kernel reported the cell done (idle) before the timeout
    alive: bool  # the kernel process was still running afterwards
    output: str  # stream text, plus "ename: evalue" of an error


def run_in_fresh_kernel(code: str, *, timeout: float = 30.0, kernel_name: str = "python3") -> KernelRun:
    """Start a kernel, execute `code` as one cell, report whether the kernel lived through it.

    The kernel starts in the project root (``support`` importable) with its output sent to
    /dev/null; the kernel is shut down afterwards either way.
    """
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(
        kernel_name=kernel_name, cwd=str(PROJECT_ROOT), env=_env(()),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        msg_id = kc.execute(code)
        output: list[str] = []
        finished = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                if not km.is_alive():
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind == "error":
                output.append(f"{content['ename']}: {content['evalue']}\n")
            elif kind == "status" and content["execution_state"] == "idle":
                finished = True
                break
        if not finished:  # a dying kernel needs a moment to exit
            for _ in range(50):
                if not km.is_alive():
                    break
                time.sleep(0.1)
        return KernelRun(finished=finished, alive=km.is_alive(), output="".join(output))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- demonstrations (run them in a fresh interpreter or kernel) ---------------------------


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


def nest_asyncio_effects(bench_tasks: int = 10_000) -> dict[str, Any]:
    """What ``nest_asyncio.apply()`` changes, observed before and after applying it.

    It patches the asyncio module of the whole process, so run it in a fresh interpreter.
    Returns a JSON-serializable report: the event order of a caller whose *sync* helper
    runs a coroutine (``asyncio.run`` inside a running loop), what the patch replaced, what
    becomes of an ``asyncio.timeout`` around such a call, whether ``anyio.run`` and a uvloop
    loop accept it, and the time to run `bench_tasks` trivial tasks before and after.
    """
    import anyio
    import nest_asyncio
    import uvloop

    log: list[str] = []

    async def other_task() -> None:
        for i in range(3):
            log.append(f"other task: tick {i}")
            await asyncio.sleep(0.01)

    def sync_helper() -> str:  # the shape nest_asyncio exists for: sync code that runs a coroutine
        coro = asyncio.sleep(0.2, result="helper: done")
        try:
            return asyncio.run(coro)
        except RuntimeError as exc:
            return f"helper: RuntimeError: {exc}"
        finally:
            coro.close()  # never awaited when asyncio.run refused it: no RuntimeWarning

    async def caller() -> None:
        other = asyncio.create_task(other_task())
        await asyncio.sleep(0)  # the other task takes its first tick
        log.append("caller: calls the sync helper")
        log.append(sync_helper())  # no await here: asyncio promises no other task runs
        log.append("caller: the helper returned")
        await other

    async def bench() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(bench_tasks)))
        return time.perf_counter() - started

    async def deadline(limit: float = 0.05, work: float = 0.3) -> dict[str, Any]:
        started, outcome = time.perf_counter(), "the block ended normally, and so did the next await"
        try:
            async with asyncio.timeout(limit):
                asyncio.run(asyncio.sleep(work))  # a nested, synchronous run
            await asyncio.sleep(0)
        except TimeoutError:
            outcome = "TimeoutError"
        except asyncio.CancelledError:
            outcome = "the block ended normally; the next await raised CancelledError"
        return {"limit_s": limit, "work_s": work, "elapsed_s": time.perf_counter() - started, "outcome": outcome}

    async def anyio_run() -> str:
        try:
            anyio.run(anyio.sleep, 0)
            return "ran"
        except RuntimeError as exc:
            return f"RuntimeError: {exc}"

    report: dict[str, Any] = {}
    asyncio.run(caller())
    report["before"], log[:] = list(log), []
    report["bench_before_s"] = min(asyncio.run(bench()) for _ in range(3))

    original_run, original_task = asyncio.run, asyncio.Task
    nest_asyncio.apply()
    report["replaced"] = {
        "asyncio.run": asyncio.run is not original_run,
        "asyncio.Task (C) -> pure-Python Task": original_task is not asyncio.Task and asyncio.Task is asyncio.tasks._PyTask,
    }
    asyncio.run(caller())
    report["after"] = list(log)
    report["deadline"] = asyncio.run(deadline())
    report["anyio.run"] = asyncio.run(anyio_run())
    uv_loop = uvloop.new_event_loop()
    try:
        nest_asyncio.apply(uv_loop)
        report["uvloop"] = "patched"
    except ValueError as exc:
        report["uvloop"] = f"ValueError: {exc}"
    finally:
        uv_loop.close()
    report["bench_after_s"] = min(asyncio.run(bench()) for _ in range(3))
    report["bench_tasks"] = bench_tasks
    return report
