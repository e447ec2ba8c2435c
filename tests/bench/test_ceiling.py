"""``python -m support.bench.ceiling`` end to end: a table, a JSON report, no upstream left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.bench.procfs import cmdline
from tests.conftest import ROOT, cli_error_line, wait_until

PROG = "python -m support.bench.ceiling"

HEADER = (
    "| endpoint | concurrency | requests | wall s | throughput req/s | ideal req/s | ratio | p50 ms | p95 ms "
    "| p99 ms | added p99 ms | errors |"
)


def bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "support.bench.ceiling", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def gone(pid: int) -> bool:
    """True once `pid` no longer runs the upstream (exited, or reused by something else), within 5 s."""
    return wait_until(lambda: b"support.upstream" not in cmdline(pid), timeout=5.0, what=f"upstream pid {pid} to exit")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    report = tmp_path_factory.mktemp("bench") / "bench.json"
    done = bench("--latency", "0.05", "--concurrency", "1,5", "--requests", "20", "--json", str(report))
    return done, report


def test_exits_0_and_prints_the_table(run):
    done, _ = run
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(HEADER)
    assert len([line for line in lines if line.startswith("| chat |")]) == 2


def test_writes_the_json_report(run):
    _, report = run
    data = json.loads(report.read_text())
    assert data["upstream"]["url"].startswith("http://127.0.0.1:") and data["upstream"]["latency_s"] == 0.05
    levels = data["levels"]
    assert [level["concurrency"] for level in levels] == [1, 5]
    for level in levels:
        assert level["endpoint"] == "chat"
        assert level["completed"] == level["ok"] == 20 and level["errors"] == 0
        assert level["statuses"] == {"200": 20}
        assert level["ideal_rps"] == pytest.approx(level["concurrency"] / 0.05)
        assert 0 < level["ratio"] <= 1.05  # a closed loop cannot beat concurrency / latency
        assert level["p50_s"] >= 0.05 - 0.002 and level["p99_s"] >= level["p50_s"]
        for key in ("wall_s", "throughput_rps", "p95_s", "added_p99_ms", "upstream_cpu_pct", "loadgen_cpu_pct"):
            assert isinstance(level[key], float), key


def test_the_upstream_process_is_gone_afterwards(run):
    _, report = run
    pid = json.loads(report.read_text())["upstream"]["pid"]
    assert pid != os.getpid()
    assert gone(pid)


def test_help_and_bad_arguments():
    done = bench("--help", timeout=30)
    assert done.returncode == 0 and "--concurrency" in done.stdout and "--json" in done.stdout
    done = bench("--concurrency", "0,5", timeout=30)
    assert done.returncode == 2 and "concurrency" in done.stderr
    assert "concurrency levels must be integers >= 1" in cli_error_line(done, PROG)


def test_zero_latency_is_a_one_line_usage_error():
    error = cli_error_line(bench("--latency", "0", timeout=30), PROG)
    assert error == f"{PROG}: error: --latency must be > 0 (the ideal throughput is concurrency / latency)"


def connections_to(port: int) -> int:
    """Established TCP connections (IPv4, this network namespace) whose remote end is 127.0.0.1:`port`."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    remote = f"0100007F:{port:04X}"  # 127.0.0.1, as /proc/net/tcp writes it (little-endian address)
    return sum(1 for row in rows if row.split()[2] == remote and row.split()[3] == "01")  # 01 = ESTABLISHED


def start_bench_and_wait_for_upstream() -> tuple[subprocess.Popen[str], int]:
    """A 4-client, 400-request run (minutes of work); returned once its clients are talking to the upstream."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "support.bench.ceiling", "--latency", "0.5", "--concurrency", "4", "--requests", "400"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stderr.readline()  # "upstream pid N on URL ...", printed once it accepts connections
    assert first.startswith("upstream pid "), first
    port = int(first.split()[4].removesuffix("/v1").rpartition(":")[2])
    level = proc.stderr.readline()  # "chat: 400 requests at concurrency 4 ...": the load starts
    assert level.startswith("chat: 400 requests at concurrency 4"), level
    # Into the measurement: a positive signal instead of a fixed sleep. The warm-up opens the
    # four keep-alive connections the whole level then uses.
    wait_until(lambda: connections_to(port) >= 4, what="four client connections to the upstream")
    return proc, int(first.split()[2])


def test_ctrl_c_still_stops_the_upstream():
    proc, pid = start_bench_and_wait_for_upstream()
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert gone(pid)


def test_the_upstream_dies_with_a_killed_bench():
    proc, pid = start_bench_and_wait_for_upstream()
    proc.kill()  # SIGKILL: no cleanup code runs in the bench
    proc.communicate(timeout=15)
    assert gone(pid)
