"""The hardened service's contract under upstream faults, as data, and a way to check it.

Each `FaultCase` says: with this fault on the bundled upstream, a caller of the service
gets this status and error code, after this many upstream attempts. Notebook 07 runs
the matrix and shows it (`format_observations`); the hardened service's tests run it and
assert it. Both use `MATRIX_SETTINGS`, sized so every case ends in a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .sse import parse_events
from .upstream import RunningUpstream

# Small on purpose: a hang costs (max_retries + 1) x read timeout + backoff, not minutes.
MATRIX_SETTINGS: dict[str, Any] = {
    "max_retries": 2,
    "connect_timeout_s": 1.0,
    "read_timeout_s": 0.5,
    "deadline_s": 6.0,
}


@dataclass(frozen=True)
class FaultCase:
    fault: str | None
    status: int  # what the service's caller gets (for streams: before any event)
    code: str | None  # the error code in the body, or in the stream's error event
    attempts: int  # requests the upstream saw
    stream: bool = False
    why: str = ""
    api: str = "chat"  # or "responses": the same stream contract over the Responses API

    @property
    def path(self) -> str:
        """The service route the case calls."""
        if self.api == "responses":
            return "/v1/responses/stream"
        return "/v1/chat/stream" if self.stream else "/v1/chat"


MATRIX: list[FaultCase] = [
    FaultCase(None, 200, None, 1, why="the happy path"),
    FaultCase("rate_limit;retry_after=0.2", 429, "rate_limited", 3, why="retried, then passed on with Retry-After"),
    FaultCase("rate_limit;retry_after=0.2;times=1", 200, None, 2, why="one retry absorbs a short burst"),
    FaultCase("rate_limit;retry_after=30", 429, "rate_limited", 1, why="a wait the deadline can't hold: at once"),
    FaultCase("quota", 503, "upstream_quota_exhausted", 1, why="never retried: it cannot succeed"),
    FaultCase("server_error;status=503", 502, "upstream_error", 3, why="retried, then 502"),
    FaultCase("server_error;times=2", 200, None, 3, why="the last retry succeeds"),
    FaultCase("unauthorized", 500, "upstream_auth_failed", 1, why="our key is wrong: not retried, not leaked"),
    FaultCase("bad_request", 400, "invalid_request", 1, why="the upstream's message is passed on"),
    FaultCase("hang", 504, "upstream_timeout", 3, why="each attempt times out after the read timeout"),
    FaultCase("reset", 502, "upstream_unreachable", 3, why="connection errors are retried"),
    FaultCase("malformed_json", 502, "upstream_bad_response", 1, why="a 200 that isn't JSON"),
    FaultCase("truncated_json", 502, "upstream_bad_response", 1, why="a 200 cut short"),
    FaultCase("rate_limit;retry_after=0.2", 429, "rate_limited", 3, stream=True, why="before the 200: a real 429"),
    FaultCase("stream_error;after=2", 200, "upstream_stream_error", 1, stream=True, why="after the 200: an event"),
    FaultCase("stream_drop;after=2", 200, "upstream_unreachable", 1, stream=True, why="cut mid-stream: an event"),
    FaultCase(None, 200, None, 1, stream=True, api="responses", why="the Responses API: the same events"),
    FaultCase("rate_limit;retry_after=0.2", 429, "rate_limited", 3, stream=True, api="responses", why="a real 429"),
    FaultCase("stream_error;after=2", 200, "upstream_stream_error", 1, stream=True, api="responses", why="an event"),
    FaultCase("stream_drop;after=2", 200, "upstream_unreachable", 1, stream=True, api="responses", why="an event"),
]


@dataclass
class Observation:
    case: FaultCase
    status: int
    code: str | None
    attempts: int
    elapsed_s: float
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (event name, data) of a stream

    @property
    def holds(self) -> bool:
        return (self.status, self.code, self.attempts) == (self.case.status, self.case.code, self.case.attempts)

    @property
    def error(self) -> dict[str, Any] | None:
        """The error object the caller received: the JSON body's, or the last error event's of a stream."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            error: dict[str, Any] = self.body["error"]
            return error
        for name, data in reversed(self.events):
            if name == "error" and isinstance(data.get("error"), dict):
                event_error: dict[str, Any] = data["error"]
                return event_error
        return None

    def row(self) -> dict[str, Any]:
        return {
            "fault": self.case.fault or "none",
            "endpoint": self.case.path,
            "status": self.status,
            "code": self.code or "",
            "attempts": self.attempts,
            "elapsed_s": round(self.elapsed_s, 2),
            "as documented": "yes" if self.holds else "NO",
        }


def format_observations(observations: list[Observation]) -> str:
    """One aligned line per observation: the fault, the endpoint, what came back, and whether it is as documented."""
    lines = [f"{'fault':36} {'endpoint':20} {'status':>6}  {'code':24} {'attempts':>8}  as documented"]
    for observation in observations:
        row = observation.row()
        lines.append(
            f"{row['fault']:36} {row['endpoint']:20} {row['status']:>6}  {row['code']:24} {row['attempts']:>8}  "
            f"{row['as documented']}"
        )
    return "\n".join(lines)


def observe(
    case: FaultCase, service: httpx.Client, upstream: RunningUpstream, body: dict[str, Any] | None = None
) -> Observation:
    """Call the service once with `case.fault` on the upstream; what came back and what went up."""
    body = body or {"messages": [{"role": "user", "content": "Say something short."}]}
    seen_before = len(upstream.journal)
    with upstream.fault(case.fault):
        started = time.perf_counter()
        response = service.post(case.path, json=body)
        elapsed = time.perf_counter() - started
    attempts = len(upstream.journal.entries()[seen_before:])
    observation = Observation(case, response.status_code, None, attempts, elapsed, headers=dict(response.headers))
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        observation.events = parse_events(response.text)
        errors = [data for name, data in observation.events if name == "error"]
        observation.code = errors[0]["error"]["code"] if errors else None
    else:
        observation.body = response.json()
        error = observation.body.get("error") if isinstance(observation.body, dict) else None
        observation.code = error["code"] if error else None
    return observation
