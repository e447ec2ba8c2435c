"""Read a server-sent-events response as a client would, and optionally walk away.

`read_stream` records when each event arrived, so a notebook can show time to first
token, and can leave after `leave_after` events, the way a user closes a tab;
`aread_stream` is the same on an ``httpx.AsyncClient``. A `StreamEndpoint` bundles where
a streaming route is with what to send it, so a notebook can compare services by name
and open many streams at once (`StreamEndpoint.read_many`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


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
    body: Any = None  # the JSON body of a response that is not a stream
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
            read.body = response.json() if response.content else None
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
            read.body = response.json() if response.content else None
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
