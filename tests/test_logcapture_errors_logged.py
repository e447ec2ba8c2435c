"""logcapture.errors_logged: wait for uvicorn's log line instead of sleeping."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import FastAPI

from support.logcapture import AppError, app_errors, errors_logged
from support.serve import serve_in_thread


def test_it_returns_as_soon_as_the_error_is_logged() -> None:
    errors: list[AppError] = []

    async def main() -> tuple[list[AppError], float]:
        asyncio.get_running_loop().call_later(0.05, errors.append, AppError("TypeError", "boom", time.time()))
        started = time.monotonic()
        logged = await errors_logged(errors, timeout_s=30)
        return logged, time.monotonic() - started

    logged, waited = asyncio.run(main())
    assert logged is errors and [e.message for e in logged] == ["boom"]
    assert waited < 20  # on the entry, long before the timeout


def test_it_gives_up_quietly_at_the_timeout() -> None:
    errors: list[AppError] = []
    assert asyncio.run(errors_logged(errors, 2, timeout_s=0.05)) == []


def test_it_waits_for_the_exception_of_a_route_that_answered_500() -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise TypeError("boom")

    with serve_in_thread(app) as server, app_errors() as errors:
        assert httpx.get(server.base_url + "/boom").status_code == 500
        asyncio.run(errors_logged(errors, timeout_s=10))
    assert [(e.type_name, e.message) for e in errors] == [("TypeError", "boom")]
