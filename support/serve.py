"""Run an ASGI app on a real socket inside this process, and stop it cleanly.

Two shapes:

- `serve_in_loop`: the server is a task on the *running* event loop (a Jupyter
  kernel, an async test). Cheap, and the app shares the caller's loop.
- `serve_in_thread`: the server runs on its own event loop in a daemon thread. Use it
  for sync callers, and for apps that block their loop on purpose (the broken
  services in the runbook): a blocked server loop must not freeze the caller.

Both bind the listening socket themselves (port 0 picks a free port) and hand it to
uvicorn, because uvicorn calls ``sys.exit`` when *it* fails to bind (status 3 in
uvicorn 0.54; notebook 05 shows it), and that kills a Jupyter kernel. Both run the
app's lifespan and raise `ServerStartError` with the app's own error message when
startup fails; `startup_failure` turns that into a value, for showing a service that
refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

__all__ = ["RunningServer", "ServerStartError", "bind_socket", "serve_in_loop", "serve_in_thread", "startup_failure"]


class ServerStartError(RuntimeError):
    """The app could not be served: the port could not be bound or startup failed."""


@dataclass
class RunningServer:
    """A server that is accepting connections at `base_url`."""

    base_url: str
    host: str
    port: int
    server: uvicorn.Server = field(repr=False)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a TCP socket and start listening; port 0 picks a free port.

    It listens at once, so a client may connect as soon as the port is known (the
    connection waits in the backlog until the server accepts). The protocol is named
    explicitly: asyncio sets TCP_NODELAY on accepted connections only when the listening
    socket says IPPROTO_TCP, and without it Nagle's algorithm and delayed ACKs add about
    40 ms to every response written in two parts.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class _StartupWatch:
    """ASGI wrapper that remembers why the app's lifespan startup failed."""

    def __init__(self, app: ASGI3Application) -> None:
        self.app = app
        self.failure: str | None = None

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def watched_send(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.failure = message.get("message") or "lifespan startup failed"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:  # an app that raises instead of sending startup.failed
            self.failure = self.failure or f"{type(exc).__name__}: {exc}"
            raise


class _Server(uvicorn.Server):
    """uvicorn.Server made safe to embed in a kernel, a thread or a test.

    Signal handling is left to the host, and the ``sys.exit`` uvicorn calls when the
    app's startup fails is turned into a return: the caller sees `started` stay False
    and raises `ServerStartError` (a SystemExit escaping a task would stop the loop).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets=sockets)
        except SystemExit:
            if self.started:
                raise


def _make_server(
    app: Any, sock: socket.socket, log_level: str, shutdown_timeout: float, options: dict[str, Any]
) -> tuple[_Server, _StartupWatch]:
    watch = _StartupWatch(app)
    config = uvicorn.Config(
        watch,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(shutdown_timeout)),
        **options,
    )
    return _Server(config), watch


def _start_error(watch: _StartupWatch, what: str) -> ServerStartError:
    reason = (watch.failure or "").strip().splitlines()
    detail = reason[-1] if reason else "the server stopped before it was ready"
    return ServerStartError(f"{what} failed to start: {detail}")


def _running(server: _Server, sock: socket.socket) -> RunningServer:
    host, port = sock.getsockname()[:2]
    return RunningServer(base_url=f"http://{host}:{port}", host=host, port=port, server=server)


@contextlib.asynccontextmanager
async def serve_in_loop(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 3.0,
    log_level: str = "warning",
    **uvicorn_options: Any,
) -> AsyncIterator[RunningServer]:
    """Serve `app` as a task on the running loop for the duration of the block.

    Extra keyword arguments go to `uvicorn.Config` (for example ``http="h11"``).
    """
    sock = bind_socket(host, port)
    server, watch = _make_server(app, sock, log_level, shutdown_timeout, uvicorn_options)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{sock.getsockname()[1]}")
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if task.done():
                task.result()  # re-raise an exception from serve(), if any
                raise _start_error(watch, _app_name(app))
            if time.monotonic() > deadline:
                raise ServerStartError(f"{_app_name(app)} did not start within {startup_timeout} s")
            await asyncio.sleep(0.01)
        yield _running(server, sock)
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=shutdown_timeout + 2)
        if not done:
            server.force_exit = True
            task.cancel()
            await asyncio.wait({task})
        sock.close()


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 3.0,
    log_level: str = "warning",
    **uvicorn_options: Any,
) -> Iterator[RunningServer]:
    """Serve `app` on its own event loop in a daemon thread for the duration of the block."""
    sock = bind_socket(host, port)
    server, watch = _make_server(app, sock, log_level, shutdown_timeout, uvicorn_options)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except Exception as exc:  # reported to the caller below, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn:{sock.getsockname()[1]}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                if failure:
                    raise ServerStartError(f"{_app_name(app)} failed to start: {failure[0]!r}")
                raise _start_error(watch, _app_name(app))
            if time.monotonic() > deadline:
                raise ServerStartError(f"{_app_name(app)} did not start within {startup_timeout} s")
            time.sleep(0.01)
        yield _running(server, sock)
    finally:
        server.should_exit = True
        thread.join(timeout=shutdown_timeout + 2)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


def startup_failure(app: Any, **options: Any) -> str | None:
    """Start `app` in a thread and stop it at once: None if it started, else why it did not.

    A service that checks its configuration in its lifespan refuses to start, and the
    reason is what an operator reads, so a notebook shows it: the last line of the
    startup error with the exception's module path dropped (``ConfigError: OPENAI_API_KEY
    is missing``). `options` go to `serve_in_thread`; the log level defaults to
    ``critical``, so the refusal is not also logged as a traceback.
    """
    options.setdefault("log_level", "critical")
    try:
        with serve_in_thread(app, **options):
            return None
    except ServerStartError as exc:
        reason = str(exc).split(" failed to start: ", 1)[-1]
        return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", reason)


def _app_name(app: Any) -> str:
    title = getattr(app, "title", None)
    return f"app {title!r}" if isinstance(title, str) else f"app {type(app).__name__}"
