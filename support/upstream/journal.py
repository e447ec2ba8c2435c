"""The request journal: what the upstream received and what became of it.

Notebooks read it to prove what no client-side view can show: that a request which
ended in a TypeError was still sent and answered (and billed), how many attempts the
SDK's retries made, and that a stream stopped when its client went away.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..tables import text_table

# What became of a request:
#   ok            answered in full (a stream: through its last event)
#   error         answered with an HTTP error status (validation, auth, a rate limit or an injected fault)
#   reset         connection reset before any response byte (the 'reset' fault, a stale connection)
#   dropped       connection cut in the middle of the answer (the 'stream_drop' fault)
#   stream_error  a stream that ended with an error event (the 'stream_error' fault)
#   malformed     200 with a body that is not valid JSON (the *_json faults)
#   disconnected  the client went away before the answer was complete
#   pending       still being handled
Outcome = Literal["ok", "error", "reset", "dropped", "stream_error", "malformed", "disconnected", "pending"]


@dataclass
class JournalEntry:
    """One request as the upstream saw it. Times are ``time.time()`` seconds."""

    seq: int
    request_id: str
    method: str
    path: str
    received_at: float
    endpoint: str | None = None  # "chat.completions", "responses", "models"
    model: str | None = None
    stream: bool = False
    attempt: int | None = None  # the SDK's x-stainless-retry-count, if sent
    fault: str | None = None  # the fault applied to this request, if any ("stale_connection": see settings)
    rate_limited: Literal["requests", "tokens"] | None = None  # the limit that refused it with a 429, if one did
    connection: int | None = None  # its TCP connection: 1, 2, ... in the order the upstream first saw each
    connection_idle: float | None = None  # seconds that connection was idle before it; None on its first request
    status: int | None = None
    outcome: Outcome = "pending"
    client_disconnected: bool = False
    chunks_sent: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0  # output tokens generated and sent: what would be billed
    api_version: str | None = None  # an Azure-shaped request's api-version query parameter (see `azure`)
    planned_latency: float | None = None  # seconds it was to take (a stream: to its first chunk); see `latency`
    started_at: float | None = None  # when its generation got a slot (see `capacity`); None if it never did
    finished_at: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.received_at

    @property
    def queued(self) -> float | None:
        """Seconds from arrival to the start of its generation: the wait for a slot under a capacity
        limit, next to nothing without one; None if it never started generating."""
        return None if self.started_at is None else max(0.0, self.started_at - self.received_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"duration": self.duration, "queued": self.queued}


@dataclass
class Journal:
    """A bounded, thread-safe log of requests, newest last."""

    max_entries: int = 100_000
    _entries: deque[JournalEntry] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _next_seq: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._entries = deque(maxlen=self.max_entries)

    def open(self, method: str, path: str, request_id_for: Callable[[int], str]) -> JournalEntry:
        """Record a newly received request and return its (mutable) entry."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            entry = JournalEntry(seq, request_id_for(seq), method, path, received_at=time.time())
            self._entries.append(entry)
            return entry

    def entries(self, *, endpoint: str | None = None) -> list[JournalEntry]:
        """A snapshot of the entries, optionally only those of one endpoint."""
        with self._lock:
            entries = list(self._entries)
        return [e for e in entries if endpoint is None or e.endpoint == endpoint]

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep counting, so ids stay unique)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def wait_for(
        self,
        predicate: Callable[[list[JournalEntry]], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a poll, not a cancel scope
    ) -> list[JournalEntry]:
        """Wait until `predicate(entries)` holds, e.g. until a stream is recorded finished."""
        deadline = time.monotonic() + timeout
        while not predicate(entries := self.entries()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"journal condition not met within {timeout} s")
            await asyncio.sleep(0.01)
        return entries


DEFAULT_COLUMNS = ("seq", "endpoint", "stream", "attempt", "fault", "status", "outcome", "completion_tokens")


def format_entries(entries: list[JournalEntry], columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    """The entries as an aligned text table, for notebooks and logs."""
    rows = [list(columns)] + [["-" if (v := getattr(e, c)) is None else str(v) for c in columns] for e in entries]
    return text_table(rows, numeric_from=len(columns))
