"""Read a server-sent-events response as a client would, and optionally walk away.

`read_stream` records when each event arrived, so a notebook can show time to first
token, and can leave after `leave_after` events, the way a user closes a tab.
"""

from __future__ import annotations

import json
import time
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


def read_stream(
    client: httpx.Client, path: str, body: Any, *, leave_after: int | None = None, headers: dict[str, str] | None = None
) -> StreamRead:
    """POST `body` to `path` and read the answer; with `leave_after`, close after that many events."""
    started = time.perf_counter()
    with client.stream("POST", path, json=body, headers=headers) as response:
        read = StreamRead(response.status_code, dict(response.headers))
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
            read.body = response.json() if response.content else None
            return read
        block: list[str] = []
        try:
            for line in response.iter_lines():
                if line:
                    block.append(line)
                    continue
                event = parse_event("\n".join(block))
                block = []
                if event is not None:
                    read.events.append(Event(event[0], event[1], time.perf_counter() - started))
                if leave_after is not None and len(read.events) >= leave_after:
                    read.left_at = time.time()
                    break  # leaving the `with` closes the connection
        except httpx.TransportError as exc:
            read.transport_error = f"{type(exc).__name__}: {exc}"
    return read
