"""The streaming service behind each request-log middleware, served for real against the bundled upstream.

Timing claims compare one middleware with another on the same stream; what the upstream
did after a client left is read from its journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from support.apps import middleware
from support.logcapture import log_lines
from support.middleware_streams import parse_log
from support.serve import RunningServer, serve_in_thread
from support.sse import StreamEndpoint, read_stream
from support.threads import run_in, server_loop
from support.upstream import RunningUpstream, upstream_in_thread
from tests.conftest import MODEL, wait_until

REPLY_TOKENS = 20
BODY = {"prompt": "Stream me something."}


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningUpstream]:
    key = "test-" + secrets.token_urlsafe(12)
    with upstream_in_thread(api_key=key, ttft=0.05, chunk_delay=0.02, reply_tokens=REPLY_TOKENS) as up:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", up.base_url)
        monkeypatch.setenv("OPENAI_MODEL", MODEL)
        yield up


@contextlib.contextmanager
def served(kind: middleware.Middleware) -> Iterator[tuple[RunningServer, list[str]]]:
    # the log outlives the server, whose shutdown waits for a response's last line
    with log_lines(middleware.log.name) as lines, serve_in_thread(middleware.create_app(kind)) as server:
        yield server, lines


def logged(lines: list[str], count: int = 1) -> list[str]:
    """`lines` once it holds `count` (the pure ASGI line is written after the last byte went out)."""
    wait_until(lambda: len(lines) >= count, timeout=5, what=f"{count} log lines")
    return lines


def test_an_unknown_middleware_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"middleware must be one of none, base, base_body_log, asgi, not 'gzip'"):
        middleware.create_app("gzip")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["base", "asgi"])
def test_streams_and_echoes_the_request_id(upstream: RunningUpstream, kind: middleware.Middleware) -> None:
    with served(kind) as (server, lines):
        read = StreamEndpoint(server.base_url, "/chat/stream", BODY).read(request_id="abc-123")
    assert read.status == 200 and read.headers["x-request-id"] == "abc-123"
    assert len(read.named("message")) == REPLY_TOKENS and read.events[-1].name == "done"
    spread = read.events[-1].at_s - read.events[0].at_s
    assert spread >= REPLY_TOKENS * 0.02 * 0.5  # the events came as the upstream made them
    assert parse_log(logged(lines)[0]).request_id == "abc-123"


def test_the_body_log_holds_the_stream_back(upstream: RunningUpstream) -> None:
    with served("base_body_log") as (server, lines):
        read = StreamEndpoint(server.base_url, "/chat/stream", BODY).read()
    assert read.status == 200 and len(read.named("message")) == REPLY_TOKENS
    assert read.events[-1].at_s - read.events[0].at_s < 0.02  # all at once
    assert parse_log(logged(lines)[0]).body_bytes == int(read.headers["content-length"])


def test_what_each_log_line_sees(upstream: RunningUpstream) -> None:
    seen = {}
    for kind in ("base", "asgi"):
        with served(kind) as (server, lines):
            read = StreamEndpoint(server.base_url, "/chat/stream", BODY).read()
        seen[kind] = parse_log(logged(lines)[0])
    base, asgi = seen["base"], seen["asgi"]
    assert (base.ending, base.body_bytes, base.model) == ("returned", None, None)  # the route ran in another task
    assert (asgi.ending, asgi.model) == ("complete", MODEL) and asgi.body_bytes and asgi.body_bytes > 100
    assert base.seconds < read.events[0].at_s <= read.events[-1].at_s <= asgi.seconds + 0.05


@pytest.mark.parametrize("given", ["a" * 65, "has space", "tab\there", "é-non-ascii", ""])
def test_attack_an_odd_request_id_is_replaced(upstream: RunningUpstream, given: str) -> None:
    with served("asgi") as (server, lines), httpx.Client(base_url=server.base_url, timeout=10) as http:
        headers = {"x-request-id": given.encode("utf-8")} if given else {}
        response = http.get("/health", headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert rid != given and len(rid) == 32 and rid.isalnum()
    assert parse_log(logged(lines)[0]).request_id == rid


def test_a_client_error_passes_through_and_is_logged(upstream: RunningUpstream) -> None:
    with served("asgi") as (server, lines):
        response = httpx.post(server.base_url + "/chat/stream", json={"prompt": ""}, timeout=10)
    assert response.status_code == 422 and "x-request-id" in response.headers
    assert (parse_log(logged(lines)[0]).status, parse_log(logged(lines)[0]).ending) == (422, "complete")


@pytest.mark.parametrize("kind", ["base", "asgi"])
def test_attack_many_hang_ups_leave_no_task_or_stream_behind(
    upstream: RunningUpstream, kind: middleware.Middleware
) -> None:
    """30 clients, 6 at a time, each leaving after 2 events: every stream is cut at the upstream,
    and the service's loop is back to the tasks it had before."""
    with served(kind) as (server, lines):
        loop = server_loop(server)
        before = asyncio.run(run_in(loop, _task_count()))
        endpoint = StreamEndpoint(server.base_url, "/chat/stream", BODY)
        reads = asyncio.run(endpoint.read_many(30, concurrency=6, leave_after=2))
        entries = asyncio.run(upstream.journal.wait_for(lambda es: len(es) >= 30 and all(e.finished_at for e in es)))
        after = asyncio.run(_settle(lambda: run_in(loop, _task_count()), before))
    assert [len(r.events) for r in reads] == [2] * 30
    assert all(e.outcome == "disconnected" and e.completion_tokens < REPLY_TOKENS for e in entries), entries
    assert after <= before, (before, after)
    if kind == "asgi":
        assert {parse_log(line).ending for line in lines} == {"cut"}


