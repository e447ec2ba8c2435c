"""SIGTERM is bounded: work in flight gets ``SERVICE_GRACEFUL_SHUTDOWN_S``, then the process exits.

The service in its own process (``python -m support.apps.hardened``), as an orchestrator
runs it. uvicorn without ``timeout_graceful_shutdown`` waits for every response to finish:
a long stream, or a client that sent its headers and never its body, kept the process
alive until the orchestrator's SIGKILL, which skips the cleanup (upstream streams closed,
the client closed by the lifespan). With the bound, uvicorn cancels what is left: a
stream's client gets a last ``error`` event (``shutting_down``), then the connection ends.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from support.sse import parse_events
from support.upstream import RunningUpstream, upstream_in_thread
from tests.apps.hardened.conftest import AUTH, BODY, TOKEN_A, UPSTREAM_KEY, assert_error_object, service_process
from tests.conftest import wait_until

BOUND_S = 1  # SERVICE_GRACEFUL_SHUTDOWN_S for the test
MARGIN_S = 4.0  # the lifespan's shutdown, the interpreter's exit, and a busy machine


@pytest.fixture(scope="module")
def endless_upstream() -> Iterator[RunningUpstream]:
    """A stream's full reply takes 30 s (300 tokens, 0.1 s apart): it is in flight whenever SIGTERM comes."""
    with upstream_in_thread(
        api_key=UPSTREAM_KEY, latency=0.05, ttft=0.02, chunk_delay=0.1, reply_tokens=300
    ) as running:
        yield running


def stalled_body(port: int) -> socket.socket:
    """A request whose headers promise 100 bytes of body, of which 10 ever arrive."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN_A}\r\n"
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"messages'.encode()
    )
    return sock


def connection_ended(sock: socket.socket) -> bool:
    """True once the server has closed the connection (whatever it said before closing)."""
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def read_until_the_end(lines: Iterator[str], give_up_at: float) -> list[str]:
    """The stream's remaining lines until the server ends it (cleanly or mid-chunk), or `give_up_at`."""
    rest: list[str] = []
    try:
        for line in lines:
            rest.append(line)
            if time.monotonic() > give_up_at:
                break
    except httpx.RemoteProtocolError:  # cut mid-chunk: "incomplete chunked read"
        pass
    return rest


def test_sigterm_ends_a_stream_and_a_stalled_body_within_the_bound(endless_upstream: RunningUpstream) -> None:
    limits = {
        "SERVICE_GRACEFUL_SHUTDOWN_S": str(BOUND_S),
        "SERVICE_DEADLINE_S": "60",  # neither the deadline nor the body timeout ends them first
        "SERVICE_BODY_TIMEOUT_S": "60",
    }
    before = len(endless_upstream.journal)
    with service_process(endless_upstream, env=limits) as service:
        stalled = stalled_body(service.port)
        try:
            with (
                httpx.Client(base_url=service.base_url, headers=AUTH, timeout=10) as client,
                client.stream("POST", "/v1/chat/stream", json=BODY) as response,
            ):
                assert response.status_code == 200
                lines = response.iter_lines()
                deltas = 0
                while deltas < 2:
                    deltas += next(lines).startswith("data: ")
                signalled = time.monotonic()
                service.process.send_signal(signal.SIGTERM)
                rest = read_until_the_end(lines, give_up_at=signalled + BOUND_S + MARGIN_S)
                stream_ended_after = time.monotonic() - signalled
            returncode = service.process.wait(timeout=BOUND_S + MARGIN_S)
            exited_after = time.monotonic() - signalled
            assert connection_ended(stalled)
        finally:
            stalled.close()
    assert returncode in (0, -signal.SIGTERM), returncode  # uvicorn re-raises the signal it handled
    assert exited_after < BOUND_S + MARGIN_S, exited_after
    assert BOUND_S - 0.2 <= stream_ended_after < BOUND_S + MARGIN_S, stream_ended_after  # served until the bound
    assert "event: done" not in rest, rest[-3:]  # the stream did not run to its 30 s end
    events = parse_events("\n".join(rest))
    assert events[-1][0] == "error", rest[-3:]  # and it says why it ends
    assert assert_error_object(events[-1][1], response.headers["x-request-id"])["code"] == "shutting_down"
    (entry,) = endless_upstream.journal.entries()[before:]
    wait_until(lambda: entry.finished_at, timeout=2.0, what="the upstream to see the stream closed")
    assert entry.outcome == "disconnected" and entry.completion_tokens < 300, entry
    assert entry.finished_at is not None and entry.duration is not None and entry.duration < BOUND_S + MARGIN_S
