"""support.bench.services: a pattern's service in its own uvicorn process, on a socket the parent bound."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from support.bench.patterns import Pattern
from support.bench.procfs import cmdline
from support.bench.services import start_service

linux_only = pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")


@linux_only
def test_service_connections_get_tcp_nodelay() -> None:
    """The reason support.bench.worker wraps the inherited descriptor with ``socket.socket(fileno=...)``:
    the socket keeps its real family (AF_INET), so the server sets TCP_NODELAY on every
    connection it accepts (``uvicorn --fd`` would not, and Nagle's algorithm would hold back
    each response's second write for ~40 ms). Read inside the service, on the very connection."""
    probe = Pattern("nodelay", "TCP_NODELAY probe", "tests.bench.nodelay_probe:app")
    service = start_service(probe, "http://127.0.0.1:9/v1")  # the probe never calls the upstream
    try:
        assert service.pids() == [service.process.pid]
        assert b"support.bench.worker" in cmdline(service.process.pid)
        with httpx.Client(base_url=service.base_url, timeout=30) as client:
            replies = [client.get("/").json() for _ in range(3)]  # one keep-alive connection
    finally:
        service.stop()
    assert replies == [{"nodelay": True}] * 3
    assert service.process.returncode is not None  # stopped and reaped
