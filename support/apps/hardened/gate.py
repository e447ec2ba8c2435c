"""The door: request ids, the service token, the body's size and time, one log line per request.

Two layers, both before any route runs.

``Gate``, pure ASGI middleware, so it runs before FastAPI reads or parses a body:

- Deny by default: every path needs a valid service token except the health probes
  (`OPEN_PATHS`), matched exactly on the path the router will route (root path removed),
  so a root path, ``/v1/%63hat``, ``/V1/chat``, ``//v1/chat`` or ``..`` segments can only
  ever reach the 401, never a route without a token.
- The body is read here, in full, before the app sees it: refused unread when its
  ``Content-Length`` is over ``max_body_bytes`` (413), cut off when a chunked body passes
  it (413), and a 408 (with ``Connection: close``) when it has not all arrived within
  ``body_timeout_s``.
- The log line says 499 (``client_disconnected``, nginx's "client closed request") when
  the client left before the response was complete, whatever status the app then sent.

Under it, ``connections.BoundedH11Protocol`` (uvicorn's ``--http``) bounds what comes
before a request exists: idle connections, slow or huge request heads, and how many
connections may be open.

What neither layer can do, and a reverse proxy in front must (nginx: ``limit_conn``,
``limit_req``, ``client_header_timeout``, ``client_body_timeout``, ``access_log``):

- per-client limits: every limit here is per process, so one client can use all of it;
- malformed HTTP and oversized heads are answered by uvicorn itself, before the app runs
  (``uvicorn/protocols/http/h11_impl.py``: ``H11Protocol.handle_events`` catches
  ``h11.RemoteProtocolError`` and calls ``send_400_response``): a ``text/plain`` 400
  "Invalid HTTP request received." with no request id and no log line here (uvicorn logs
  a warning). Likewise past ``limit_concurrency`` uvicorn answers a ``text/plain`` 503
  (``flow_control.service_unavailable``). The proxy's access log is where those show;
- slow headers under httptools: only the h11 protocol here bounds them (and only h11
  bounds the head's size: httptools buffers an unfinished header without limit);
- connections arriving faster than the keep-alive timeout closes them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass

from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import context, errors

log = logging.getLogger("support.apps.hardened")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # the probes; every other path needs a token
CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"


def token_is_valid(authorization: str | None, tokens: list[bytes]) -> bool:
    """Constant-time check of ``Bearer <token>`` against every accepted token."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    candidate = presented.strip().encode()
    # Compare against all of them, so the time taken doesn't say which one came close.
    return sum(hmac.compare_digest(candidate, token) for token in tokens) > 0


def needs_token(scope: Scope) -> bool:
    """Everything but the probes, decided on the path the router matches.

    ``get_route_path`` (``starlette/_utils.py``) is what Starlette's router and routes
    match on: ``scope["path"]`` without the root path. Deciding on ``scope["path"]``
    itself let ``--root-path /llm`` turn ``/v1/chat`` into ``/llm/v1/chat``, which no
    prefix rule protected, while the router still routed it to the chat.
    """
    return get_route_path(scope) not in OPEN_PATHS


def body_too_slow(seconds: float) -> errors.ServiceError:
    """408, and the connection closes: the rest of a slow body must not keep it."""
    return errors.ServiceError(
        408,
        "request_timeout",
        f"The request body did not arrive within {seconds:g} s.",
        type="invalid_request_error",
        headers={"Connection": "close"},
    )


class ClientLeft(Exception):
    """The client disconnected before its body had arrived: there is no one to answer."""


@dataclass
class Exchange:
    """What the log line needs to know about one request's response."""

    status: int = 0
    complete: bool = False  # the app has sent the last byte of its response
    client_left: bool = False  # the client disconnected before that


