"""Runtime detection of event-loop blocking, with the line that blocks.

How it works: a heartbeat callback on the loop (``loop.call_later``) records when it
ran; a watchdog thread wakes every `interval` and, when the heartbeat is more than
`threshold` late, samples the loop thread's stack with ``sys._current_frames()``. When
the loop comes back, the next heartbeat turns the sample into one `BlockingReport` per
blocking episode: how late the loop was, the threshold, and the stack, with the innermost
*project* frame (not the standard library, not site-packages) marked. The watchdog
never touches the loop; it only reads a timestamp and, during an episode, one stack.

Unlike blockbuster (which patches socket/ssl/time calls) this needs no patching and
also catches blocking that never touches a real socket (CPU work, a mocked transport,
a lock); unlike asyncio debug mode it names the line, not just the task, and works
under uvloop. Blocking shorter than `threshold` is not reported, by design; nor is
an episode in which every sample found the loop thread inside the event loop's own
machinery (between callbacks, or starved of the GIL by other threads): there is no
line to blame.

Overhead: with the default threshold 0.1 s the interval is ``min(threshold / 2, 0.05)``
= 0.05 s, i.e. one heartbeat on the loop and one watchdog wake-up per interval, plus one
thread, whatever the traffic; raise `interval` to pay less (detection is then up to one
interval later). What that costs in CPU on your machine: ``python -m support.doctor.overhead``
(an idle loop without and with a detector; notebook 09 prints it from its own run). It
logs one warning per episode to ``logging.getLogger("support.doctor.blocking")``.

API:

- ``async with detect_blocking(threshold=0.1) as reports:`` on the running loop;
- ``BlockingDetector``: ``start()`` on the loop, ``stop()``, ``reports``, ``async with``;
- ``app.add_middleware(BlockingMiddleware, threshold=0.1)``: starts a detector on the
  serving loop at the first lifespan or request event, stops it at shutdown;
- ``blocking_fixture(threshold=0.1)``: a pytest fixture factory (fails the test on a report).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BlockingDetector",
    "BlockingMiddleware",
    "BlockingReport",
    "blocking_fixture",
    "detect_blocking",
]

LOGGER_NAME = "support.doctor.blocking"
_LIBRARY_PREFIXES = tuple(
    os.path.normcase(os.path.realpath(p))
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)
_THIS_FILE = os.path.normcase(os.path.realpath(__file__))


@functools.lru_cache(maxsize=4096)
def _is_project(filename: str, root: str | None) -> bool:
    if filename.startswith("<"):
        return False
    path = os.path.normcase(os.path.realpath(filename))
    if path == _THIS_FILE or "site-packages" in path.split(os.sep):
        return False
    if root is not None:
        return path.startswith(root)
    return not path.startswith(_LIBRARY_PREFIXES)


@dataclass(frozen=True)
class BlockingReport:
    """One blocking episode of the event loop."""

    duration: float  # how late the loop's heartbeat ran (s): the loop was unresponsive this long
    threshold: float
    stack: list[traceback.FrameSummary] = field(repr=False)  # the loop thread, outermost first
    project_frame: traceback.FrameSummary | None = None  # innermost frame in the project's code

    @property
    def where(self) -> str:
        frame = self.project_frame
        return f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "(no project frame)"

    def format(self, max_frames: int = 12) -> str:
        """Headline, the project line's source, then the innermost `max_frames` frames."""
        lines = [f"event loop blocked for {self.duration:.3f} s (threshold {self.threshold:.3f} s) at {self.where}"]
        if self.project_frame is not None and self.project_frame.line:
            lines.append(f"    {self.project_frame.line}")
        lines.append("loop thread stack (most recent call last):")
        shown = self.stack[-max_frames:]
        if len(shown) < len(self.stack):
            lines.append(f"  ... {len(self.stack) - len(shown)} outer frames")
        for frame in shown:
            mark = ">" if frame is self.project_frame else " "
            lines.append(f"{mark} {frame.filename}:{frame.lineno} in {frame.name}")
        return "\n".join(lines)


