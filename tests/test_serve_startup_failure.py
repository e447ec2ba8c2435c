"""support.serve.startup_failure: why a service refused to start, as a value (notebook 07's misconfigurations)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from support.serve import bind_socket, startup_failure


class ConfigError(Exception):
    """Stands in for a service's own configuration error (its module path must not show)."""


def make_app(error: Exception | None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if error is not None:
            raise error
        yield

    return FastAPI(title="probe", lifespan=lifespan)


def test_an_app_that_starts_gives_none() -> None:
    assert startup_failure(make_app(None)) is None


def test_a_refusal_gives_the_exception_s_name_and_message_without_its_module_path() -> None:
    assert ConfigError.__module__.endswith("test_serve_startup_failure")  # so the path would show
    reason = startup_failure(make_app(ConfigError("OPENAI_API_KEY is missing or blank")))
    assert reason == "ConfigError: OPENAI_API_KEY is missing or blank"


def test_a_builtin_exception_keeps_its_name() -> None:
    assert startup_failure(make_app(RuntimeError("boom"))) == "RuntimeError: boom"


def test_a_taken_port_gives_the_bind_error() -> None:
    holder = bind_socket()
    try:
        reason = startup_failure(make_app(None), port=holder.getsockname()[1])
    finally:
        holder.close()
    assert reason is not None and reason.startswith("cannot bind 127.0.0.1:")
