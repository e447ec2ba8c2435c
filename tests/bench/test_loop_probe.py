"""support.bench.loop_probe: a /health probe sent while one slow request is in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI, HTTPException, Request

from support.bench.loop_probe import ProbeDuring, probe_during
from support.logcapture import app_errors
from support.serve import serve_in_thread

SLOW_S = 0.5


class Service:
    """A FastAPI app with slow routes that block or free the loop, and the client port of every request."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ports: list[tuple[str, int]] = []  # (path, client port), in arrival order
        self.app = FastAPI(title="loop probe test")
        app = self.app

        @app.middleware("http")
        async def record_port(request: Request, call_next: Callable[[Request], Awaitable[object]]) -> object:
            assert request.client is not None
            self.ports.append((request.url.path, request.client.port))
            return await call_next(request)

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/blocking")
        async def blocking(status: int = 200) -> dict[str, str]:
            self.started.set()
            time.sleep(SLOW_S)  # noqa: ASYNC251 - blocks the event loop: the probe must wait
            if status != 200:
                raise HTTPException(status)
            return {"done": "blocking"}

        @app.post("/free")
        async def free() -> dict[str, str]:
            self.started.set()
            await asyncio.sleep(SLOW_S)  # the loop stays free: the probe is answered at once
            return {"done": "free"}

        @app.post("/crash")
        async def crash() -> None:
            self.started.set()
            raise LookupError("unhandled: a bare 500, then uvicorn closes the connection")


def run_probe(path: str, service: Service | None = None, **options: object) -> ProbeDuring:
    service = service or Service()
    with serve_in_thread(service.app) as server:
        options.setdefault("in_flight", lambda: asyncio.to_thread(service.started.wait, 5))
        return asyncio.run(probe_during(server.base_url, "POST", path, probe_url="/health", **options))  # type: ignore[arg-type]


def test_a_blocked_loop_makes_the_probe_wait_for_the_slow_request() -> None:
    result = run_probe("/blocking")
    assert result.response.status_code == 200 and result.probe_status == 200
    assert result.sent_during and 0 <= result.probe_sent_s < result.request_s
    assert result.request_s >= SLOW_S
    # The probe went out while the route slept, and could only be answered after it.
    assert result.probe_s >= SLOW_S / 2
    assert result.probe_s >= result.remaining_s / 2
    assert result.probe_done_s == pytest.approx(result.probe_sent_s + result.probe_s)


def test_a_free_loop_answers_the_probe_before_the_slow_request_ends() -> None:
    result = run_probe("/free")
    assert result.response.json() == {"done": "free"} and result.probe_status == 200
    assert result.request_s >= SLOW_S
    assert result.sent_during and result.probe_s < result.remaining_s
    assert result.probe_done_s < result.request_s


def test_an_http_error_status_is_returned_not_raised() -> None:
    result = run_probe("/blocking?status=503")
    assert result.response.status_code == 503
    assert result.probe_status == 200


def test_each_request_has_a_fresh_connection_of_its_own() -> None:
    service = Service()
    first = run_probe("/free", service)
    # Late on purpose: the slow request's keep-alive connection is idle by then, and not taken.
    second = run_probe("/free", service, in_flight=None, probe_after_s=SLOW_S + 0.3)
    assert first.probe_status == second.probe_status == 200
    assert first.sent_during and not second.sent_during
    assert [path for path, _ in service.ports] == ["/free", "/health"] * 2
    ports = [port for _, port in service.ports]
    assert len(set(ports)) == len(ports), ports  # four requests, four connections


def test_the_probe_never_reuses_the_connection_closed_after_a_500() -> None:
    # uvicorn closes the connection that carried an unhandled exception's 500. Probing
    # after that answer (the probe is late on purpose) must still get a 200 over a new
    # connection, however often it is tried.
    service = Service()
    with serve_in_thread(service.app) as server, app_errors() as errors:  # logging: after the server

        async def main() -> list[ProbeDuring]:
            return [
                await probe_during(server.base_url, "POST", "/crash", probe_url="/health", probe_after_s=0.1)
                for _ in range(5)
            ]

        results = asyncio.run(main())
    assert [r.response.status_code for r in results] == [500] * 5
    assert [r.probe_status for r in results] == [200] * 5
    assert not any(r.sent_during for r in results)  # the 500 arrived before the probe went out
    assert [e.type_name for e in errors] == ["LookupError"] * 5
    ports = [port for _, port in service.ports]
    assert len(set(ports)) == len(ports) == 10


def test_an_in_flight_failure_propagates_and_cancels_the_slow_request() -> None:
    service = Service()
    with serve_in_thread(service.app) as server:

        async def fail() -> None:
            raise LookupError("never in flight")

        async def main() -> set[asyncio.Task[object]]:
            with pytest.raises(LookupError, match="never in flight"):
                await probe_during(server.base_url, "POST", "/free", probe_url="/health", in_flight=fail)
            return asyncio.all_tasks() - {asyncio.current_task()}

        assert asyncio.run(main()) == set()


def test_probe_after_s_delays_the_probe() -> None:
    result = run_probe("/free", in_flight=None, probe_after_s=0.2)
    assert result.probe_sent_s >= 0.2
    assert result.sent_during
