"""Server-sent events through FastAPI, seen from both ends of the connection.

From the client's end: `read_stream` records when each event arrived, so a notebook can
show time to first token, and can leave after `leave_after` events, the way a user
closes a tab; `aread_stream` is the same on an ``httpx.AsyncClient``. A `StreamEndpoint`
bundles where a streaming route is with what to send it, so a notebook can compare
services by name and open many streams at once (`StreamEndpoint.read_many`).

From the service's end: a `Recorder` wraps an ASGI app and notes, on the same clock as
the client's `StreamRead.left_at`, when the app sent each message of a response (the
``http.response.start`` that carries the status, each body chunk, the final one) and
when it returned; `marking_client` stands in for a route's client dependency (through
FastAPI's ``dependency_overrides``) and adds a mark when the route calls
``chat.completions.create`` and when that returns. `replica` copies an app (lifespan
and routes, its own state) so it can be served beside the original, and
`with_spec_version` relabels the ASGI spec version a server reports.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Event:
    name: str  # "message" when the event has no name
    data: Any
    at_s: float  # seconds since the request was sent


@dataclass
class StreamRead:
    status: int
    headers: dict[str, str]
    events: list[Event] = field(default_factory=list)
    body: Any = None  # the body of a response that is not a stream: JSON, or text when it is not JSON
    transport_error: str | None = None  # e.g. the connection was cut mid-stream
    left_at: float | None = None  # wall clock (time.time()) when the client walked away

    @property
    def text(self) -> str:
        return "".join(e.data.get("delta", "") for e in self.events if isinstance(e.data, dict))

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]


def parse_event(block: str) -> tuple[str, Any] | None:
    """One SSE block (lines up to a blank line) as (event name, JSON data); None if it has no data."""
    name, data = "message", None
    for line in block.splitlines():
        if line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data = json.loads(line[len("data:") :].strip())
    return None if data is None else (name, data)


def parse_events(text: str) -> list[tuple[str, Any]]:
    """Every event in a complete SSE body."""
    return [event for block in text.split("\n\n") if (event := parse_event(block)) is not None]


def _body(response: httpx.Response) -> Any:
    """A finished response's JSON body; its text when it is not JSON (a proxy's HTML error page)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _is_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


class _Reader:
    """Turns a stream's lines into timed events and says when the client should leave."""

    def __init__(self, read: StreamRead, started: float, leave_after: int | None) -> None:
        self.read, self.started, self.leave_after = read, started, leave_after
        self.block: list[str] = []

    def line(self, line: str) -> bool:
        """Take one line; True when the client has read enough and walks away."""
        if line:
            self.block.append(line)
            return False
        event = parse_event("\n".join(self.block))
        self.block = []
        if event is not None:
            self.read.events.append(Event(event[0], event[1], time.perf_counter() - self.started))
        if self.leave_after is not None and len(self.read.events) >= self.leave_after:
            self.read.left_at = time.time()
            return True
        return False


def read_stream(
    client: httpx.Client, path: str, body: Any, *, leave_after: int | None = None, headers: dict[str, str] | None = None
) -> StreamRead:
    """POST `body` to `path` and read the answer; with `leave_after`, close after that many events."""
    started = time.perf_counter()
    with client.stream("POST", path, json=body, headers=headers) as response:
        read = StreamRead(response.status_code, dict(response.headers))
        if not _is_stream(response):
            response.read()
            read.body = _body(response)
            return read
        reader = _Reader(read, started, leave_after)
        try:
            for line in response.iter_lines():
                if reader.line(line):
                    break  # leaving the `with` closes the connection
        except httpx.TransportError as exc:
            read.transport_error = f"{type(exc).__name__}: {exc}"
    return read


