"""support.fanout: many calls a few at a time, every reply kept; one call per named case."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from support.fanout import Reply, post_concurrently, post_each, status_counts
from support.serve import RunningServer, serve_in_thread


def make_app(seen: dict[str, Any]) -> FastAPI:
    app = FastAPI()
    seen.update(in_flight=0, peak=0, calls=0)

    @app.post("/work")
    async def work(request: Request, response: Response) -> dict[str, int]:
        body = await request.json()
        seen["calls"] += 1
        seen["in_flight"] += 1
        seen["peak"] = max(seen["peak"], seen["in_flight"])
        try:
            await asyncio.sleep(body.get("sleep", 0.05))
        finally:
            seen["in_flight"] -= 1
        response.status_code = body.get("status", 200)
        response.headers["x-call"] = str(seen["calls"])
        response.headers["x-token"] = request.headers.get("authorization", "none")
        return {"call": seen["calls"]}

    return app


@pytest.fixture
def served() -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    with serve_in_thread(make_app(seen)) as server:
        yield server, seen


def test_post_concurrently_keeps_every_reply_and_the_concurrency_bound(
    served: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, seen = served
    replies = asyncio.run(
        post_concurrently(server.base_url, "/work", {"sleep": 0.2}, n=6, concurrency=3, headers={"authorization": "t"})
    )
    assert len(replies) == 6 and all(isinstance(r, Reply) for r in replies)
    assert {r.status for r in replies} == {200}
    assert seen["calls"] == 6 and seen["peak"] == 3  # never more than `concurrency` in flight, and all of them used
    assert all(r.elapsed_s >= 0.2 for r in replies)
    assert {r.headers["x-token"] for r in replies} == {"t"}  # the headers went with every request


def test_warm_up_requests_go_first_and_are_not_returned(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, seen = served
    replies = asyncio.run(post_concurrently(server.base_url, "/work", {"sleep": 0}, n=2, concurrency=2, warm_up=2))
    assert len(replies) == 2 and seen["calls"] == 4
    assert sorted(int(r.headers["x-call"]) for r in replies) == [3, 4]


def test_a_failing_warm_up_raises(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, seen = served
    with pytest.raises(RuntimeError, match="warm-up POST /work answered 503"):
        asyncio.run(post_concurrently(server.base_url, "/work", {"status": 503}, n=5, concurrency=2, warm_up=1))
    assert seen["calls"] == 1  # the load was never sent


def test_status_counts() -> None:
    replies = [Reply(200, 0.1), Reply(503, 0.01), Reply(200, 0.2)]
    assert status_counts(replies) == {200: 2, 503: 1}
    assert status_counts([]) == {}


def test_post_each_sends_the_default_headers_unless_a_case_sets_its_own(
    served: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, _ = served
    cases = {
        "plain": {"json": {"sleep": 0}},
        "no headers": {"json": {"sleep": 0}, "headers": {}},
        "own token": {"json": {"sleep": 0, "status": 418}, "headers": {"authorization": "other"}},
    }
    responses = post_each(server.base_url, "/work", cases, headers={"authorization": "default"})
    assert list(responses) == ["plain", "no headers", "own token"]  # in order, by name
    assert [r.headers["x-token"] for r in responses.values()] == ["default", "none", "other"]
    assert responses["own token"].status_code == 418
    assert cases["plain"] == {"json": {"sleep": 0}}  # the cases are not modified
