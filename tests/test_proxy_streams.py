"""Streams through a real nginx: what buffers them, what cuts them, what a hang-up reaches,
and the attacks nginx stops before the service sees them. Notebook 10 shows the same live.

Skipped (never faked) where nginx is not installed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator

import pytest

from support import attacks
from support.apps import hardened, stream_async
from support.proxy import ProxySettings, nginx_in_front, nginx_path
from support.serve import serve_in_thread
from support.sse import StreamEndpoint, replica, with_response_headers
from support.target import Target, connect
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(nginx_path() is None, reason="nginx is not installed (apt-get install nginx)")
TOKEN = secrets.token_urlsafe(12)
GZIP_SSE = ProxySettings(gzip="on", gzip_types="text/event-stream")
PROMPT = {"prompt": "Stream a few words."}
MESSAGES = {"messages": [{"role": "user", "content": "Stream a few words."}]}


@pytest.fixture(scope="module")
def target(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Target]:
    with connect(None, "gpt-4o-mini", latency=0.02, ttft=0.05, chunk_delay=0.04, reply_tokens=20) as running:
        monkeypatch_module.setenv("OPENAI_BASE_URL", running.base_url)  # what the example services read
        monkeypatch_module.setenv("OPENAI_API_KEY", running.api_key)
        monkeypatch_module.setenv("OPENAI_MODEL", running.model)  # an earlier module's model may be left set
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _spread(endpoint: StreamEndpoint) -> tuple[float, float, int]:
    read = endpoint.read(timeout=10)
    assert read.status == 200 and read.events and read.transport_error is None, read
    return read.events[0].at_s, read.events[-1].at_s, len(read.events)


@pytest.mark.parametrize(
    ("headers", "held"),
    [({}, True), ({"Cache-Control": "no-cache, no-transform"}, True), ({"X-Accel-Buffering": "no"}, False)],
    ids=["no-header", "cache-control", "x-accel-buffering"],
)
def test_gzip_on_event_streams_holds_them_to_the_end_unless_the_service_says_no(
    target: Target, headers: dict[str, str], held: bool
) -> None:
    with (
        serve_in_thread(with_response_headers(replica(stream_async.app), headers)) as service,
        nginx_in_front(service.base_url, GZIP_SSE) as proxy,
    ):
        endpoint = StreamEndpoint(proxy.base_url, "/chat/stream", PROMPT, headers={"Accept-Encoding": "gzip"})
        first, last, count = _spread(endpoint)
    assert count > 10
    if held:
        assert last - first < 0.05, (first, last)  # all at once, at the end
    else:
        assert last - first > 0.4, (first, last)  # as the upstream produced them (20 x 0.04 s)


def test_nginx_defaults_pass_events_as_they_come(target: Target) -> None:
    with serve_in_thread(replica(stream_async.app)) as service, nginx_in_front(service.base_url) as proxy:
        first, last, _ = _spread(StreamEndpoint(proxy.base_url, "/chat/stream", PROMPT))
    assert last - first > 0.4, (first, last)


@pytest.mark.parametrize(("heartbeat_s", "survives"), [(0.0, False), (0.3, True)], ids=["silent", "heartbeats"])
def test_a_thinking_model_behind_a_short_proxy_read_timeout(heartbeat_s: float, survives: bool) -> None:
    logging.getLogger("support.apps.hardened").setLevel(logging.ERROR)
    with (
        connect(None, "gpt-4o-mini", latency=0.02, ttft=1.6, chunk_delay=0.01, reply_tokens=5) as thinking,
        serve_in_thread(
            hardened.create_app(
                hardened.Settings(
                    tokens=TOKEN,
                    openai_api_key=thinking.api_key,
                    openai_base_url=thinking.base_url,
                    model="gpt-4o-mini",
                    stream_heartbeat_s=heartbeat_s,
                )
            )
        ) as service,
        nginx_in_front(service.base_url, ProxySettings(proxy_read_timeout="1s")) as proxy,
    ):
        read = StreamEndpoint(
            proxy.base_url, "/v1/chat/stream", MESSAGES, headers={"Authorization": f"Bearer {TOKEN}"}
        ).read(timeout=10)
        (entry,) = thinking.journal.entries()
        wait_until(lambda: entry.finished_at, timeout=3.0, what="the upstream to finish")
        error_log = proxy.error_log()
    assert read.status == 200
    if survives:
        assert read.transport_error is None and read.events[-1].name == "done", read
        assert entry.outcome == "ok"
    else:
        assert read.transport_error and "peer closed connection" in read.transport_error, read
        assert "upstream timed out (110: Connection timed out) while reading upstream" in error_log
        assert entry.client_disconnected  # nginx hung up on the service, which closed the upstream


def test_a_caller_leaving_through_nginx_stops_the_upstream(target: Target) -> None:
    logging.getLogger("support.apps.hardened").setLevel(logging.ERROR)
    with (
        serve_in_thread(hardened.create_app(hardened.Settings(tokens=TOKEN, model="gpt-4o-mini"))) as service,
        nginx_in_front(service.base_url) as proxy,
    ):
        before = len(target.journal.entries())
        read = StreamEndpoint(
            proxy.base_url, "/v1/chat/stream", MESSAGES, headers={"Authorization": f"Bearer {TOKEN}"}
        ).read(leave_after=3)
        (entry,) = target.journal.entries()[before:]
        wait_until(lambda: entry.finished_at, timeout=3.0, what="the upstream to see the hang-up")
    assert read.left_at is not None and entry.client_disconnected and entry.completion_tokens < 20, entry
    assert entry.finished_at is not None and entry.finished_at - read.left_at < 0.5


def test_the_attacks_nginx_stops_before_the_service(target: Target) -> None:
    logging.getLogger("support.apps.hardened").setLevel(logging.ERROR)
    limits = ProxySettings(
        client_header_timeout="1s", client_body_timeout="1s", large_client_header_buffers="4 8k", limit_conn=2
    )
    app = hardened.create_app(hardened.Settings(tokens=TOKEN, model="gpt-4o-mini"))
    with serve_in_thread(app) as service, nginx_in_front(service.base_url, limits) as proxy:
        host, port = "127.0.0.1", int(proxy.base_url.rsplit(":", 1)[1])
        slow_head = attacks.slow_headers(host, port, delay_s=0.1, bound_s=4)
        huge = attacks.exchange(host, port, attacks.huge_header("/healthz", 10_000))
        slow = attacks.slow_body(host, port, "/v1/chat", b'{"messages": []}', delay_s=1.5, bound_s=4)
        endpoint = StreamEndpoint(
            proxy.base_url, "/v1/chat/stream", MESSAGES, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        statuses = sorted(r.status for r in asyncio.run(endpoint.read_many(4, concurrency=4)))
        log = proxy.access_log(at_least=3 + len(statuses))  # a line per attack and per stream
    assert slow_head.closed and 0.9 < slow_head.elapsed_s < 2.0, slow_head
    assert huge.status == 400 and "nginx" in (huge.header("server") or "")
    assert slow.closed and slow.elapsed_s < 2.5, slow
    assert statuses == [200, 200, 503, 503], statuses
    assert sum(" 408 " in line for line in log) == 2 and sum(" 503 " in line for line in log) == 2, log