async def aread_stream(
    client: httpx.AsyncClient,
    path: str,
    body: Any,
    *,
    leave_after: int | None = None,
    headers: dict[str, str] | None = None,
) -> StreamRead:
    """`read_stream` on an async client, so that many streams can be read at once."""
    started = time.perf_counter()
    async with client.stream("POST", path, json=body, headers=headers) as response:
        read = StreamRead(response.status_code, dict(response.headers))
        if not _is_stream(response):
            await response.aread()
            read.body = _body(response)
            return read
        reader = _Reader(read, started, leave_after)
        try:
            async for line in response.aiter_lines():
                if reader.line(line):
                    break  # leaving the `async with` closes the connection
        except httpx.TransportError as exc:
            read.transport_error = f"{type(exc).__name__}: {exc}"
    return read


@dataclass(frozen=True)
class StreamEndpoint:
    """A streaming route as its clients see it: where it is, what to send, which headers."""

    base_url: str
    path: str
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def _headers(self, request_id: str | None) -> dict[str, str]:
        return dict(self.headers) | ({"x-request-id": request_id} if request_id else {})

    def read(
        self, *, leave_after: int | None = None, request_id: str | None = None, timeout: float = 30.0
    ) -> StreamRead:
        """One streamed request, read as a browser would (see `read_stream`)."""
        with httpx.Client(base_url=self.base_url, timeout=timeout) as http:
            return read_stream(http, self.path, self.body, leave_after=leave_after, headers=self._headers(request_id))

    async def read_many(
        self,
        n: int,
        *,
        concurrency: int,
        leave_after: int | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - each request's timeout, handed to httpx
    ) -> list[StreamRead]:
        """`n` streamed requests, at most `concurrency` open at once; each client leaves after `leave_after` events."""
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as http:

            async def one() -> StreamRead:
                async with gate:
                    return await aread_stream(
                        http, self.path, self.body, leave_after=leave_after, headers=self._headers(None)
                    )

            return list(await asyncio.gather(*(one() for _ in range(n))))


# --- the service's end -----------------------------------------------------------------


@dataclass
class ResponseTrace:
    """One HTTP request as an app handled it: what it sent and when (``time.time()``)."""

    spec_version: str | None  # scope["asgi"]["spec_version"] as the app saw it
    received_at: float  # when the request reached the app
    events: list[tuple[float, str]] = field(default_factory=list)  # (when, what), in order
    status: int | None = None
    returned_at: float | None = None  # when the app returned (or raised)

    def at(self, what: str) -> float | None:
        """When `what` (an event's text, or its start) first happened; None if it never did."""
        return next((when for when, text in self.events if text.startswith(what)), None)

    @property
    def final_at(self) -> float | None:
        """When the app sent the final body message (``more_body`` false): None if it never did."""
        return self.at(FINAL_BODY)

    def bodies_after(self, moment: float) -> int:
        """How many body messages the app sent after `moment` (``time.time()``)."""
        return sum(1 for when, text in self.events if when > moment and text.startswith(BODY))

    def order(self) -> list[str]:
        """The events' texts in order, each run of body chunks as one entry."""
        texts: list[str] = []
        for _, text in self.events:
            if not (texts and text == BODY and texts[-1] == BODY):
                texts.append(text)
        return texts

    def timeline(self) -> str:
        """One line per entry of `order`, in milliseconds since the request reached the app."""
        lines, previous = [], ""
        for when, text in self.events:
            if text == BODY and previous == BODY:
                continue
            previous = text
            chunks = f" (first of {sum(1 for _, t in self.events if t == BODY)})" if text == BODY else ""
            lines.append(f"{(when - self.received_at) * 1000:8.1f} ms  {text}{chunks}")
        return "\n".join(lines)


START = "server: http.response.start"
BODY = "server: http.response.body"
FINAL_BODY = "server: http.response.body, the final one"
_current: contextvars.ContextVar[ResponseTrace | None] = contextvars.ContextVar("sse_trace", default=None)


