"""Run a measurement on its own event loop: uvloop, as the measured services use.

The load generator must cost less than what it measures; uvloop roughly halves the
loop's own overhead per request compared with the default asyncio loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a new uvloop event loop, then close the loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
