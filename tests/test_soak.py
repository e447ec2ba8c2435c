"""support.soak: a leaking soak's samples climb with its abandoned streams; a fixed one stays flat."""

from __future__ import annotations

import asyncio

import pytest

from support.pools import Transport
from support.soak import FAULTS, MIX, SoakReport, soak
from support.stream_leaks import FIXES, LEAKS
from support.upstream import run_upstream

MODEL = "gpt-4o-mini"
CALLS = 4 * len(MIX)  # whole rounds of the mix, so every kind's count is known


async def _soak(transport: Transport, name: str, *, faults: bool = True) -> SoakReport:
    # Abandoned streams outlast the soak (60 chunks 50 ms apart); the others are cut short by the soak itself.
    async with run_upstream(latency=0.01, ttft=0.01, chunk_delay=0.05, reply_tokens=60) as upstream:
        pattern = {**LEAKS, **FIXES}[name]
        extra = {} if faults else {"faults": ()}
        return await soak(
            upstream.base_url, "k", MODEL, transport, (name, pattern), calls=CALLS, concurrency=4, pool_size=100,
            pool_timeout=1.0, **extra,
        )  # fmt: skip


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_streams_returned_before_reading_pile_up_and_their_fix_stays_flat(transport: Transport) -> None:
    leaking = asyncio.run(asyncio.wait_for(_soak(transport, "return before reading"), 60))
    fixed = asyncio.run(asyncio.wait_for(_soak(transport, "return, close in finally"), 60))
    abandoned = CALLS // len(MIX) * MIX.count("abandon")
    assert [s.done for s in leaking.samples] == [0, CALLS // 2, CALLS]
    assert [s.pool.lent for s in leaking.samples] == [0, abandoned // 2, abandoned]  # one lent per abandoned stream
    assert leaking.growth().sockets >= abandoned
    assert [s.pool.lent for s in fixed.samples] == [0, 0, 0]
    assert fixed.growth().sockets <= 4  # at most the workers' kept-alive connections
    for report in (leaking, fixed):
        assert sum(report.outcomes.values()) == CALLS
        assert report.outcomes["abandon: ok"] == abandoned
        assert report.outcomes["plain: ok"] == CALLS // len(MIX) * MIX.count("plain")
        faulted = {kind: n for kind, n in report.outcomes.items() if kind.startswith("fault ")}
        assert sum(faulted.values()) == CALLS // len(MIX) * MIX.count("fault")
        assert not [kind for kind in faulted if kind.endswith(": ok")]  # every fault reached the caller (no retries)
        assert {kind.split(": ")[0].removeprefix("fault ") for kind in faulted} == set(FAULTS)


def test_without_faults_faulted_calls_are_plain_ones() -> None:
    report = asyncio.run(asyncio.wait_for(_soak("httpx2", "break inside async with", faults=False), 60))
    assert not [kind for kind in report.outcomes if kind.startswith("fault")]
    assert report.outcomes["plain: ok"] == CALLS // len(MIX) * (MIX.count("plain") + MIX.count("fault"))


def test_a_soak_too_small_to_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 calls and 1 worker"):
        asyncio.run(soak("http://127.0.0.1:9/v1", "k", MODEL, "httpx2", ("x", LEAKS["break early"]), calls=1,
                         concurrency=1, pool_size=1, pool_timeout=0.1))  # fmt: skip
