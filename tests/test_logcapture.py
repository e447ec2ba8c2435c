"""support.logcapture: an app's exceptions collected from uvicorn's log, kept off stderr, and waited for."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from fastapi import FastAPI

from support.logcapture import AppError, app_errors, errors_logged
from support.serve import serve_in_thread
from tests.conftest import Binder, wait_until

BODY = {"prompt": "Why should an async route await an async client?"}
PRINTED = "Exception in ASGI application"  # uvicorn's headline above a traceback on stderr


def stderr_through_a_traceback(capfd: pytest.CaptureFixture[str]) -> str:
    """What reaches stderr until uvicorn has printed a traceback through its last line."""
    text = ""

    def printed() -> bool:
        nonlocal text
        text += capfd.readouterr().err
        return PRINTED in text and "TypeError:" in text.partition(PRINTED)[2]

    wait_until(printed, what="uvicorn's traceback on stderr")
    return text


def test_app_errors_collects_the_type_error_and_keeps_it_off_stderr(
    bind: Binder, capfd: pytest.CaptureFixture[str]
) -> None:
    bound = bind("broken_await")
    logger = logging.getLogger("uvicorn.error")
    with serve_in_thread(bound.app) as server:
        # Without the capture, uvicorn prints the traceback to stderr ...
        assert httpx.post(server.base_url + "/chat", json=BODY, timeout=30).status_code == 500
        seen = stderr_through_a_traceback(capfd)
        assert "TypeError" in seen

        # ... with it (installed after the server started), the error is collected instead.
        propagate, handlers = logger.propagate, list(logger.handlers)
        with app_errors() as errors:
            assert logger.propagate is False
            assert httpx.post(server.base_url + "/chat", json=BODY, timeout=30).status_code == 500
            # Starlette sends the 500 before the exception reaches uvicorn's log: wait for it.
            wait_until(lambda: len(errors) == 1, what="the collected error")
        assert logger.propagate is propagate
        assert logger.handlers == handlers

        # A positive signal instead of a fixed sleep: a third error, after the capture, takes
        # the same path to stderr again. Once it is there, anything the second error had
        # printed would be there too; stderr holds exactly one traceback, the third's.
        assert httpx.post(server.base_url + "/chat", json=BODY, timeout=30).status_code == 500
        err = stderr_through_a_traceback(capfd)

    assert err.count(PRINTED) == seen.count(PRINTED) == 1
    assert err.count("Traceback") == seen.count("Traceback")
    assert err.count("TypeError") == seen.count("TypeError")
    [error] = errors  # the third one was not collected: the capture had ended
    assert isinstance(error, AppError)
    assert error.type_name == "TypeError"
    assert "ChatCompletion" in error.message and "await" in error.message
    assert str(error) == f"TypeError: {error.message}"
    assert error.created <= time.time()
    # All three requests were answered upstream before the TypeError.
    assert [e.outcome for e in bound.upstream.journal.entries()] == ["ok", "ok", "ok"]


def test_app_errors_restores_propagation_after_an_exception() -> None:
    logger = logging.getLogger("support.test.logcapture")
    logger.propagate = True
    with pytest.raises(ZeroDivisionError), app_errors(logger.name) as errors:
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            logger.exception("boom")
            raise
    assert logger.propagate is True
    assert logger.handlers == []
    assert [str(e) for e in errors] == ["ZeroDivisionError: division by zero"]


def test_app_errors_ignores_records_without_an_exception() -> None:
    logger = logging.getLogger("support.test.logcapture.plain")
    with app_errors(logger.name) as errors:
        logger.error("no exception here")
        logger.warning("nor here")
    assert errors == []


# --- errors_logged ----------------------------------------------------------------------------------


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
