"""support.bench.loop_probe: a /health probe sent while one slow request is in flight."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from support.bench.loop_probe import ProbeDuring, probe_during
from support.serve import serve_in_thread

SLOW_S = 0.5


def make_app(started: threading.Event) -> FastAPI:
    app = FastAPI(title="loop probe test")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/blocking")
    async def blocking(status: int = 200) -> dict[str, str]:
        started.set()
        time.sleep(SLOW_S)  # noqa: ASYNC251 - blocks the event loop: the probe must wait
        if status != 200:
            raise HTTPException(status)
        return {"done": "blocking"}

    @app.post("/free")
    async def free() -> dict[str, str]:
        started.set()
        await asyncio.sleep(SLOW_S)  # the loop stays free: the probe is answered at once
        return {"done": "free"}

    return app


def run_probe(path: str) -> ProbeDuring:
    started = threading.Event()
    with serve_in_thread(make_app(started)) as server:

        async def main() -> ProbeDuring:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                return await probe_during(
                    client,
                    "POST",
                    path,
                    probe_url="/health",
                    in_flight=lambda: asyncio.to_thread(started.wait, 5),
                )

        return asyncio.run(main())


def test_a_blocked_loop_makes_the_probe_wait_for_the_slow_request() -> None:
    result = run_probe("/blocking")
    assert result.response.status_code == 200 and result.probe_status == 200
    assert 0 <= result.probe_sent_s < result.request_s
    assert result.request_s >= SLOW_S
    # The probe went out while the route slept, and could only be answered after it.
    assert result.probe_s >= SLOW_S / 2
    assert result.probe_s >= result.remaining_s / 2


def test_a_free_loop_answers_the_probe_before_the_slow_request_ends() -> None:
    result = run_probe("/free")
    assert result.response.json() == {"done": "free"} and result.probe_status == 200
    assert result.request_s >= SLOW_S
    assert result.probe_s < result.remaining_s


def test_an_http_error_status_is_returned_not_raised() -> None:
    result = run_probe("/blocking?status=503")
    assert result.response.status_code == 503
    assert result.probe_status == 200


def test_an_in_flight_failure_propagates_and_cancels_the_slow_request() -> None:
    started = threading.Event()
    with serve_in_thread(make_app(started)) as server:

        async def fail() -> None:
            raise LookupError("never in flight")

        async def main() -> set[asyncio.Task[object]]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                with pytest.raises(LookupError, match="never in flight"):
                    await probe_during(client, "POST", "/free", probe_url="/health", in_flight=fail)
            return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

        assert asyncio.run(main()) == set()


def test_probe_after_s_delays_the_probe() -> None:
    started = threading.Event()
    with serve_in_thread(make_app(started)) as server:

        async def main() -> ProbeDuring:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                return await probe_during(client, "POST", "/free", probe_url="/health", probe_after_s=0.2)

        result = asyncio.run(main())
    assert result.probe_sent_s >= 0.2
