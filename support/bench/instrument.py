"""What the benchmark measures inside a service's process: event-loop lag and memory.

``app_factory`` wraps the app named by ``$BENCH_APP`` (``module:attribute``) so that
uvicorn can start it (``--factory``) in every worker. The wrapper starts a ticker task
that asks to wake every `TICK_S` and records how late it woke: the loop's lag, the time
any request waits before the loop even looks at it. Two extra routes report and reset:

``GET  /_bench/stats``  ``{"pid", "lag_ms": {"n", "p50", "p99", "max"}, "peak_rss_mib"}``;
                       ``?since=T``: only the samples taken from ``T`` on (seconds since the
                       epoch, ``time.time()``: one clock for every process on the machine)
``POST /_bench/reset``  forget the lag samples and the peak RSS (Linux ``clear_refs``)
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from .loadgen import percentile
from .procfs import peak_rss_mib, reset_peak_rss

TICK_S = 0.005


class Instrumented:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lags: list[tuple[float, float]] = []  # (when, in time.time(); how late the tick woke)
        self._ticker: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.lags.append((time.time(), time.perf_counter() - asked - TICK_S))

    def stats(self, since: float = 0.0) -> dict[str, Any]:
        lags_ms = [lag * 1000 for when, lag in self.lags if when >= since]
        return {
            "pid": os.getpid(),
            "lag_ms": {
                "n": len(lags_ms),
                "p50": percentile(lags_ms, 50),
                "p99": percentile(lags_ms, 99),
                "max": max(lags_ms, default=float("nan")),
            },
            "peak_rss_mib": peak_rss_mib(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._ticker is None:  # the first call is the lifespan's, on the serving loop
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        if scope["type"] == "http" and scope["path"].startswith("/_bench/"):
            if scope["path"] == "/_bench/reset":
                self.lags.clear()
                reset_peak_rss()
            since = parse_qs(scope.get("query_string", b"").decode()).get("since", ["0"])[0]
            try:
                body = json.dumps(self.stats(float(since))).encode()
            except ValueError:
                body = json.dumps({"error": f"since must be a number of seconds, got {since!r}"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def app_factory() -> Instrumented:
    module, _, attribute = os.environ["BENCH_APP"].partition(":")
    return Instrumented(getattr(importlib.import_module(module), attribute))