class Recorder:
    """A pass-through ASGI wrapper that records what `app` sends for each HTTP request.

    Each request gets a `ResponseTrace` (`responses`, oldest first). Code running for the
    request (the route, its dependencies, the tasks they start) can add its own events
    with `mark`, so one trace shows, in order, what the route did and what the server
    was handed. The wrapper changes nothing it passes on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.responses: list[ResponseTrace] = []

    @staticmethod
    def mark(what: str) -> None:
        """Add `what`, now, to the trace of the request this code runs for (if any)."""
        trace = _current.get()
        if trace is not None:
            trace.events.append((time.time(), what))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = ResponseTrace(scope.get("asgi", {}).get("spec_version"), time.time())
        self.responses.append(trace)

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                trace.status = message["status"]
                trace.events.append((time.time(), f"{START} ({message['status']})"))
            elif message["type"] == "http.response.body":
                final = not message.get("more_body", False)
                trace.events.append((time.time(), FINAL_BODY if final else BODY))
            await send(message)

        token = _current.set(trace)
        try:
            await self.app(scope, receive, noting)
        finally:
            trace.returned_at = time.time()
            _current.reset(token)

    async def returned(self, count: int, *, timeout_s: float) -> list[ResponseTrace]:
        """Wait until the app has returned for `count` requests; the traces. Raises
        `TimeoutError` after `timeout_s` (a response nobody cancels runs to its end first)."""
        deadline = time.monotonic() + timeout_s
        while sum(1 for trace in self.responses if trace.returned_at is not None) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app returned for fewer than {count} requests within {timeout_s:g} s")
            await asyncio.sleep(0.01)
        return self.responses


class _MarkingCompletions:
    def __init__(self, completions: Any) -> None:
        self._completions = completions

    async def create(self, **options: Any) -> Any:
        Recorder.mark("route: chat.completions.create() called")
        try:
            result = await self._completions.create(**options)
        except BaseException as exc:
            Recorder.mark(f"route: chat.completions.create() raised {type(exc).__name__}")
            raise
        Recorder.mark("route: chat.completions.create() returned (the upstream answered)")
        return result


def marking_client(get_client: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Any]]:
    """A stand-in for the ``async def`` dependency `get_client`, for ``app.dependency_overrides``.

    It hands the route the same client's ``chat.completions.create``, which marks (see
    `Recorder.mark`) when the route calls it and when it returns or raises. Only that
    method is there: a route that uses anything else of the client fails loudly.
    """

    async def marked(request: Request) -> Any:
        client = await get_client(request)
        return SimpleNamespace(chat=SimpleNamespace(completions=_MarkingCompletions(client.chat.completions)))

    return marked


def replica(app: FastAPI) -> FastAPI:
    """A new app with `app`'s lifespan and API routes, and a state of its own.

    Serving one app object from two servers would let the second server's lifespan
    replace ``app.state`` (its client included) under the first. A replica has its own
    ``state`` and ``dependency_overrides``, so it can be served, wrapped or overridden
    beside the original without touching it.
    """
    copy = FastAPI(title=app.title, lifespan=app.router.lifespan_context)
    for route in app.routes:
        if isinstance(route, APIRoute):
            copy.add_api_route(
                route.path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                response_class=route.response_class,
                status_code=route.status_code,
                name=route.name,
            )
    return copy


def with_spec_version(app: ASGIApp, spec_version: str) -> ASGIApp:
    """`app` told that the server speaks ASGI spec version `spec_version` (for HTTP requests).

    Only the label changes: the server under it behaves as before. Starlette's
    ``StreamingResponse`` decides from this label whether to listen for the client's
    disconnect (below 2.4) or to rely on a failing ``send`` (2.4 and later).
    """

    async def relabelled(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "asgi": {**scope.get("asgi", {}), "spec_version": spec_version}}
        await app(scope, receive, send)

    return relabelled


def with_response_headers(app: ASGIApp, headers: Mapping[str, str]) -> ASGIApp:
    """`app` with `headers` added to every HTTP response it starts (replacing its own of
    the same name), so two runs of one service differ only in those headers."""
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    names = {name for name, _ in extra}

    async def headed(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await app(scope, receive, send_with_headers if scope["type"] == "http" else send)

    return headed
