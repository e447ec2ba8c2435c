"""What the bundled upstream received while a piece of notebook code ran.

The upstream's journal (`support.upstream.journal`) records every request it got and
what became of it: the attempts the SDK's retries made, a stream stopped because its
client left. A notebook wants the entries *its* cell caused, so it opens a window on
the journal before acting and reads it afterwards:

    calls = calls_from_now(target)
    ...  # call the service
    entries = await calls.settled(timeout=5)

Only the bundled upstream keeps a journal; for another server the window stays empty.
"""

from __future__ import annotations

from collections.abc import Iterable

from .target import Target
from .upstream.journal import Journal, JournalEntry

__all__ = ["UpstreamCalls", "calls_from_now", "most_in_flight"]


class UpstreamCalls:
    """The requests a journal records after this object was made (none without a journal)."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal
        entries = journal.entries() if journal is not None else []
        # Sequence numbers, not positions: they keep counting when the journal is cleared.
        self._after = entries[-1].seq if entries else -1

    @property
    def observable(self) -> bool:
        """True when there is a journal to read (the bundled upstream)."""
        return self.journal is not None

    @property
    def entries(self) -> list[JournalEntry]:
        """The entries recorded since the window opened, oldest first."""
        return [] if self.journal is None else self._new(self.journal.entries())

    def __len__(self) -> int:
        return len(self.entries)

    def _new(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        return [e for e in entries if e.seq > self._after]

    async def settled(self, *, at_least: int = 1, timeout: float = 5.0) -> list[JournalEntry]:  # noqa: ASYNC109
        """Wait until at least `at_least` requests arrived and every one of them has finished.

        A request is recorded when it arrives and finished when the upstream is done with
        it, which for a client that walked away can be a while after the client's own
        call returned. Raises `TimeoutError` after `timeout` seconds.
        """
        if self.journal is None:
            return []
        entries = await self.journal.wait_for(
            lambda es: len(new := self._new(es)) >= at_least and all(e.finished_at is not None for e in new),
            timeout=timeout,
        )
        return self._new(entries)


def calls_from_now(target: Target) -> UpstreamCalls:
    """A window on `target`'s journal from this moment on (empty for a server that is not bundled)."""
    return UpstreamCalls(target.journal if target.bundled else None)


def most_in_flight(entries: Iterable[JournalEntry]) -> int:
    """The most requests the upstream was handling at one moment, from their receive and finish times.

    This is the upstream's side of a concurrency limit: a service that promises at most N
    calls in flight must never show more than N here. Unfinished entries count until now.
    """
    events: list[tuple[float, int]] = []
    for entry in entries:
        events.append((entry.received_at, 1))
        events.append((entry.finished_at if entry.finished_at is not None else float("inf"), -1))
    level = peak = 0
    for _, step in sorted(events):  # at equal times the finish (-1) sorts first: back to back is not overlap
        level += step
        peak = max(peak, level)
    return peak
