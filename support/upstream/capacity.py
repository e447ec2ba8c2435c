"""The server's own limit: at most N generations in progress, the rest wait their turn.

A real model server is a bottleneck of its own: past its capacity requests queue (they
are not refused), and a request's latency runs from the moment a slot frees up. With
``capacity`` unset there is no limit and nothing waits. A client that hangs up while
it waits leaves the queue without ever holding a slot, so it frees nothing.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any


class Turn(Enum):
    """How a request got (or did not get) its generation slot."""

    AT_ONCE = "at_once"  # a slot was free: the request never waited
    AFTER_WAITING = "after_waiting"  # it queued, then got a slot
    LEFT = "left"  # the client went away while it queued: no slot is held


class GenerationGate:
    """At most `capacity` holders at once (None: unlimited); waiters are served in arrival order."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._slots = asyncio.Semaphore(capacity) if capacity is not None else None
        self.waiting = 0

    async def enter(self, left: asyncio.Event) -> Turn:
        """Wait for a slot, unless `left` is set first. Every turn but LEFT must be followed by `leave`."""
        slots = self._slots
        if slots is None:
            return Turn.AT_ONCE
        if not slots.locked() and not self.waiting:
            await slots.acquire()  # free: returns without suspending
            return Turn.AT_ONCE
        self.waiting += 1
        try:
            return Turn.AFTER_WAITING if await _acquire_unless(slots, left) else Turn.LEFT
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        if self._slots is not None:
            self._slots.release()


async def _acquire_unless(slots: asyncio.Semaphore, left: asyncio.Event) -> bool:
    """Acquire `slots`, or give up when `left` is set first (then holding nothing).

    Whatever ends the wait (the slot, the client leaving, this task being cancelled), the
    acquire is settled: a slot obtained is kept only when the client is still there.
    """
    if left.is_set():
        return False
    acquiring = asyncio.ensure_future(slots.acquire())
    leaving = asyncio.ensure_future(left.wait())
    try:
        await asyncio.wait({acquiring, leaving}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        leaving.cancel()
        _settle(acquiring, slots, keep=False)
        raise
    leaving.cancel()
    return _settle(acquiring, slots, keep=not left.is_set())


def _settle(acquiring: asyncio.Future[Any], slots: asyncio.Semaphore, *, keep: bool) -> bool:
    """Cancel an unfinished acquire (the semaphore then passes its slot on), or keep or return a finished one."""
    if not acquiring.done():
        acquiring.cancel()
        return False
    if acquiring.cancelled() or acquiring.exception() is not None:
        return False
    if not keep:
        slots.release()
    return keep
