"""What the upstream saw during a level: how many calls, and how many at the same moment.

The bundled upstream journals every request with the time it was received and the time
its answer was complete (``GET /_upstream/journal``). The largest number of calls open at
one instant, *peak in flight*, is a structural fact about a pattern, not a timing: the
silent blocker holds one call at a time whatever the load, ``asyncio.to_thread`` at most
its executor's threads, a ``def`` route at most AnyIO's tokens, ``AsyncOpenAI`` as many as
there are callers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["UpstreamView", "peak_in_flight", "view_of_journal"]


def peak_in_flight(intervals: Iterable[tuple[float, float | None]]) -> int:
    """The most intervals open at one instant; an interval ``(start, None)`` is still open.

    Intervals are half-open, ``[start, end)``: a call that ends at the instant another
    begins did not overlap it.
    """
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((math.inf if end is None else end, -1))
    events.sort()  # at equal times -1 sorts before +1: an end frees its place first
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


@dataclass(frozen=True)
class UpstreamView:
    requests: int  # calls the upstream received: sent, and billed, whatever became of the answer
    peak_in_flight: int  # the most calls open at the upstream at one instant


def view_of_journal(entries: Iterable[Mapping[str, Any]], *, endpoint: str | None = None) -> UpstreamView:
    """Count and peak in flight of journal entries (``received_at``, ``finished_at``), of one endpoint or all."""
    mine = [e for e in entries if endpoint is None or e.get("endpoint") == endpoint]
    return UpstreamView(len(mine), peak_in_flight((e["received_at"], e.get("finished_at")) for e in mine))
