"""A streaming route behind a request-log middleware, written three ways.

The route is notebook 06's: ``POST /chat/stream`` primes an `AsyncStream` and returns an
async generator of server-sent events. The middleware gives each response an
``x-request-id`` header and writes one log line per request (logger
``support.apps.middleware``): its id, status, seconds, and bytes of body sent.

- `RequestLog` is a ``BaseHTTPMiddleware``, the shape most tutorials show. In Starlette
  1.10 it streams: ``call_next`` runs the app in a task of its own and hands its body
  messages on one by one, and the app's ``receive`` still delivers the client's
  ``http.disconnect`` (``BaseHTTPMiddleware.__call__`` in starlette/middleware/base.py).
  What it cannot see is the body: ``call_next`` returns as soon as the app has started
  its response, so the seconds it logs are the time to the status line, and it logs
  before the stream has sent anything. A context variable the route sets is not seen
  after ``call_next`` either: the route ran in another task.
- `ResponseBodyLog` is a ``BaseHTTPMiddleware`` that reads ``response.body_iterator`` to
  log the size and returns a new ``Response``: the common way to log a body. It holds the
  whole stream back until the upstream has finished it.
- `RequestLogASGI` is the same log as a pure ASGI middleware: it wraps ``send``, counts
  body bytes as they pass, and logs when the app returns, with the stream's real length
  and whether its final message was sent (``complete``) or the client left (``cut``).

``POST /chat/steps?steps=N`` is the other long request: N model calls in turn (an agent's
loop) that stops early once ``await request.is_disconnected()`` says the client has gone.
Behind a ``BaseHTTPMiddleware`` that check never comes true: ``is_disconnected`` calls the
app's ``receive`` inside an already-cancelled scope, to take only a message that is ready
(``Request.is_disconnected`` in starlette/requests.py), and the middleware's ``receive``
(``receive_or_disconnect``) reads through a task group, which the cancelled scope cancels
too, so no message comes back (encode/starlette discussion 2094). The route records how
many steps it ran in ``app.state.steps_run``.

`create_app` builds the service behind one of them (or none); each app has its own
`AsyncOpenAI`, made in its lifespan.
"""

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Literal

import openai
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from openai import AsyncOpenAI
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .schemas import ChatRequest, model_name
from .stream_async import events

log = logging.getLogger(__name__)
Middleware = Literal["none", "base", "base_body_log", "asgi"]
MIDDLEWARES: tuple[Middleware, ...] = ("none", "base", "base_body_log", "asgi")
# Set by the route: which model the request asked for. A middleware's log line wants it.
route_model: ContextVar[str | None] = ContextVar("route_model", default=None)


def request_id(headers: dict[str, str]) -> str:
    """The caller's ``x-request-id`` if it is a sane token, else a fresh one."""
    given = headers.get("x-request-id", "")
    return (
        given
        if 0 < len(given) <= 64 and given.isascii() and given.isprintable() and " " not in given
        else uuid.uuid4().hex
    )


def log_line(rid: str, status: int, seconds: float, body_bytes: int | None, ending: str) -> None:
    size = "?" if body_bytes is None else str(body_bytes)
    log.info(
        "%s status=%d seconds=%.3f body_bytes=%s model=%s %s", rid, status, seconds, size, route_model.get(), ending
    )


class RequestLog(BaseHTTPMiddleware):
    """The tutorial shape: time ``call_next``, add the header, log."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        rid, started = request_id(dict(request.headers)), time.perf_counter()
        response = await call_next(request)  # returns once the app has *started* its response
        response.headers["x-request-id"] = rid
        log_line(rid, response.status_code, time.perf_counter() - started, None, "returned")
        return response


class ResponseBodyLog(BaseHTTPMiddleware):
    """The common way to log a response body: read it all, then send a copy (broken for streams)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        rid, started = request_id(dict(request.headers)), time.perf_counter()
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        log_line(rid, response.status_code, time.perf_counter() - started, len(body), "read")
        headers = dict(response.headers) | {"x-request-id": rid}
        headers.pop("content-length", None)
        return Response(body, status_code=response.status_code, headers=headers)


class RequestLogASGI:
    """The same log as a pure ASGI middleware: it sees every message as it passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid, started = request_id(headers), time.perf_counter()
        status, sent, final = 500, 0, False

        async def logging_send(message: Message) -> None:
            nonlocal status, sent, final
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                final = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            log_line(rid, status, time.perf_counter() - started, sent, "complete" if final else "cut")


async def get_client(request: Request) -> AsyncOpenAI:
    client: AsyncOpenAI = request.app.state.openai
    return client


async def chat_steps(
    body: ChatRequest,
    request: Request,
    client: Annotated[AsyncOpenAI, Depends(get_client)],
    steps: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, int]:
    """Model calls in turn, as an agent's loop makes them; stop once the client has gone."""
    run = 0
    try:
        for _ in range(steps):
            if await request.is_disconnected():  # the client has gone: stop paying for steps
                break
            await client.chat.completions.create(
                model=model_name(), messages=[{"role": "user", "content": f"step {run + 1}: {body.prompt}"}]
            )
            run += 1
    finally:
        request.app.state.steps_run.append(run)
    return {"steps": run}


def create_app(middleware: Middleware = "base") -> FastAPI:
    """The streaming service behind `middleware`: one of `MIDDLEWARES`."""
    if middleware not in MIDDLEWARES:
        raise ValueError(f"middleware must be one of {', '.join(MIDDLEWARES)}, not {middleware!r}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncOpenAI() as client:
            app.state.openai, app.state.steps_run = client, []
            yield

    app = FastAPI(title=f"streaming behind middleware: {middleware}", lifespan=lifespan)
    if middleware == "base":
        app.add_middleware(RequestLog)
    elif middleware == "base_body_log":
        app.add_middleware(ResponseBodyLog)
    elif middleware == "asgi":
        app.add_middleware(RequestLogASGI)

    @app.post("/chat/stream")
    async def chat_stream(body: ChatRequest, client: Annotated[AsyncOpenAI, Depends(get_client)]) -> StreamingResponse:
        route_model.set(model_name())
        try:
            stream = await client.chat.completions.create(
                model=model_name(), messages=[{"role": "user", "content": body.prompt}], stream=True
            )
        except openai.RateLimitError as exc:
            raise HTTPException(429, "upstream rate limit", headers={"Retry-After": "1"}) from exc
        except openai.APIError as exc:
            raise HTTPException(502, "upstream error") from exc
        return StreamingResponse(events(stream), media_type="text/event-stream")

    app.add_api_route("/chat/steps", chat_steps, methods=["POST"])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app("base")
