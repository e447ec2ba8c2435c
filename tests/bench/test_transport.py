"""support.bench.transport: what each HTTP transport's pool examines per call, counted against a real upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from support.bench.processes import UpstreamProcess, start_upstream
from support.bench.transport import compare_transports, connections_examined


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    running = start_upstream(latency_s=0.05, extra_args=("--models", "bench-model"))
    yield running
    running.stop()


def test_httpx_examines_every_pooled_connection_aiohttp_one(upstream: UpstreamProcess) -> None:
    """The structural fact notebook 08 asserts in place of "aiohttp costs less CPU" (a timing)."""
    for pool in (1, 8):
        examined = asyncio.run(connections_examined(upstream.base_url, pool_size=pool, model="bench-model"))
        assert examined["httpx"] >= pool, (pool, examined)  # every idle connection, entering and leaving
        assert examined["aiohttp"] == 1, (pool, examined)  # the one it takes


def test_compare_transports_reports_rounds_and_counts(upstream: UpstreamProcess) -> None:
    result = asyncio.run(compare_transports(upstream.base_url, rounds=1, calls=8, concurrency=4, model="bench-model"))
    assert {name: len(rounds) for name, rounds in result.cpu_ms.items()} == {"httpx": 1, "aiohttp": 1}
    assert set(result.examined["httpx"]) == {1, 4} and result.examined["httpx"][4] >= 4
    data = result.to_dict()
    assert data["examined_per_call"]["aiohttp"] == {"1": 1.0, "4": 1.0} and data["aiohttp_vs_httpx"] > 0
