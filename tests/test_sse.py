"""support.sse: the async reader and `StreamEndpoint` (one stream, or many at once, leaving early)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from support.serve import RunningServer, serve_in_thread
from support.sse import StreamEndpoint, aread_stream
from tests.conftest import wait_until


def make_app(seen: dict[str, Any]) -> FastAPI:
    app = FastAPI()
    seen.update(open=0, peak=0, closed_early=0, headers=[])

    @app.post("/stream", response_model=None)
    async def stream(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        seen["headers"].append(dict(request.headers))
        if body.get("refuse"):
            return JSONResponse({"error": "busy"}, status_code=429)

        async def events() -> AsyncIterator[str]:
            seen["open"] += 1
            seen["peak"] = max(seen["peak"], seen["open"])
            sent = 0
            try:
                for i in range(body.get("n", 5)):
                    await asyncio.sleep(0.02)
                    yield f"data: {json.dumps({'delta': str(i)})}\n\n"
                    sent += 1
                yield 'event: done\ndata: {"ok": true}\n\n'
            finally:
                seen["open"] -= 1
                if sent < body.get("n", 5):
                    seen["closed_early"] += 1

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture
def served() -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    with serve_in_thread(make_app(seen)) as server:
        yield server, seen


def test_read_gives_timed_events_and_sends_the_endpoint_s_headers(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, seen = served
    endpoint = StreamEndpoint(server.base_url, "/stream", {"n": 3}, headers={"authorization": "Bearer t"})
    read = endpoint.read(request_id="req-1")
    assert read.status == 200 and [e.name for e in read.events] == ["message"] * 3 + ["done"]
    assert read.text == "012" and read.left_at is None
    assert read.events[0].at_s <= read.events[-1].at_s
    assert seen["headers"][-1]["authorization"] == "Bearer t" and seen["headers"][-1]["x-request-id"] == "req-1"


def test_read_leaves_after_n_events(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, seen = served
    read = StreamEndpoint(server.base_url, "/stream", {"n": 50}).read(leave_after=2)
    assert len(read.events) == 2 and read.left_at is not None
    assert "x-request-id" not in seen["headers"][-1]


def test_a_json_answer_is_kept_as_the_body(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, _ = served
    read = StreamEndpoint(server.base_url, "/stream", {"refuse": True}).read()
    assert (read.status, read.body, read.events) == (429, {"error": "busy"}, [])


def test_aread_stream_matches_the_sync_reader(served: tuple[RunningServer, dict[str, Any]]) -> None:
    server, _ = served

    async def main() -> tuple[list[str], list[str]]:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            whole = await aread_stream(http, "/stream", {"n": 3})
            part = await aread_stream(http, "/stream", {"n": 50}, leave_after=1)
        return [e.data.get("delta", "done") for e in whole.events], [e.data["delta"] for e in part.events]

    assert asyncio.run(main()) == (["0", "1", "2", "done"], ["0"])


def test_read_many_bounds_the_open_streams_and_each_client_leaves(
    served: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, seen = served
    endpoint = StreamEndpoint(server.base_url, "/stream", {"n": 100})
    reads = asyncio.run(endpoint.read_many(6, concurrency=3, leave_after=2))
    assert [r.status for r in reads] == [200] * 6 and all(len(r.events) == 2 for r in reads)
    assert 1 <= seen["peak"] <= 3
    wait_until(lambda: seen["closed_early"] == 6, what="every stream closed by its leaving client")