class BlockingDetector:
    """A heartbeat on one event loop plus a watchdog thread that samples its stack."""

    def __init__(
        self,
        threshold: float = 0.1,
        *,
        interval: float | None = None,
        project_root: str | None = None,
        logger: logging.Logger | None = None,
        on_report: Callable[[BlockingReport], None] | None = None,
    ) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.interval = interval if interval is not None else min(threshold / 2, 0.05)
        self.project_root = os.path.normcase(os.path.realpath(project_root)) if project_root else None
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.on_report = on_report
        self.reports: list[BlockingReport] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._handle: asyncio.TimerHandle | None = None
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()
        self._due = 0.0
        self._generation = 0
        self._sample: list[traceback.FrameSummary] | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    # --- lifecycle (call on the loop's thread) ------------------------------------------

    def start(self) -> None:
        """Watch the running loop. Idempotent on the same loop."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None:
            raise RuntimeError("this detector already watches another event loop")
        self._loop, self._thread_id = loop, threading.get_ident()
        self._stopping.clear()
        self._schedule(time.monotonic())
        self._watchdog = threading.Thread(target=self._watch, name="blocking-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        """Stop watching; an episode still open (the loop just came back) is reported."""
        if self._loop is None:
            return
        self._stopping.set()
        if self._handle is not None:
            self._handle.cancel()
        self._finish(time.monotonic())
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=1)
        self._loop, self._handle, self._watchdog = None, None, None

    async def __aenter__(self) -> BlockingDetector:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    # --- the heartbeat (on the loop) ----------------------------------------------------

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        with self._lock:
            self._due = now + self.interval
        self._handle = self._loop.call_later(self.interval, self._beat)

    def _beat(self) -> None:
        now = time.monotonic()
        self._finish(now)
        if not self._stopping.is_set():
            self._schedule(now)

    def _finish(self, now: float) -> None:
        with self._lock:
            sample, self._sample = self._sample, None
            self._generation += 1
            late = now - self._due
            self._due = float("inf")  # the loop is here, not blocked: until the next schedule
        if sample is None or late < self.threshold:
            return
        project = next((f for f in reversed(sample) if _is_project(f.filename, self.project_root)), None)
        report = BlockingReport(late, self.threshold, sample, project)
        self.reports.append(report)
        self.logger.warning("%s", report.format())
        if self.on_report is not None:
            self.on_report(report)

    # --- the watchdog (its own thread) --------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(self.interval):
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            with self._lock:
                if self._sample is not None or time.monotonic() - self._due < self.threshold:
                    continue
                generation = self._generation
            frame = sys._current_frames().get(self._thread_id)
            stack = _trim(traceback.extract_stack(frame)) if frame is not None else []
            del frame
            if not stack or _in_loop_machinery(stack[-1]) or _in_heartbeat(stack):
                continue  # between callbacks (or starved of the GIL): sample again next tick
            with self._lock:
                if self._generation == generation and self._sample is None:
                    self._sample = stack  # still the same episode: the loop has not run since


_LOOP_FILES = (*(os.path.join("asyncio", f) for f in ("runners.py", "base_events.py", "events.py")), "selectors.py")


def _in_heartbeat(stack: list[traceback.FrameSummary]) -> bool:
    """The loop thread is running this detector's own heartbeat (an episode is ending)."""
    return any(f.name in ("_beat", "_finish") and f.filename == __file__ for f in stack)


def _in_loop_machinery(frame: traceback.FrameSummary) -> bool:
    """The loop thread is inside the event loop itself, not in code a callback runs."""
    return frame.filename.endswith(_LOOP_FILES)


def _trim(stack: traceback.StackSummary) -> list[traceback.FrameSummary]:
    """Drop the event loop's own machinery above the running callback or task step."""
    frames = list(stack)
    for i in range(len(frames) - 1, -1, -1):
        f = frames[i]
        if f.name == "_run" and f.filename.endswith(os.path.join("asyncio", "events.py")):
            return frames[i + 1 :]
    return frames


@asynccontextmanager
async def detect_blocking(threshold: float = 0.1, **options: Any) -> AsyncIterator[list[BlockingReport]]:
    """``async with detect_blocking(0.1) as reports:``: blocking of the running loop inside the block."""
    detector = BlockingDetector(threshold, **options)
    detector.start()
    try:
        yield detector.reports
    finally:
        detector.stop()


class BlockingMiddleware:
    """ASGI middleware: watch the serving loop from its first event to lifespan shutdown.

    ``app.add_middleware(BlockingMiddleware, threshold=0.1)``; pass ``detector=`` to share
    one (for example the one a test fixture inspects).
    """

    def __init__(self, app: Any, threshold: float = 0.1, *, detector: BlockingDetector | None = None, **options: Any):
        self.app = app
        self.detector = detector if detector is not None else BlockingDetector(threshold, **options)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.detector.start()
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.detector.stop()


def blocking_fixture(threshold: float = 0.1, *, fail: bool = True, **options: Any) -> Any:
    """A pytest fixture yielding an unstarted `BlockingDetector`; fails the test on a report.

    In ``conftest.py``: ``no_blocking = blocking_fixture(threshold=0.1)``. Then in a test,
    ``app.add_middleware(BlockingMiddleware, detector=no_blocking)`` (served apps), or
    ``async with no_blocking: ...`` (code running on the test's own loop).
    """
    import pytest

    @pytest.fixture
    def fixture() -> Iterator[BlockingDetector]:
        detector = BlockingDetector(threshold, **options)
        yield detector
        if detector.running:
            if _on_its_loop(detector):
                detector.stop()
            else:  # still watching another thread's loop: let its heartbeat and watchdog wind down
                detector._stopping.set()
        if fail and detector.reports:
            pytest.fail("event loop blocked:\n" + "\n\n".join(r.format() for r in detector.reports), pytrace=False)

    return fixture


def _on_its_loop(detector: BlockingDetector) -> bool:
    try:
        return asyncio.get_running_loop() is detector._loop
    except RuntimeError:
        return False
