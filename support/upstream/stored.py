"""Responses the upstream stored (``store``, true by default), for ``previous_response_id``.

The real API keeps a stored response for 30 days and lets the next request continue
from it: the earlier input and output count as input again, and its function calls may
be answered with ``function_call_output`` items. Here the last `capacity` stored
responses are kept in memory; an id that is unknown, expired from this window, or made
with ``store: false`` gets the real API's "not found" error.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_CAPACITY = 10_000
DEFAULT_BUDGET = 64 * 1024 * 1024  # characters of prompt and output text kept in all


@dataclass(frozen=True)
class StoredResponse:
    """What a later request needs of an earlier response."""

    id: str
    prompt_text: str  # everything the earlier request read
    prompt_items: int
    output_text: str  # what it answered (text, and its function calls)
    call_ids: frozenset[str]  # function calls it made, answerable with function_call_output


class ResponseStore:
    """A bounded, thread-safe map of response id to `StoredResponse`, oldest evicted first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, budget: int = DEFAULT_BUDGET) -> None:
        self.capacity = capacity
        self.budget = budget
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def put(self, response: StoredResponse) -> None:
        with self._lock:
            replaced = self._items.pop(response.id, None)
            self._size += _size(response) - (_size(replaced) if replaced else 0)
            self._items[response.id] = response
            while self._items and (len(self._items) > self.capacity or self._size > self.budget):
                _, evicted = self._items.popitem(last=False)
                self._size -= _size(evicted)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            return self._items.get(response_id)

    def __len__(self) -> int:
        return len(self._items)


def _size(response: StoredResponse) -> int:
    return len(response.prompt_text) + len(response.output_text)
