"""Run code that a notebook's own event loop cannot host, and bring back what happened.

A Jupyter kernel executes cells on a running asyncio loop. Some demonstrations patch
asyncio for the whole process (``nest_asyncio.apply()``) or end the interpreter
(uvicorn's ``sys.exit()`` on a taken port). They run somewhere else:

- `run_python`: a fresh interpreter (project root importable), output captured;
- `run_command`: any command-line tool as CI runs it (no colours), its output and exit status shown;
- `run_pytest`: test files written to a temporary directory, run by pytest in a fresh interpreter;
- `run_in_fresh_kernel`: a cell in a fresh Jupyter kernel, and whether the kernel survived.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROJECT_ROOT", "KernelRun", "PytestRun", "run_command", "run_in_fresh_kernel", "run_pytest", "run_python"]

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
        [sys.executable, *args],
        cwd=cwd,
        env=_env(unset, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Variables that make tools colour their output even when it is captured.
_FORCE_COLOUR = ("FORCE_COLOR", "CLICOLOR_FORCE", "MYPY_FORCE_COLOR", "PY_COLORS")


def run_command(
    *argv: str, cwd: str | Path = PROJECT_ROOT, echo: bool = True, timeout: float = 600.0
) -> subprocess.CompletedProcess[str]:
    """Run a command-line tool the way CI or pre-commit would, and (with `echo`) print what it said.

    Colours are turned off (``NO_COLOR``, ``TERM=dumb``, the force-colour variables
    removed) so the output reads the same in a notebook, a log and a stored output. The
    printed text is stdout then stderr, followed by ``[exit status N]``: the exit status
    is part of a linter's answer. The returned process keeps the two streams apart.
    """
    env = _env(_FORCE_COLOUR, {"NO_COLOR": "1", "TERM": "dumb"})
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if echo:
        print((done.stdout + done.stderr).rstrip())
        print(f"[exit status {done.returncode}]")
    return done


@dataclass(frozen=True)
class PytestRun:
    """What pytest reported for a set of test files."""

    returncode: int
    stdout: str
    results: list[str]  # "test_file.py::test_name PASSED", in the order pytest ran them
    failures: list[str]  # pytest's short summary lines: "FAILED test_file.py::test_name - Error: message"
    summary: str  # the counts of the last line, e.g. "1 failed, 3 passed"


def run_pytest(files: Mapping[str, str], *, timeout: float = 300.0) -> PytestRun:
    """Write `files` (name -> source) to a temporary directory and run pytest there in a fresh interpreter.

    A test suite's loops (one per test, under pytest-asyncio or ``TestClient``) are the
    subject, so the tests must run as a reader's suite would: in their own process, not
    inside a notebook's running loop. ``support`` stays importable.
    """
    with tempfile.TemporaryDirectory() as tests_dir:
        for name, text in files.items():
            Path(tests_dir, name).write_text(text)
        args = ("-m", "pytest", "-v", "--color=no", "-p", "no:cacheprovider", "--tb=no", "-rf", ".")
        done = run_python(*args, cwd=tests_dir, env={"COLUMNS": "120"}, timeout=timeout)
    lines = done.stdout.splitlines()
    counts = re.findall(r"(\d+) (failed|passed|error|errors|skipped)", lines[-1] if lines else "")
    return PytestRun(
        returncode=done.returncode,
        stdout=done.stdout,
        results=[" ".join(line.split()[:2]) for line in lines if "::" in line and not line.startswith("FAILED")],
        failures=[line for line in lines if line.startswith("FAILED")],
        summary=", ".join(" ".join(count) for count in counts),
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
        kernel_name=kernel_name,
        cwd=str(PROJECT_ROOT),
        env=_env(()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
