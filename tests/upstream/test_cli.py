"""``python -m support.upstream``: help, a real run driven by the SDK, clean failures."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from support.upstream.faults import KINDS
from tests.conftest import ROOT, cli_error_line

PROG = "python -m support.upstream"

BANNER = re.compile(r"^bundled upstream on http://(?P<host>[\d.]+):(?P<port>\d+)/v1 \(latency [\d.]+ s\)$")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSTREAM_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "support.upstream", *args],
        cwd=ROOT,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_fault_kinds() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m support.upstream")
    for kind in KINDS:
        assert kind in result.stdout
    for option in ("--port", "--latency", "--fault", "--api-key", "--seed", "--capacity", "x-upstream-fault"):
        assert option in result.stdout
    assert "more wait their turn (queued, not refused)" in " ".join(result.stdout.split())


def start_cli(*extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start the CLI on a free port (fast replies; `extra` options last, so they win) and read its banner."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "support.upstream",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--ttft",
            "0",
            "--chunk-delay",
            "0",
            "--log-level",
            "info",
            *extra,
        ],
        cwd=ROOT,
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    match = BANNER.match(line)
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; rc={proc.wait()}; {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, f"http://{match['host']}:{match['port']}/v1"


# SIGTERM: uvicorn shuts down gracefully, then re-raises the signal it captured, so the
# process ends *by* SIGTERM (-15), as process managers expect. Ctrl-C (SIGINT) would
# re-raise KeyboardInterrupt; the CLI turns that into exit code 130 without a traceback.
@pytest.mark.parametrize(("sig", "returncode"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_serves_the_sdk_and_stops_cleanly(sig: signal.Signals, returncode: int) -> None:
    proc, base_url = start_cli()
    try:
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        assert port != 0
        with OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            completion = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert completion.choices[0].message.content
        started = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == returncode
        assert time.monotonic() - started < 5
        stderr = proc.stderr.read()  # type: ignore[union-attr]
        assert "Traceback" not in stderr, stderr
        assert "Application shutdown complete." in stderr and "Finished server process" in stderr
        assert proc.stdout.read() == ""  # type: ignore[union-attr]
        with pytest.raises(OSError):  # the port is closed
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_taken_port_exits_1_with_cannot_bind() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        result = run_cli("--port", str(port))
    finally:
        holder.close()
    error = cli_error_line(result, PROG, returncode=1)
    assert error.startswith(f"{PROG}: error: cannot bind 127.0.0.1:{port}"), error


def test_invalid_fault_exits_2() -> None:
    result = run_cli("--port", "0", "--fault", "explode")
    assert "Invalid --fault: unknown fault kind 'explode'" in cli_error_line(result, PROG)
    result = run_cli("--port", "0", "--fault", "server_error;status=418")
    assert "server_error status must be one of [500, 502, 503]" in cli_error_line(result, PROG)


def test_negative_latency_exits_2() -> None:
    error = cli_error_line(run_cli("--port", "0", "--latency", "-1"), PROG)
    assert "--latency" in error and "greater than or equal to 0" in error


def test_invalid_environment_exits_2() -> None:
    error = cli_error_line(run_cli("--port", "0", env=clean_env(UPSTREAM_LATENCY="abc")), PROG)
    assert error.startswith(f"{PROG}: error: invalid environment variable: UPSTREAM_LATENCY: "), error


def stop_cli(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=5)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_capacity_queues_generations(how: str) -> None:
    """Capacity 1, latency 0.25 s: three concurrent calls take three latencies and never overlap."""
    if how == "option":
        proc, base_url = start_cli("--latency", "0.25", "--capacity", "1")
    else:
        proc, base_url = start_cli("--latency", "0.25", env=clean_env(UPSTREAM_CAPACITY="1"))

    async def three_calls() -> float:
        async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            started = time.monotonic()
            calls = [
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                for _ in range(3)
            ]
            await asyncio.gather(*calls)
            return time.monotonic() - started

    try:
        elapsed = asyncio.run(three_calls())
        entries = httpx.get(base_url.removesuffix("/v1") + "/_upstream/journal", timeout=5).json()["entries"]
    finally:
        stop_cli(proc)
    assert 0.75 <= elapsed < 1.2, elapsed
    spans = sorted((e["started_at"], e["finished_at"]) for e in entries)
    assert len(spans) == 3 and all(e["outcome"] == "ok" for e in entries)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))  # one at a time
    assert sorted(round(e["queued"] / 0.25) for e in entries) == [0, 1, 2]


def test_invalid_capacity_exits_2() -> None:
    error = cli_error_line(run_cli("--port", "0", "--capacity", "0"), PROG)
    assert "--capacity: Input should be greater than or equal to 1" in error, error
    error = cli_error_line(run_cli("--port", "0", env=clean_env(UPSTREAM_CAPACITY="many")), PROG)
    assert error.startswith(f"{PROG}: error: invalid environment variable: UPSTREAM_CAPACITY: "), error
