"""A stream through each request-log middleware, seen from the client, the log and the upstream (15).

`through` serves `support.apps.middleware`'s service behind one middleware on a real socket,
reads whole streams from it (when each event arrived, what the middleware logged), then
reads one more and walks away after a few events, and asks the bundled upstream's journal
what became of that request: stopped when the client left (``disconnected``), or generated
to the end (``ok``). `table` and `logged_table` print the runs side by side.

`abandoned_steps` is the other long request: the service's multi-step route, which checks
``request.is_disconnected()`` between model calls, left by its client partway; it reports
how many steps the route ran, and (bundled upstream) how many calls the upstream received.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass

import httpx

from .apps import middleware as service
from .logcapture import log_lines
from .serve import serve_in_thread
from .sse import StreamEndpoint, StreamRead
from .tables import text_table
from .target import Target
from .upstream.journal import JournalEntry
from .upstream_calls import calls_from_now

__all__ = ["Abandoned", "Logged", "Through", "abandoned_steps", "logged_table", "parse_log", "table", "through"]

LOG_LINE = re.compile(
    r"^(?P<rid>\S+) status=(?P<status>\d+) seconds=(?P<seconds>[\d.]+) body_bytes=(?P<bytes>\d+|\?) "
    r"model=(?P<model>\S+) (?P<ending>\w+)$"
)


@dataclass(frozen=True)
class Logged:
    """One line the middleware logged."""

    request_id: str
    status: int
    seconds: float
    body_bytes: int | None  # None: the middleware cannot know
    model: str | None  # the context variable the route set, as the middleware saw it
    ending: str  # returned (BaseHTTPMiddleware), read (it read the body), complete or cut (pure ASGI)


def parse_log(line: str) -> Logged:
    """A `support.apps.middleware` log line as data; ValueError if it is not one."""
    match = LOG_LINE.match(line)
    if match is None:
        raise ValueError(f"not a request-log line: {line!r}")
    size, model = match["bytes"], match["model"]
    return Logged(
        match["rid"],
        int(match["status"]),
        float(match["seconds"]),
        None if size == "?" else int(size),
        None if model == "None" else model,
        match["ending"],
    )


@dataclass
class Through:
    """What one middleware did to the streams read through it."""

    middleware: str
    reads: list[StreamRead]  # the whole streams
    logged: list[Logged]  # one line per whole stream, in order
    left: StreamRead  # the stream the client walked away from
    left_logged: Logged | None  # its log line (None if none was written)
    upstream: JournalEntry | None  # the upstream's record of that stream (bundled upstream only)

    @property
    def first_event_s(self) -> float:
        """Median seconds from sending the request to the first event."""
        return statistics.median(read.events[0].at_s for read in self.reads)

    @property
    def last_event_s(self) -> float:
        """Median seconds from sending the request to the last event."""
        return statistics.median(read.events[-1].at_s for read in self.reads)

    @property
    def spread_s(self) -> float:
        """Median seconds between the first event's arrival and the last's: about none when held back."""
        return statistics.median(read.events[-1].at_s - read.events[0].at_s for read in self.reads)

    @property
    def request_ids_echoed(self) -> bool:
        """Every whole stream came back with the x-request-id it was sent with (the middleware added it)."""
        return all(read.headers.get("x-request-id") == sent_id(self.middleware, n) for n, read in enumerate(self.reads))


def sent_id(middleware: str, n: int) -> str:
    """The x-request-id `through` sends with whole stream `n`."""
    return f"{middleware}-{n}"


async def through(
    target: Target,
    middleware: service.Middleware,
    *,
    reads: int = 2,
    leave_after: int = 3,
    timeout_s: float = 30.0,
) -> Through:
    """Serve the streaming service behind `middleware` against `target`; read `reads` whole
    streams (after one unrecorded warm-up), then one the client leaves after `leave_after` events."""
    if reads < 1 or leave_after < 1:
        raise ValueError("reads and leave_after must be at least 1")
    target.export_sdk_env()
    body = {"prompt": "Why does a middleware see a stream differently?"}
    with serve_in_thread(service.create_app(middleware)) as server, log_lines(service.log.name) as lines:
        endpoint = StreamEndpoint(server.base_url, "/chat/stream", body)
        endpoint.read(timeout=timeout_s)  # warm-up: the service's first connection to the upstream
        whole = [endpoint.read(request_id=sent_id(middleware, n), timeout=timeout_s) for n in range(reads)]
        logs = middleware != "none"  # every other one writes a line per request
        logged = [parse_log(line) for line in await _lines(lines, reads + 1, timeout_s)][1:] if logs else []
        calls = calls_from_now(target)
        left = endpoint.read(leave_after=leave_after, request_id=f"{middleware}-left", timeout=timeout_s)
        entries = await calls.settled(timeout=timeout_s) if calls.observable else []
        left_lines = (
            [parse_log(line) for line in await _lines(lines, reads + 2, timeout_s)][reads + 1 :] if logs else []
        )
    for read in [*whole, left]:
        if read.status != 200 or not read.events:
            raise RuntimeError(f"{middleware}: the stream answered {read.status} with {len(read.events)} events")
    return Through(
        middleware, whole, logged, left, left_lines[0] if left_lines else None, entries[0] if entries else None
    )


async def _lines(lines: list[str], count: int, timeout_s: float) -> list[str]:
    """`lines` once it holds `count` (a pure ASGI log line is written after the last byte was sent)."""
    deadline = time.monotonic() + timeout_s
    while len(lines) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - a poll on a list
        await asyncio.sleep(0.01)
    return list(lines)


def table(runs: list[Through]) -> str:
    """The client's view: median first and last event (seconds), the request id echoed."""
    rows = [["middleware", "events", "first event s", "last event s", "x-request-id back"]]
    for run in runs:
        rows.append(
            [
                run.middleware,
                str(len(run.reads[0].events)),
                f"{run.first_event_s:.3f}",
                f"{run.last_event_s:.3f}",
                str(run.request_ids_echoed),
            ]
        )
    return text_table(rows, numeric_from=1)


