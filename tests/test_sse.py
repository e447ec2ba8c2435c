"""support.sse: the async reader and `StreamEndpoint` (one stream, or many at once, leaving early);
the service's end: `Recorder`, `marking_client`, `replica`, `with_spec_version`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from support.serve import RunningServer, serve_in_thread
from support.sse import Recorder, StreamEndpoint, aread_stream, marking_client, replica, with_spec_version
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


# --- the service's end ------------------------------------------------------------------


def make_generator_app(seen: dict[str, Any]) -> FastAPI:
    """A route whose dependency hands over a 'client'; its generator calls create() first, as an SSE route does."""
    app = FastAPI()
    seen.update(created=0)

    class Completions:
        async def create(self, **options: Any) -> str:
            await asyncio.sleep(0.05)  # the upstream takes its time
            if options.get("fail"):
                raise RuntimeError("upstream said no")
            seen["created"] += 1
            return "stream"

    class Client:
        chat = type("Chat", (), {"completions": Completions()})()

    async def get_client(request: Request) -> Client:
        return Client()

    seen["get_client"] = get_client

    @app.post("/stream", response_model=None)
    async def stream(request: Request) -> StreamingResponse:
        body = await request.json()
        client = await request.app.dependency_overrides.get(get_client, get_client)(request)

        async def events() -> AsyncIterator[str]:
            await client.chat.completions.create(fail=body.get("fail", False))
            for i in range(body.get("n", 5)):
                await asyncio.sleep(0.02)
                yield f"data: {json.dumps({'delta': str(i)})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_the_recorder_orders_the_route_s_marks_and_the_server_s_messages() -> None:
    seen: dict[str, Any] = {}
    app = make_generator_app(seen)
    app.dependency_overrides[seen["get_client"]] = marking_client(seen["get_client"])
    recorder = Recorder(app)
    with serve_in_thread(recorder) as server:
        read = StreamEndpoint(server.base_url, "/stream", {"n": 3}).read()
        failed = StreamEndpoint(server.base_url, "/stream", {"fail": True}).read()  # 200, then the body is cut
        asyncio.run(recorder.returned(2, timeout_s=10))
    assert read.status == 200 and len(read.events) == 3 and seen["created"] == 1
    assert failed.status == 200 and not failed.events
    trace, failed_trace = recorder.responses
    assert trace.spec_version == "2.3" and trace.status == 200  # uvicorn's label for HTTP
    # StreamingResponse sends the status before it pulls the generator, which then calls create()
    assert trace.order() == [
        "server: http.response.start (200)",
        "route: chat.completions.create() called",
        "route: chat.completions.create() returned (the upstream answered)",
        "server: http.response.body",
        "server: http.response.body, the final one",
    ]
    assert trace.final_at is not None and trace.returned_at is not None and trace.final_at <= trace.returned_at
    assert trace.bodies_after(trace.received_at) == 4 and trace.bodies_after(trace.final_at) == 0
    assert "(first of 3)" in trace.timeline() and len(trace.timeline().splitlines()) == 5
    assert "route: chat.completions.create() raised RuntimeError" in failed_trace.order()
    assert failed_trace.at("route: chat.completions.create() returned") is None


def test_marks_outside_a_recorded_request_are_dropped_and_non_http_scopes_pass_through() -> None:
    Recorder.mark("nobody records this")  # no request: no error
    seen: dict[str, Any] = {}
    recorder = Recorder(make_app(seen))
    with serve_in_thread(recorder):  # the lifespan scope went through the wrapper
        pass
    assert recorder.responses == []


def test_returned_times_out_when_the_app_has_not_returned() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(Recorder(make_app({})).returned(1, timeout_s=0.05))


STARTED: list[str] = []


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.client = f"client of {id(app)}"
    STARTED.append(app.state.client)
    yield


async def _dependency(request: Request) -> str:
    return str(request.app.state.client)


async def _overridden(request: Request) -> str:
    return "overridden"


def test_a_replica_has_the_routes_and_lifespan_but_its_own_state_and_overrides() -> None:
    original = FastAPI(title="original", lifespan=_lifespan)

    @original.get("/whose")
    async def whose(client: Annotated[str, Depends(_dependency)]) -> dict[str, str]:
        return {"client": client}

    copy = replica(original)
    copy.dependency_overrides[_dependency] = _overridden
    STARTED.clear()
    with TestClient(original) as a, TestClient(copy) as b:
        assert a.get("/whose").json() == {"client": f"client of {id(original)}"}
        assert b.get("/whose").json() == {"client": "overridden"}
        assert copy.state.client == f"client of {id(copy)}"
    assert copy.title == "original" and len(STARTED) == 2 and original.dependency_overrides == {}


def test_with_spec_version_relabels_http_scopes_only() -> None:
    seen: list[tuple[str, str | None]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], scope.get("asgi", {}).get("spec_version")))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(with_spec_version(app, "2.4")) as server:
        assert httpx.get(server.base_url + "/").status_code == 204
    assert ("http", "2.4") in seen and all(version != "2.4" for kind, version in seen if kind != "http")


def test_under_spec_2_4_starlette_no_longer_cancels_a_stream_whose_client_left() -> None:
    """Relabelled 2.4, uvicorn's silent send after a disconnect lets the generator run to its end."""
    outcomes = []
    for version in (None, "2.4"):
        seen: dict[str, Any] = {}
        recorder = Recorder(make_app(seen))
        app = recorder if version is None else with_spec_version(recorder, version)
        with serve_in_thread(app) as server:
            read = StreamEndpoint(server.base_url, "/stream", {"n": 30}).read(leave_after=2)
            [trace] = asyncio.run(recorder.returned(1, timeout_s=10))
        assert read.left_at is not None
        outcomes.append((trace.spec_version, trace.final_at is not None, seen["closed_early"]))
    assert outcomes == [("2.3", False, 1), ("2.4", True, 0)]
