"""Attacks on the limits before a request: huge heads, idle and slow connections, floods, descriptors.

Each runs against ``python -m support.apps.hardened`` in its own process (the limits are
uvicorn's options and ``connections.BoundedH11Protocol``, which only the real server applies),
over loopback, bounded in time, with small limits so each ends in a second or two:

- four unfinished 16 MiB request heads are refused after at most ``SERVICE_MAX_HEADER_BYTES``
  (a 400, or the connection closed), and the service's RSS does not grow;
- a connection that sends nothing, or trickles its head a byte at a time, is closed after
  ``SERVICE_KEEP_ALIVE_S``;
- a body slower than ``SERVICE_BODY_TIMEOUT_S`` gets a 408 (OpenAI-shaped, connection
  closed) and costs no upstream call;
- past ``SERVICE_MAX_CONNECTIONS`` uvicorn answers 503 and further connections are closed
  at once; when the flood goes, callers are served again;
- under a low descriptor limit, a flood of idle sockets locks callers out for one
  keep-alive timeout at most, and a limit too low for the settings stops startup.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from support.attacks import exchange, idle_close_s, request_bytes, slow_body
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    AUTH,
    BODY,
    UPSTREAM_KEY,
    UVICORN_COMMAND,
    ServiceProcess,
    assert_error_object,
    assert_no_secrets,
    service_process,
)
from tests.conftest import ROOT, cli_error_line, wait_until

KEEP_ALIVE_S = 1
BODY_TIMEOUT_S = 1
LIMITS = {
    "SERVICE_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
    "SERVICE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    "SERVICE_MAX_CONNECTIONS": "16",
}


@pytest.fixture(scope="module")
def limited(upstream: RunningUpstream) -> Iterator[ServiceProcess]:
    with service_process(upstream, env=LIMITS) as running:
        yield running


def served_now(service: ServiceProcess) -> bool:
    """A caller with a token gets a 200 from /v1/chat on a new connection, within 2 s."""
    try:
        return httpx.post(service.base_url + "/v1/chat", json=BODY, headers=AUTH, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def unfinished_head(host: str, port: int, size: int, outcome: list[str]) -> None:
    """Send a request head whose one header never ends, 1 MiB at a time, for at most 5 s."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        started, sent = time.monotonic(), 0
        try:
            while sent < size and time.monotonic() - started < 5:
                sock.sendall(b"a" * (1 << 20))
                sent += 1 << 20
        except OSError:
            outcome.append(f"closed after {sent >> 20} MiB")
            return
        outcome.append(f"all {sent >> 20} MiB taken")