def logged_table(runs: list[Through]) -> str:
    """What each middleware logged for a whole stream and for the one the client left."""
    rows = [["middleware", "logged s", "body bytes", "model", "ending", "left: ending", "left: body bytes"]]
    for run in runs:
        if not run.logged:
            continue
        whole, left = run.logged[0], run.left_logged
        rows.append(
            [
                run.middleware,
                f"{whole.seconds:.3f}",
                "?" if whole.body_bytes is None else str(whole.body_bytes),
                str(whole.model),
                whole.ending,
                "-" if left is None else left.ending,
                "-" if left is None or left.body_bytes is None else str(left.body_bytes),
            ]
        )
    return text_table(rows, numeric_from=1)


@dataclass(frozen=True)
class Abandoned:
    """A multi-step request its client left partway."""

    middleware: str
    steps: int  # asked for
    steps_run: int  # as the route recorded them
    upstream_calls: int | None  # model calls the upstream received (bundled upstream only)

    @property
    def stopped_early(self) -> bool:
        return self.steps_run < self.steps


async def abandoned_steps(
    target: Target, middleware: service.Middleware, *, steps: int, leave_after_s: float, timeout_s: float = 30.0
) -> Abandoned:
    """POST ``/chat/steps?steps=N`` to the service behind `middleware`, leave after
    `leave_after_s`, and wait until the route has finished. RuntimeError if the request
    was answered before the client left (give it more `steps`)."""
    if steps < 1 or leave_after_s <= 0:
        raise ValueError("steps must be at least 1 and leave_after_s positive")
    target.export_sdk_env()
    app = service.create_app(middleware)
    with log_lines(service.log.name), serve_in_thread(app) as server:
        calls = calls_from_now(target)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=leave_after_s) as http:
            try:
                await http.post("/chat/steps", params={"steps": steps}, json={"prompt": "Plan a trip."})
            except httpx.TimeoutException:
                pass
            else:
                raise RuntimeError(f"{middleware}: all {steps} steps ran before the client left; ask for more")
        deadline = time.monotonic() + timeout_s
        while not app.state.steps_run:  # the route appends when it ends
            if time.monotonic() > deadline:
                raise TimeoutError(f"{middleware}: the route did not finish within {timeout_s:g} s")
            await asyncio.sleep(0.01)
        run: int = app.state.steps_run[0]
        entries = await calls.settled(at_least=max(run, 1), timeout=timeout_s) if calls.observable and run else []
    return Abandoned(middleware, steps, run, len(entries) if calls.observable else None)
