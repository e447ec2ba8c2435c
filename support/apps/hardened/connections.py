"""The server under the app: uvicorn's options and the connection protocol that bound what
comes before a request exists (idle connections, slow or huge request heads, how many
connections are open, the descriptors they need). ``python -m support.apps.hardened`` applies
them; the ASGI layer above (``gate``) handles requests, and its docstring lists what only
a reverse proxy in front can enforce.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import ConfigError, Settings

__all__ = ["BoundedH11Protocol", "ensure_file_descriptors", "server_limits"]

DESCRIPTORS_IN_RESERVE = 64  # the listening socket, logs, the event loop's own, imports


def server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the limits it enforces before a request reaches the app."""
    return {
        "http": "support.apps.hardened.connections:BoundedH11Protocol",  # a string: workers import it
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
        "backlog": settings.backlog,
    }


def ensure_file_descriptors(settings: Settings) -> None:
    """Raise the soft descriptor limit to what the settings need, or refuse to start.

    Every connection holds a descriptor, and so does every upstream call. When they run
    out, ``accept`` fails and every new caller waits in the backlog while the upstream
    calls in progress fail to connect. ``BoundedH11Protocol`` keeps client connections
    under ``SERVICE_MAX_CONNECTIONS``; this makes sure that many fit.
    """
    needed = settings.max_connections + settings.max_concurrency + DESCRIPTORS_IN_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise ConfigError(
        f"the file-descriptor limit ({hard}) is below SERVICE_MAX_CONNECTIONS + SERVICE_MAX_CONCURRENCY "
        f"+ {DESCRIPTORS_IN_RESERVE} ({needed}): lower those settings or raise the limit (ulimit -n)"
    )


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the bounds uvicorn 0.54 leaves out before a request exists.

    h11, not httptools: h11 refuses a request head larger than
    ``h11_max_incomplete_event_size`` (``h11/_connection.py``: ``Connection.next_event``
    raises "Receive buffer too long"), while httptools buffers an unfinished header
    without limit (four unfinished 64 MiB headers: +315 MiB RSS and 19 s of CPU under
    httptools; no growth under h11, measured with ``/proc/PID/status``).

    - The keep-alive timer also runs from the moment a connection opens. uvicorn arms it
      only after a response (``h11_impl.py``: ``H11Protocol.on_response_complete``), so a
      connection that never sent a byte stayed open, holding a descriptor, for ever.
    - It runs until a request head is complete, not until its first byte: uvicorn's
      ``data_received`` cancels it on any data, so trickling one header byte at a time
      kept a connection for ever. ``handle_events`` still cancels it on ``h11.Request``.
    - At most ``limit_concurrency`` connections stay open. uvicorn answers 503 past that
      limit, but only once a request arrives (``handle_events``), and still accepts every
      connection; beyond it a new connection is closed at once, so descriptors remain for
      the requests in progress and their upstream calls.

    Serve with ``python -m support.apps.hardened`` (which selects it), or
    ``uvicorn support.apps.hardened:app --http support.apps.hardened.connections:BoundedH11Protocol``.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limit_concurrency is not None and len(self.connections) > self.limit_concurrency:
            transport.close()
            return
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received without its first line, `self._unset_keepalive_if_required()`.
        self.conn.receive_data(data)
        self.handle_events()