async def _task_count() -> int:
    return len(asyncio.all_tasks())


async def _settle(count: Callable[[], Awaitable[int]], target: int, timeout_s: float = 5.0) -> int:
    """`count()` once it is down to `target` (or what it is after `timeout_s`)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (now := await count()) > target and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return now


@pytest.mark.parametrize("kind", ["base", "base_body_log", "asgi"])
def test_log_lines_carry_no_key(upstream: RunningUpstream, kind: middleware.Middleware) -> None:
    key = os.environ["OPENAI_API_KEY"]  # the service's key to the upstream
    with served(kind) as (server, lines), httpx.Client(base_url=server.base_url, timeout=10) as http:
        read_stream(http, "/chat/stream", BODY, headers={"authorization": f"Bearer {key}"})
        assert all(key not in line and "Bearer" not in line for line in logged(lines))


@pytest.mark.parametrize(("kind", "stops"), [("none", True), ("base", False), ("base_body_log", False), ("asgi", True)])
def test_is_disconnected_behind_each_middleware(monkeypatch: pytest.MonkeyPatch, kind: str, stops: bool) -> None:
    """The multi-step route stops when its client leaves, except behind a BaseHTTPMiddleware,
    where ``request.is_disconnected()`` never comes true (starlette/requests.py)."""
    key = "test-" + secrets.token_urlsafe(12)
    with upstream_in_thread(api_key=key, latency=0.15) as up:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", up.base_url)
        app = middleware.create_app(kind)  # type: ignore[arg-type]
        with log_lines(middleware.log.name), serve_in_thread(app) as server:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(server.base_url + "/chat/steps", params={"steps": 6}, json=BODY, timeout=0.25)
            wait_until(lambda: app.state.steps_run, timeout=5, what="the route to finish")
        assert (app.state.steps_run[0] < 6) is stops, app.state.steps_run
        assert len(up.journal.entries(endpoint="chat.completions")) == app.state.steps_run[0]


def test_steps_are_bounded(upstream: RunningUpstream) -> None:
    with served("asgi") as (server, _), httpx.Client(base_url=server.base_url, timeout=10) as http:
        statuses = [http.post("/chat/steps", params={"steps": n}, json=BODY).status_code for n in (0, 21, -1)]
        ok = http.post("/chat/steps", params={"steps": 2}, json=BODY)
    assert statuses == [422, 422, 422] and ok.json() == {"steps": 2}
    assert len(upstream.journal.entries(endpoint="chat.completions")) == 2
