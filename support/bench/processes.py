"""Child processes for measurements: the bundled upstream in its own process, and cleanup.

A measurement's servers run in processes of their own so that the load generator, the
service and the upstream share the machine's cores as they would in production. Every
child dies with its parent (even a SIGKILLed one), and is stopped with a bounded wait.
"""

from __future__ import annotations

import contextlib
import ctypes
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BenchError

__all__ = ["PROJECT_ROOT", "UpstreamProcess", "die_with_parent", "start_child", "start_upstream", "stop_process"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def die_with_parent() -> None:
    """In the child, Linux only: get SIGTERM when the parent dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the child may outlive its parent
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 5.0) -> None:
    """Send `sig` and reap the process; kill it if it has not exited within `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class UpstreamProcess:
    """``python -m support.upstream`` running in a child process."""

    process: subprocess.Popen[bytes]
    base_url: str  # ends in /v1

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


def _wait_until_accepting(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    # The upstream prints its URL once the port is bound, but before uvicorn listens on
    # it: until then a connection is refused.
    host, _, port = url.removeprefix("http://").removesuffix("/v1").rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"the upstream at {url} never accepted a connection (exit code {proc.poll()})"
                ) from None
            time.sleep(0.02)


def start_child(
    cmd: list[str], *, startup_timeout_s: float, pass_fds: tuple[int, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `cmd` in the project's root, in its own session (a Ctrl-C in the terminal reaches
    the caller only, which stops the child itself), dying with its parent; return it and the
    first line it prints ("" if none within `startup_timeout_s`). Stopped if reading fails."""
    proc = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )  # prctl only: safe before exec
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], startup_timeout_s)
        return proc, proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    except BaseException:
        stop_process(proc)
        raise


def start_upstream(
    *,
    latency_s: float,
    ttft_s: float = 0.2,
    chunk_delay_s: float = 0.02,
    log_level: str = "warning",
    extra_args: tuple[str, ...] = (),
    startup_timeout_s: float = 30.0,
) -> UpstreamProcess:
    """Start the bundled upstream on a free loopback port; return once it accepts connections."""
    cmd = [
        sys.executable,
        "-m",
        "support.upstream",
        "--port",
        "0",
        "--latency",
        str(latency_s),
        "--ttft",
        str(ttft_s),
        "--chunk-delay",
        str(chunk_delay_s),
        "--log-level",
        log_level,
        *extra_args,
    ]
    proc, line = start_child(cmd, startup_timeout_s=startup_timeout_s)
    try:
        if not line.startswith("bundled upstream on "):
            raise BenchError(f"the upstream did not start (first line {line!r}, exit code {proc.poll()})")
        url = line.split()[3]
        _wait_until_accepting(url, proc, startup_timeout_s)
    except BaseException:
        stop_process(proc)
        raise
    # Keep draining its stdout so that a chatty child can never block on a full pipe.
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [sys.stderr.buffer.write(b) for b in stdout], daemon=True).start()
    return UpstreamProcess(proc, url)
