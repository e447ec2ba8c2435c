"""At most K upstream calls in flight; a short, bounded wait for the rest; 503 beyond it.

Queueing without bound turns an overload into timeouts for everyone. Shedding early
answers the excess callers in milliseconds and keeps the admitted ones fast.
"""

from __future__ import annotations

import asyncio


class Overloaded(Exception):
    """No slot came free: the queue was full, or the wait ran out."""


class ConcurrencyLimit:
    """A semaphore with a bounded queue and a bounded wait, and counters to watch it by."""

    def __init__(self, limit: int, *, queue: int, queue_timeout_s: float) -> None:
        self.limit = limit
        self.queue = queue
        self.queue_timeout_s = queue_timeout_s
        self._free = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.waiting = 0
        self.peak_in_flight = 0
        self.shed = 0

    async def acquire(self) -> None:
        """Take a slot, waiting at most `queue_timeout_s` behind at most `queue` others."""
        if self._free.locked() and self.waiting >= self.queue:
            self.shed += 1
            raise Overloaded(f"{self.in_flight} calls in flight and {self.waiting} waiting")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await self._free.acquire()
        except TimeoutError:
            self.shed += 1
            raise Overloaded(f"no slot came free within {self.queue_timeout_s:g} s") from None
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    async def acquire_if_free(self) -> bool:
        """Take a slot if one is free now, without `acquire`'s timer (a free slot needs no wait);
        False, and nothing taken, if none is."""
        if self._free.locked():
            return False
        await self._free.acquire()  # a free slot: returns without suspending
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return True

    def release(self) -> None:
        self.in_flight -= 1
        self._free.release()

    def snapshot(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "peak_in_flight": self.peak_in_flight,
            "shed": self.shed,
        }