class Gate:
    """Reads its limits from ``app.state.runtime``, which the lifespan sets up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        record = context.RequestRecord(context.request_id_from(headers.get("x-request-id")))
        reset = context.current.set(record)
        started, exchange = time.perf_counter(), Exchange()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", record.request_id.encode()))
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                exchange.complete = True
            await send(message)

        try:
            await self._serve(scope, headers, receive, send_with_id, exchange)
        except ClientLeft:
            exchange.client_left = True
        except errors.ServiceError as refusal:  # the gate's own: 401, 408, 413, before the app ran
            if exchange.status:
                raise
            record.error_code = refusal.code
            await refusal.response(record.request_id)(scope, receive, send_with_id)
        except Exception:
            # The traceback goes to the log; the client gets a 500 with the request id.
            log.exception("unexpected error serving %s", record.request_id)
            record.error_code = "internal_error"
            if exchange.status:  # the response had started: nothing left to say
                raise
            await errors.internal_error().response(record.request_id)(scope, receive, send_with_id)
        finally:
            context.current.reset(reset)
            _log_request(scope, record, exchange, started)

    async def _serve(self, scope: Scope, headers: Headers, receive: Receive, send: Send, exchange: Exchange) -> None:
        """Let the probes through; for anything else check the token, read the body, then call the app."""
        if not needs_token(scope):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        if not token_is_valid(headers.get("authorization"), runtime.tokens):
            raise errors.unauthorized()
        settings = runtime.settings
        body = await read_body(receive, headers, settings.max_body_bytes, settings.body_timeout_s)
        departure = Departure(receive, exchange)
        try:
            await self.app(scope, _replay(body, then=departure.receive), send)
        finally:
            departure.stop()


async def read_body(receive: Receive, headers: Headers, limit: int, timeout_s: float) -> bytes:
    """The whole body: at most `limit` bytes (else 413), all within `timeout_s` (else 408).

    Raises `ClientLeft` if the client disconnects first. A declared ``Content-Length``
    over the limit is refused unread; a chunked (or lying) body is read up to the limit.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size, more = 0, True
    try:
        async with asyncio.timeout(timeout_s):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientLeft
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > limit:
                    raise errors.too_large(limit)
                more = message.get("more_body", False)
    except TimeoutError:
        raise body_too_slow(timeout_s) from None
    return b"".join(chunks)


class Departure:
    """Waits, from the moment the body is read, for the client to go away.

    After the body the only message left on ``receive`` is ``http.disconnect`` (ASGI
    spec). One task waits for it, so the log line learns that the client left even when
    the route never asks (a plain JSON route doesn't), and so does the request's record
    (``RequestRecord.note_client_left``), which stops a route waiting for the upstream; the
    app's own ``receive`` calls (Starlette's streaming response listens for the disconnect)
    get the same message. uvicorn also answers ``http.disconnect`` once the response is
    complete (``h11_impl.py``: ``RequestResponseCycle.receive``): that one is not a departure.
    """

    def __init__(self, receive: Receive, exchange: Exchange) -> None:
        self._arrived = asyncio.Event()
        self._message: Message = {"type": "http.disconnect"}
        self._record = context.current.get()
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._wait(receive, exchange))

    async def _wait(self, receive: Receive, exchange: Exchange) -> None:
        self._message = await receive()
        left = not exchange.complete
        if left:
            exchange.client_left = True
        self._arrived.set()
        if left and self._record is not None:
            self._record.note_client_left()

    async def receive(self) -> Message:
        await self._arrived.wait()
        return self._message

    def stop(self) -> None:
        # Forget the task as it is cancelled. It keeps its CancelledError, whose traceback holds
        # `_wait`'s frame, which holds this object: kept, the task would close a reference cycle,
        # and every request would leave its objects for the garbage collector's slow, full
        # collections instead of freeing them at once.
        task, self._task = self._task, None
        if task is not None:
            task.cancel()


def _replay(body: bytes, then: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then defers to `then`."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if pending:
            return pending.pop()
        return await then()

    return receive


def _log_request(scope: Scope, record: context.RequestRecord, exchange: Exchange, started: float) -> None:
    if not log.isEnabledFor(logging.INFO):  # the line would be dropped: don't build its JSON
        return
    left = exchange.client_left  # whatever the app sent afterwards went nowhere
    log.info(
        json.dumps(
            {
                "event": "request",
                "request_id": record.request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": CLIENT_CLOSED_REQUEST if left else exchange.status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "upstream_attempts": record.upstream_attempts,
                "upstream_request_id": record.upstream_request_id,
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "error": record.error_code or ("client_disconnected" if left else None),
            }
        )
    )
