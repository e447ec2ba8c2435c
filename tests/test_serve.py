"""support.serve: a real FastAPI app on a real socket, on the caller's loop or in a thread; why one refused to start."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from support.serve import ServerStartError, bind_socket, serve_in_loop, serve_in_thread, startup_failure


def make_app(state: dict[str, Any], *, fail_with: str | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if fail_with is not None:
            raise RuntimeError(fail_with)
        state["started"] = True
        yield
        state["stopped"] = True

    app = FastAPI(title="probe", lifespan=lifespan)

    @app.get("/state")
    async def read_state() -> dict[str, Any]:
        return {"started": state.get("started", False), "thread": threading.current_thread().name}

    @app.get("/block")
    async def block(seconds: float = 0.5) -> dict[str, float]:
        state["blocking"] = True
        time.sleep(seconds)  # noqa: ASYNC251 - the bug the runbook is about: blocking inside async def
        state["blocking"] = False
        return {"slept": seconds}

    return app


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


async def watch_loop(during: Any, state: dict[str, Any]) -> tuple[float, int, Any]:
    """Run the awaitable `during` while this loop ticks every 10 ms; return the longest
    stall of this loop, how many ticks ran while the app was inside its blocking call
    (``state["blocking"]``, set by ``/block``), and what `during` returned."""
    lag = 0.0
    ticks_while_blocked = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal lag, ticks_while_blocked
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lag = max(lag, time.perf_counter() - before - 0.01)
            ticks_while_blocked += bool(state.get("blocking"))

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    try:
        result = await during
    finally:
        stop.set()
        await task
    return lag, ticks_while_blocked, result


# --- serve_in_loop -------------------------------------------------------------------------------


def test_serve_in_loop_runs_lifespan_and_stops_cleanly() -> None:
    state: dict[str, Any] = {}

    async def main() -> int:
        async with serve_in_loop(make_app(state)) as server:
            assert server.host == "127.0.0.1" and server.port > 0
            assert server.base_url == f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                response = await client.get("/state")
            assert response.status_code == 200
            assert response.json() == {"started": True, "thread": threading.current_thread().name}
            assert "stopped" not in state
        return server.port

    port = asyncio.run(main())
    assert state == {"started": True, "stopped": True}
    assert port_is_closed(port)


def test_serve_in_loop_startup_failure_is_reported_and_loop_survives() -> None:
    async def main() -> None:
        with pytest.raises(ServerStartError) as info:
            async with serve_in_loop(make_app({}, fail_with="database unreachable: boom-42")):
                pytest.fail("the block must not run")
        assert "boom-42" in str(info.value)
        assert str(info.value) == "app 'probe' failed to start: RuntimeError: database unreachable: boom-42"
        # the calling loop is intact: it sleeps, and serves another app
        await asyncio.sleep(0.01)
        state: dict[str, Any] = {}
        async with serve_in_loop(make_app(state)) as server, httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await client.get("/state")).json()["started"] is True

    asyncio.run(main())


def test_serve_in_loop_taken_port() -> None:
    async def main(port: int) -> None:
        with pytest.raises(ServerStartError, match=rf"^cannot bind 127\.0\.0\.1:{port}: Address already in use$"):
            async with serve_in_loop(make_app({}), port=port):
                pytest.fail("the block must not run")
        await asyncio.sleep(0)

    with taken_port() as port:
        asyncio.run(main(port))


def test_serve_in_loop_shares_the_callers_loop() -> None:
    """The contrast that gives the thread test its teeth: a blocking app on the caller's loop stalls it."""

    state: dict[str, Any] = {}

    async def main() -> tuple[float, int]:
        async with serve_in_loop(make_app(state)) as server, httpx.AsyncClient(base_url=server.base_url) as client:
            lag, ticks_while_blocked, response = await watch_loop(client.get("/block", params={"seconds": 0.4}), state)
        assert response.status_code == 200
        return lag, ticks_while_blocked

    lag, ticks_while_blocked = asyncio.run(main())
    assert lag >= 0.3
    assert ticks_while_blocked == 0  # the caller's loop never ran while the app blocked it


