"""support.bench.processes: the bundled upstream in a child process, and stopping children within a bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from support.bench import procfs
from support.bench.errors import BenchError
from support.bench.processes import start_upstream, stop_process

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def upstream_children() -> list[int]:
    """This process's children that run the bundled upstream."""
    return [pid for pid in procfs.children(os.getpid()) if b"support.upstream" in procfs.cmdline(pid)]


def test_start_upstream_answers_models_and_stop_reaps_it() -> None:
    upstream = start_upstream(latency_s=0.01)
    try:
        assert upstream.base_url.startswith("http://127.0.0.1:") and upstream.base_url.endswith("/v1")
        assert upstream.pid == upstream.process.pid and upstream.pid in upstream_children()
        response = httpx.get(upstream.base_url + "/models", headers={"Authorization": "Bearer k"}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "list" and response.json()["data"]
    finally:
        upstream.stop()
    assert upstream.process.returncode == -signal.SIGTERM  # stopped by SIGTERM, and reaped
    assert upstream.pid not in upstream_children()
    with pytest.raises(httpx.ConnectError):  # nothing listens there any more
        httpx.get(upstream.base_url + "/models", timeout=5)


def test_a_bad_argument_raises_bench_error_without_waiting_out_the_timeout() -> None:
    before = upstream_children()
    started = time.monotonic()
    with pytest.raises(BenchError, match="the upstream did not start"):
        start_upstream(latency_s=0.01, extra_args=("--fault", "explode"), startup_timeout_s=120)
    # The child's exit ends the wait (it would otherwise last the whole 120 s): the bound is
    # the timeout, not the machine's speed.
    assert time.monotonic() - started < 60
    assert upstream_children() == before  # reaped, nothing left behind


def test_stop_process_terminates_a_well_behaved_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(child, timeout_s=30)
    assert child.returncode == -signal.SIGTERM
    stop_process(child)  # already reaped: nothing to do
    assert child.returncode == -signal.SIGTERM


def test_stop_process_kills_a_child_that_ignores_sigterm_within_the_bound() -> None:
    child = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"  # SIGTERM is ignored now
        bound_s = 0.5
        started = time.monotonic()
        stop_process(child, timeout_s=bound_s)
        elapsed = time.monotonic() - started
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL  # SIGTERM did nothing; SIGKILL after the bound
    assert bound_s <= elapsed < 30  # the whole bound first, then the kill (not the child's own 60 s)