def test_huge_unfinished_heads_are_refused_without_memory_growth(limited: ServiceProcess) -> None:
    before = limited.rss_kib()
    outcome: list[str] = []
    threads = [
        threading.Thread(target=unfinished_head, args=(limited.host, limited.port, 16 << 20, outcome)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert served_now(limited)  # the server has dealt with the heads by now, whatever it did
    grown_kib = limited.rss_kib() - before
    assert grown_kib < 8 * 1024, f"RSS grew by {grown_kib} KiB ({outcome})"
    assert len(outcome) == 4 and all(o.startswith("closed") for o in outcome), outcome


def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout(limited: ServiceProcess) -> None:
    waited = idle_close_s(limited.host, limited.port, bound_s=KEEP_ALIVE_S + 3)
    assert waited is not None, "still open"
    assert KEEP_ALIVE_S * 0.8 <= waited < KEEP_ALIVE_S + 2, waited


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(limited: ServiceProcess) -> None:
    probe = request_bytes("GET", "/healthz")
    waited = idle_close_s(limited.host, limited.port, first=probe, bound_s=KEEP_ALIVE_S + 3)
    assert waited is not None and waited < KEEP_ALIVE_S + 2, waited


def test_a_head_trickled_byte_by_byte_is_closed_after_the_keep_alive_timeout(limited: ServiceProcess) -> None:
    with socket.create_connection((limited.host, limited.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        closed_after = None
        while closed_after is None and time.monotonic() - started < KEEP_ALIVE_S + 3:
            sock.settimeout(0.2)  # one byte every 0.2 s: each would reset a timer that stops at the first byte
            try:
                if sock.recv(1024) == b"":
                    closed_after = time.monotonic() - started
            except TimeoutError:
                try:
                    sock.sendall(b"a")
                except OSError:
                    closed_after = time.monotonic() - started
            except OSError:
                closed_after = time.monotonic() - started
    assert closed_after is not None, "the trickle kept the connection open"
    assert KEEP_ALIVE_S * 0.8 <= closed_after < KEEP_ALIVE_S + 2, closed_after


def test_a_body_slower_than_the_limit_gets_408_and_no_upstream_call(
    limited: ServiceProcess, upstream: RunningUpstream
) -> None:
    before = len(upstream.journal)
    body = request_bytes("POST", "/v1/chat", body=BODY).partition(b"\r\n\r\n")[2]
    headers = {**AUTH, "x-request-id": "slow-body-408", "Content-Type": "application/json"}
    answer = slow_body(
        limited.host, limited.port, "/v1/chat", body, headers=headers, bytes_per_send=2, delay_s=0.2, bound_s=5
    )
    assert answer.status == 408, (answer.head, answer.body)
    assert answer.header("connection") == "close"
    assert assert_error_object(answer.json(), "slow-body-408")["code"] == "request_timeout"
    assert answer.elapsed_s < BODY_TIMEOUT_S + 2, answer.elapsed_s
    assert len(upstream.journal) == before
    line = wait_until(
        lambda: [line for line in limited.request_lines() if line["request_id"] == "slow-body-408"],
        what="the 408's log line",
    )[0]
    assert (line["status"], line["error"]) == (408, "request_timeout")


def test_the_limits_leak_no_secret(limited: ServiceProcess) -> None:
    assert_no_secrets(limited.output())


def test_past_the_connection_limit_uvicorn_answers_503_and_serves_again_after(upstream: RunningUpstream) -> None:
    chat = request_bytes("POST", "/v1/chat", headers=AUTH, body=BODY)
    with service_process(upstream, env={"SERVICE_MAX_CONNECTIONS": "4", "SERVICE_KEEP_ALIVE_S": "5"}) as service:
        before = len(upstream.journal)
        with ExitStack() as flood:
            for _ in range(3):  # three connections held open, sending nothing
                flood.enter_context(socket.create_connection((service.host, service.port)))
            refused = exchange(service.host, service.port, chat, bound_s=5)  # the 4th reaches the limit
            assert refused.status == 503 and refused.body == b"Service Unavailable", refused.head
            assert refused.header("content-type") == "text/plain; charset=utf-8"  # uvicorn's, not the service's
            flood.enter_context(socket.create_connection((service.host, service.port)))  # a 4th held open
            beyond = exchange(service.host, service.port, chat, bound_s=5)
            assert beyond.status is None and beyond.closed, beyond.head  # the 5th: closed at once, unanswered
        assert len(upstream.journal) == before
        wait_until(lambda: served_now(service), timeout=5, what="a caller served after the flood")
        assert "Exceeded concurrency limit." in service.output()


def test_idle_sockets_under_a_low_descriptor_limit_lock_callers_out_for_one_timeout_at_most(
    upstream: RunningUpstream,
) -> None:
    settings = {"SERVICE_MAX_CONNECTIONS": "64", "SERVICE_MAX_CONCURRENCY": "8", "SERVICE_MAX_QUEUE": "8"}
    with (
        service_process(
            upstream, env=settings | {"SERVICE_KEEP_ALIVE_S": "1"}, wrapper=("prlimit", "--nofile=160:160")
        ) as service,
        ExitStack() as flood,
    ):
        for _ in range(200):  # more sockets than the process has descriptors
            flood.enter_context(socket.create_connection((service.host, service.port)))
        started = time.monotonic()
        wait_until(lambda: served_now(service), timeout=6, what="a caller served while the flood holds its sockets")
        assert time.monotonic() - started < KEEP_ALIVE_S + 4


def test_a_descriptor_limit_too_low_for_the_settings_stops_startup() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "SERVICE_"))}
    env |= {"OPENAI_API_KEY": UPSTREAM_KEY, "SERVICE_TOKENS": "svc-token-x", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    command = ["prlimit", "--nofile=100:100", sys.executable, "-m", "support.apps.hardened", "--port", "0"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the service started with 100 descriptors for 512 connections")
    error = cli_error_line(done, "python -m support.apps.hardened")
    assert "file-descriptor limit (100)" in error and "SERVICE_MAX_CONNECTIONS" in error, error


def test_the_documented_uvicorn_command_line_applies_the_same_bounds(upstream: RunningUpstream) -> None:
    """``__main__``'s docstring gives the uvicorn command line equivalent to ``python -m``."""
    flags = [
        "--http",
        "support.apps.hardened.connections:BoundedH11Protocol",
        "--timeout-keep-alive",
        str(KEEP_ALIVE_S),
    ]
    flags += ["--h11-max-incomplete-event-size", "16384"]
    with service_process(upstream, *flags, command=UVICORN_COMMAND) as service:
        waited = idle_close_s(service.host, service.port, bound_s=KEEP_ALIVE_S + 3)
        assert waited is not None and waited < KEEP_ALIVE_S + 2, waited
        unfinished = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 20_000
        assert exchange(service.host, service.port, unfinished, bound_s=5).status == 400
