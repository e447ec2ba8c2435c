"""support.attacks: raw-socket requests against a real uvicorn server, each bounded in time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.attacks import exchange, hang_up, huge_header, idle_close_s, request_bytes, slow_body
from support.serve import RunningServer, serve_in_thread
from tests.conftest import wait_until

SEEN: list[dict[str, Any]] = []  # what the app received: path, body, whether the client left


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the path and body it was sent; notes a client that left before the answer."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    record = {"path": scope["path"], "raw_path": scope["raw_path"].decode(), "body": body.decode(), "left": False}
    SEEN.append(record)
    if scope["path"] == "/slow":
        try:
            async with asyncio.timeout(2):
                record["left"] = (await receive())["type"] == "http.disconnect"
        except TimeoutError:
            pass
    payload = json.dumps(record).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(payload))]})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(echo, http="h11", h11_max_incomplete_event_size=16 * 1024, timeout_keep_alive=1) as running:
        yield running


def test_request_bytes_send_the_path_exactly_as_given(server: RunningServer) -> None:
    answer = exchange(server.host, server.port, request_bytes("POST", "/v1/%63hat", body={"a": 1}))
    assert answer.status == 200 and not answer.closed
    assert answer.json()["raw_path"] == "/v1/%63hat" and answer.json()["path"] == "/v1/chat"
    assert json.loads(answer.json()["body"]) == {"a": 1}
    assert answer.header("content-length") == str(len(answer.body))


def test_a_header_over_the_servers_limit_is_refused(server: RunningServer) -> None:
    small = exchange(server.host, server.port, huge_header("/", 1024))
    large = exchange(server.host, server.port, huge_header("/", 1024 * 1024))
    assert small.status == 200
    assert large.status == 400 or (large.status is None and large.closed)


def test_a_trickled_body_arrives_whole_when_the_server_waits(server: RunningServer) -> None:
    answer = slow_body(server.host, server.port, "/", b"abcd", bytes_per_send=1, delay_s=0.05)
    assert answer.status == 200 and answer.json()["body"] == "abcd"
    assert answer.elapsed_s >= 3 * 0.05  # three pauses between four one-byte sends


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(server: RunningServer) -> None:
    closed_after = idle_close_s(server.host, server.port, first=request_bytes("GET", "/"), bound_s=10)
    # timeout_keep_alive=1, armed when the server finished its answer: a moment before this
    # client had read it, so the client's clock can show a hair under 1 s (CI: 0.9998 s)
    assert closed_after is not None and closed_after >= 0.9


def test_a_connection_that_never_sends_a_byte_outlives_the_keep_alive_timeout(server: RunningServer) -> None:
    """uvicorn arms its keep-alive timer only after a response: a silent connection is held."""
    assert idle_close_s(server.host, server.port, bound_s=2.5) is None


def test_hang_up_leaves_before_the_answer(server: RunningServer) -> None:
    SEEN.clear()
    started = time.perf_counter()
    hang_up(server.host, server.port, request_bytes("GET", "/slow"), after_s=0.2)
    assert time.perf_counter() - started < 2  # it did not wait for the answer
    wait_until(lambda: SEEN and SEEN[-1]["left"], timeout=5)


def test_held_connections_stay_open_and_close_after_the_block(server: RunningServer) -> None:
    from support.attacks import held_connections

    with held_connections(server.host, server.port, 3) as sockets:
        assert len(sockets) == 3 and all(s.fileno() >= 0 for s in sockets)
    assert all(s.fileno() == -1 for s in sockets)
