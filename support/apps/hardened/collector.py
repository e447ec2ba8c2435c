"""The garbage collector's pace while the service serves: young collections 10x rarer.

CPython collects its youngest generation every 700 new container objects, and at every
10th such collection also the objects that survived the previous ones (``gc.get_threshold()``
is ``(700, 10, 10)``). A service with calls in flight holds thousands of live objects per
call for as long as the upstream takes (frames, the SDK's request and response, the
transport's buffers), so collection after collection walks the same live objects and frees
nothing: reference counting frees a request's objects as soon as it is answered, and a
request makes no reference cycle (``tests/apps/hardened/test_request_overhead.py``). The
walks also promote those objects to the oldest generation, whose growth then triggers full
collections, each walking every object in the process, the imported modules' included.
A higher first threshold makes all of these rarer; a reference cycle, if something makes
one, is still collected, a few thousand allocations later.

The threshold belongs to the process, not to the app: it is raised while at least one app
serves and given back when the last one stops, so a process that runs apps one after
another (a test suite, a notebook) gets its own setting back. A collector switched off
(threshold 0) or already set to collect less often is left alone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "CollectorPace", "process_pace"]

YOUNG_THRESHOLD = 7000  # new container objects between young collections; CPython's default is 700


class CollectorPace:
    """Raises the young threshold while any `serving` block is open (apps may serve in threads)."""

    def __init__(self, young_threshold: int = YOUNG_THRESHOLD) -> None:
        self.young_threshold = young_threshold
        self._lock = threading.Lock()
        self._serving = 0
        self._given_back: tuple[int, int, int] | None = None  # what to restore; None: nothing changed

    @contextmanager
    def serving(self) -> Iterator[None]:
        with self._lock:
            if self._serving == 0:
                first, second, third = gc.get_threshold()
                if 0 < first < self.young_threshold:
                    self._given_back = (first, second, third)
                    gc.set_threshold(self.young_threshold, second, third)
            self._serving += 1
        try:
            yield
        finally:
            with self._lock:
                self._serving -= 1
                if self._serving == 0 and self._given_back is not None:
                    first, second, third = self._given_back
                    if gc.get_threshold() == (self.young_threshold, second, third):  # else someone chose since
                        gc.set_threshold(first, second, third)
                    self._given_back = None


process_pace = CollectorPace()
