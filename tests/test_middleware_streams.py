"""`support.middleware_streams`: the log-line parser, and a real run through two middlewares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from support import middleware_streams
from support.middleware_streams import Logged, abandoned_steps, parse_log, through
from support.target import Target, connect

REPLY_TOKENS = 12


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with connect(None, "gpt-4o-mini", ttft=0.05, chunk_delay=0.02, reply_tokens=REPLY_TOKENS) as bundled:
        yield bundled


def test_parse_log_reads_every_field() -> None:
    line = "abc status=200 seconds=0.125 body_bytes=563 model=gpt-4o-mini complete"
    assert parse_log(line) == Logged("abc", 200, 0.125, 563, "gpt-4o-mini", "complete")
    assert parse_log("x status=200 seconds=0.003 body_bytes=? model=None returned") == Logged(
        "x", 200, 0.003, None, None, "returned"
    )


@pytest.mark.parametrize("line", ["", "abc status=200", "abc status=ok seconds=1 body_bytes=1 model=m cut"])
def test_parse_log_refuses_other_lines(line: str) -> None:
    with pytest.raises(ValueError, match="not a request-log line"):
        parse_log(line)


def test_through_refuses_bad_counts(target: Target) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(through(target, "asgi", reads=0))


def test_through_asgi_and_body_log(target: Target) -> None:
    runs = [asyncio.run(through(target, kind, reads=1, leave_after=2)) for kind in ("asgi", "base_body_log")]
    asgi, body_log = runs
    assert asgi.request_ids_echoed and body_log.request_ids_echoed
    assert asgi.spread_s > REPLY_TOKENS * 0.02 * 0.5 and body_log.spread_s < 0.02
    assert asgi.logged[0].ending == "complete" and asgi.left_logged is not None and asgi.left_logged.ending == "cut"
    assert asgi.upstream is not None and asgi.upstream.outcome == "disconnected"
    assert body_log.upstream is not None and body_log.upstream.outcome == "ok"
    assert len(middleware_streams.table(runs).splitlines()) == 3  # a header and a row each
    assert "cut" in middleware_streams.logged_table(runs)


def test_through_none_logs_nothing_and_echoes_no_id(target: Target) -> None:
    run = asyncio.run(through(target, "none", reads=1, leave_after=2))
    assert run.logged == [] and run.left_logged is None and not run.request_ids_echoed
    assert run.upstream is not None and run.upstream.client_disconnected


def test_abandoned_steps_refuses_bad_arguments(target: Target) -> None:
    with pytest.raises(ValueError, match="steps must be at least 1"):
        asyncio.run(abandoned_steps(target, "asgi", steps=0, leave_after_s=1))


def test_abandoned_steps_stops_early_behind_pure_asgi() -> None:
    with connect(None, "gpt-4o-mini", latency=0.15) as slow:
        run = asyncio.run(abandoned_steps(slow, "asgi", steps=6, leave_after_s=0.25))
    assert run.stopped_early and run.upstream_calls == run.steps_run < 6


def test_abandoned_steps_says_when_the_client_did_not_leave(target: Target) -> None:
    with pytest.raises(RuntimeError, match="all 1 steps ran before the client left"):
        asyncio.run(abandoned_steps(target, "none", steps=1, leave_after_s=5))
