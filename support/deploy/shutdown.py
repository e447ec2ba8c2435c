"""SIGTERM while a stream is open: how long the server takes to exit, and what the caller got.

A reader opens a stream, and once it has its first events the master gets the signal.
uvicorn then stops accepting and waits for the requests in flight (``Server.shutdown`` in
uvicorn/server.py): for ever without ``timeout_graceful_shutdown``, at most that long with
it, after which it cancels them (the template's stream then sends a last ``error``
event). gunicorn's master waits ``graceful_timeout`` for its workers, then SIGKILLs them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .servers import Deployed, Exit

__all__ = ["ShutdownRun", "stream_through_shutdown"]


@dataclass
class ShutdownRun:
    exit: Exit
    events: Counter[str] = field(default_factory=Counter)  # "delta", "done", "error"
    before_signal: int = 0  # events the caller had when the signal was sent
    ended: str = "still reading"  # "complete", or the exception that ended the read

    @property
    def finished_normally(self) -> bool:
        return self.ended == "complete" and self.events["done"] == 1

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.events.items()))
        return f"caller got {kinds or 'nothing'}; the read ended: {self.ended}"


class _Reader(threading.Thread):
    def __init__(self, url: str, body: Any, headers: Mapping[str, str], timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.body, self.headers, self.timeout_s = url, body, dict(headers), timeout_s
        self.events: Counter[str] = Counter()
        self.first = threading.Event()
        self.ended = "still reading"

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=self.timeout_s) as http,
                http.stream("POST", self.url, json=self.body, headers=self.headers) as response,
            ):
                name = "delta"
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        name = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        self.events[name] += 1
                        name = "delta"
                        self.first.set()
            self.ended = "complete"
        except Exception as exc:  # what the caller sees when the server goes: the lesson, not a failure
            self.ended = type(exc).__name__
        finally:
            self.first.set()


def stream_through_shutdown(
    deployed: Deployed,
    path: str,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    after_s: float = 0.1,
    sig: int = signal.SIGTERM,
    timeout_s: float = 30.0,
) -> ShutdownRun:
    """Open a stream, send `sig` to the master `after_s` after its first event, time the exit."""
    reader = _Reader(deployed.base_url + path, body, headers or {}, timeout_s)
    reader.start()
    if not reader.first.wait(timeout_s):
        raise TimeoutError(f"no event from {path} within {timeout_s:g} s")
    time.sleep(after_s)
    before = sum(reader.events.values())
    stopped = deployed.stop(sig, timeout_s=timeout_s)
    reader.join(timeout_s)
    return ShutdownRun(stopped, Counter(reader.events), before, reader.ended)