# --- serve_in_thread ---------------------------------------------------------------------------------


def test_serve_in_thread_runs_lifespan_and_stops_cleanly() -> None:
    state: dict[str, Any] = {}
    with serve_in_thread(make_app(state)) as server:
        response = httpx.get(server.base_url + "/state")
        assert response.status_code == 200
        assert response.json() == {"started": True, "thread": f"uvicorn:{server.port}"}
        assert any(t.name == f"uvicorn:{server.port}" for t in threading.enumerate())
    assert state == {"started": True, "stopped": True}
    assert port_is_closed(server.port)
    assert not any(t.name == f"uvicorn:{server.port}" for t in threading.enumerate())


def test_serve_in_thread_startup_failure_is_reported() -> None:
    with (
        pytest.raises(ServerStartError) as info,
        serve_in_thread(make_app({}, fail_with="missing OPENAI_BASE_URL: boom-43")),
    ):
        pytest.fail("the block must not run")
    assert str(info.value) == "app 'probe' failed to start: RuntimeError: missing OPENAI_BASE_URL: boom-43"
    # nothing is left behind, and serving again works
    assert not any(t.name.startswith("uvicorn:") and t.is_alive() for t in threading.enumerate())
    with serve_in_thread(make_app({})) as server:
        assert httpx.get(server.base_url + "/state").json()["started"] is True


def test_serve_in_thread_startup_failure_inside_a_running_loop() -> None:
    async def main() -> None:
        with pytest.raises(ServerStartError, match="boom-44"), serve_in_thread(make_app({}, fail_with="boom-44")):
            pass
        await asyncio.sleep(0.01)  # the caller's loop still runs

    asyncio.run(main())


def test_serve_in_thread_taken_port() -> None:
    with (
        taken_port() as port,
        pytest.raises(ServerStartError, match=rf"^cannot bind 127\.0\.0\.1:{port}: "),
        serve_in_thread(make_app({}), port=port),
    ):
        pytest.fail("the block must not run")
    with pytest.raises(ServerStartError, match="cannot bind"):
        bind_socket("203.0.113.1", 0)  # an address this host does not have


def test_blocking_app_in_thread_does_not_block_the_callers_loop() -> None:
    state: dict[str, Any] = {}

    async def main() -> None:
        with serve_in_thread(make_app(state)) as server:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                started = time.perf_counter()
                lag, ticks_while_blocked, response = await watch_loop(
                    client.get("/block", params={"seconds": 0.5}), state
                )
                elapsed = time.perf_counter() - started
        assert response.json() == {"slept": 0.5}
        assert elapsed >= 0.5
        # The structural fact, not a bound on the lag: the caller's loop ran while the app was
        # inside time.sleep (on the caller's loop, as above, it never can).
        assert ticks_while_blocked >= 1, f"the caller's loop never ran while the app blocked (lag {lag:.3f} s)"

    asyncio.run(main())


# --- startup_failure: why a service refused to start, as a value (notebook 07's misconfigurations) ---


class ConfigError(Exception):
    """Stands in for a service's own configuration error (its module path must not show)."""


def refusing_app(error: Exception | None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if error is not None:
            raise error
        yield

    return FastAPI(title="probe", lifespan=lifespan)


def test_an_app_that_starts_gives_none() -> None:
    assert startup_failure(refusing_app(None)) is None


def test_a_refusal_gives_the_exception_s_name_and_message_without_its_module_path() -> None:
    assert ConfigError.__module__.endswith("test_serve")  # so the path would show
    reason = startup_failure(refusing_app(ConfigError("OPENAI_API_KEY is missing or blank")))
    assert reason == "ConfigError: OPENAI_API_KEY is missing or blank"


def test_a_builtin_exception_keeps_its_name() -> None:
    assert startup_failure(refusing_app(RuntimeError("boom"))) == "RuntimeError: boom"


def test_a_taken_port_gives_the_bind_error() -> None:
    holder = bind_socket()
    try:
        reason = startup_failure(refusing_app(None), port=holder.getsockname()[1])
    finally:
        holder.close()
    assert reason is not None and reason.startswith("cannot bind 127.0.0.1:")
