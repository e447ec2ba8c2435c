"""An ASGI app for tests/bench/test_services.py: reports whether its own connection has TCP_NODELAY.

Served by ``support.bench.services`` in a child process (``BENCH_APP=tests.bench.nodelay_probe:app``),
it finds the accepted socket among the process's descriptors by its peer address (the
client's ``scope["client"]``) and reads the option on a duplicate of it.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any


def _nodelay_of_connection_from(peer: tuple[str, int]) -> bool | None:
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))  # the duplicate reads the real family
        except OSError:
            continue
        with sock:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                continue
            try:
                if sock.getpeername() != peer:
                    continue
            except OSError:  # a listening socket has no peer
                continue
            return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    client = scope["client"]
    body = json.dumps({"nodelay": _nodelay_of_connection_from((client[0], client[1]))}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
