"""``python -m support.bench.worker FD WORKERS``: serve ``$BENCH_APP``, instrumented, on an inherited socket.

Not ``uvicorn --fd``: uvicorn wraps that descriptor as a Unix socket
(``socket.fromfd(fd, AF_UNIX, ...)``), so neither asyncio nor uvloop sets ``TCP_NODELAY``
on the connections it accepts. Nagle's algorithm then holds back the second write of
every response until the client's delayed ACK, about 40 ms later: measured here, a
trivial route took 44 ms instead of under 1. ``socket.socket(fileno=fd)`` reads the
real family (``AF_INET``), and everything works as with ``--host``/``--port``.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess


def main(argv: list[str]) -> None:
    fd, workers = int(argv[0]), int(argv[1])
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        "support.bench.instrument:app_factory",
        factory=True,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
