"""Catch the exceptions a served app raised, instead of uvicorn's traceback on stderr.

A route that raises gives its client a bare ``500 Internal Server Error``; the reason
only appears in the server's log. Notebooks show that reason (and assert it) by
collecting uvicorn's ``Exception in ASGI application`` records while the block runs.
Install it *after* starting a server: creating a uvicorn server reconfigures logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class AppError:
    """An exception raised by an app while serving a request."""

    type_name: str
    message: str
    created: float  # time.time() when uvicorn logged it

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: list[AppError] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # a task group's wrapper: report what went wrong inside
            self.errors.append(AppError(type(exc).__name__, str(exc), record.created))


@contextlib.contextmanager
def app_errors(logger_name: str = "uvicorn.error") -> Iterator[list[AppError]]:
    """Collect (and keep off stderr) the exceptions uvicorn logs while the block runs."""
    logger = logging.getLogger(logger_name)
    collector = _Collector()
    propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield collector.errors
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate


async def errors_logged(errors: list[AppError], count: int = 1, *, timeout_s: float = 5.0) -> list[AppError]:
    """Wait until `errors` (the list `app_errors` yields) holds `count` entries, or
    `timeout_s` has passed; return it. uvicorn logs a route's exception just *after*
    sending the 500, so the client can hold its answer before the log line exists."""
    deadline = time.monotonic() + timeout_s
    while len(errors) < count:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    return errors


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def log_lines(logger_name: str, level: int = logging.INFO) -> Iterator[list[str]]:
    """Collect (and keep off stderr) the messages `logger_name` emits while the block runs."""
    logger = logging.getLogger(logger_name)
    collector = _Lines()
    saved = logger.propagate, logger.level
    logger.addHandler(collector)
    logger.propagate = False
    logger.setLevel(level)
    try:
        yield collector.lines
    finally:
        logger.removeHandler(collector)
        logger.propagate, logger.level = saved
