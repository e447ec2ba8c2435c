"""Which TCP connection a request came on, and how long that connection had been idle.

A keep-alive connection carries one request after another. Between them it is idle, and
something on the path (a NAT, a load balancer, a proxy) may forget it sooner than either
end does: the next request on it then meets a reset or silence. The ``stale_after``
setting models that middlebox, and it needs to know, per request, how long its
connection had been idle.

A connection is identified by its transport (the object uvicorn writes to), which lives
exactly as long as the connection: the table holds it weakly, so a closed connection's
entry goes with it, and a new connection from a recycled client port is never mistaken
for an old one. Under an ASGI server that does not expose the transport, the scope's
``client`` (host, port) pair stands in for it, in a table bounded to the most recent
connections.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_BY_ADDRESS = 4096


@dataclass
class _Connection:
    number: int
    last_finished: float | None = None  # clock reading when its previous request ended; None: none yet


@dataclass(frozen=True)
class Visit:
    """One request's view of its connection."""

    connection: _Connection
    idle: float | None  # seconds since the connection's previous request ended; None on its first

    @property
    def number(self) -> int:
        """The connection's number, 1, 2, ... in the order the upstream first saw a request on each."""
        return self.connection.number


class ConnectionTracker:
    """Numbers connections and remembers when each one's last request ended."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._numbers = itertools.count(1)
        self._by_transport: weakref.WeakKeyDictionary[Any, _Connection] = weakref.WeakKeyDictionary()
        self._by_address: OrderedDict[tuple[Any, ...], _Connection] = OrderedDict()

    def arrive(self, scope: dict[str, Any], send: Callable[..., Any]) -> Visit:
        """A request starts on the connection behind `scope` and `send`."""
        transport = transport_of(send)
        if transport is not None:
            connection = self._by_transport.get(transport)
            if connection is None:
                connection = self._by_transport[transport] = _Connection(next(self._numbers))
        else:
            address = tuple(scope.get("client") or ("?", 0))
            connection = self._by_address.pop(address, None) or _Connection(next(self._numbers))
            self._by_address[address] = connection  # most recent last
            while len(self._by_address) > MAX_BY_ADDRESS:
                self._by_address.popitem(last=False)
        last = connection.last_finished
        return Visit(connection, None if last is None else self.clock() - last)

    def leave(self, visit: Visit) -> None:
        """The request of `visit` has ended: its connection is idle from now."""
        visit.connection.last_finished = self.clock()


def transport_of(send: Callable[..., Any]) -> Any:
    """The asyncio transport behind an ASGI `send`, where the server exposes it (uvicorn does), else None."""
    return getattr(getattr(send, "__self__", None), "transport", None)
