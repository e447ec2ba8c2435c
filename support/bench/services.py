"""Start a pattern's service in its own uvicorn process, and read its process tree.

The parent binds the socket and the child inherits it (see `worker`), so there is no
port to race for, and N worker processes share it as in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from . import procfs
from .errors import BenchError
from .patterns import SERVICE_ENV, Pattern
from .processes import PROJECT_ROOT, die_with_parent, stop_process


@dataclass
class Service:
    pattern: Pattern
    process: subprocess.Popen[bytes]
    base_url: str
    sock: socket.socket

    def pids(self) -> list[int]:
        """The serving processes: the workers when there are several, else uvicorn itself."""
        if self.pattern.workers == 1:
            return [self.process.pid]
        # multiprocessing also starts a resource tracker next to the workers: leave it out
        return [pid for pid in procfs.children(self.process.pid) if b"resource_tracker" not in procfs.cmdline(pid)]

    def reset_peak_rss(self) -> None:
        for pid in self.pids():
            procfs.reset_peak_rss(pid)

    def peak_rss_mib(self) -> float:
        """Peak resident memory since the last reset, summed over the serving processes."""
        return sum(procfs.peak_rss_mib(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        """CPU time used so far by the serving processes."""
        return sum(procfs.cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        # SIGINT: uvicorn's graceful shutdown, lifespan included. A blocked loop would drain
        # its backlog first: don't wait long.
        stop_process(self.process, signal.SIGINT, timeout_s=3)
        self.sock.close()


def start_service(
    pattern: Pattern,
    upstream_url: str,
    *,
    startup_timeout: float = 30.0,
    api_key: str = "bench-upstream-key",
    model: str | None = None,
) -> Service:
    """Serve `pattern.app` (instrumented) against the upstream at `upstream_url`; wait until it answers.

    The service calls the upstream with `api_key` (the bundled upstream takes any) and asks
    for `model` (default: ``SERVICE_ENV``'s)."""
    assert pattern.app is not None, "the upstream alone has no service"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = (
        os.environ
        | SERVICE_ENV
        | pattern.env
        | ({} if model is None else {"OPENAI_MODEL": model})
        | {
            "OPENAI_BASE_URL": upstream_url,
            "OPENAI_API_KEY": api_key,
            "BENCH_APP": pattern.app,
        }
    )
    cmd = [sys.executable, "-m", "support.bench.worker", str(sock.fileno()), str(pattern.workers)]
    stderr = None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL  # BENCH_DEBUG=1: see the service's errors
    process = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        pass_fds=[sock.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )  # prctl only: safe before exec
    service = Service(pattern, process, base_url, sock)
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            if (
                httpx.get(base_url + "/_bench/stats", timeout=2).status_code == 200
                and len(service.pids()) == pattern.workers
            ):
                return service
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise BenchError(f"{pattern.name}: the service did not start (exit code {process.poll()})")
        time.sleep(0.05)
