"""support.upstream.latency: a seeded lognormal spread of latencies, through the SDK and the CLI."""

from __future__ import annotations

import asyncio
import math
import statistics
import time

import pytest
from openai import AsyncOpenAI
from pydantic import ValidationError

from support.upstream import run_upstream
from support.upstream.latency import Z99, latency_factor, lognormal_sigma, mean_latency
from support.upstream.settings import UpstreamSettings
from tests.conftest import cli_error_line
from tests.upstream.test_cli import clean_env, run_cli

MODEL = "gpt-4o-mini"
PROG = "python -m support.upstream"


def test_the_draws_have_the_configured_median_and_99th_percentile() -> None:
    median, p99 = 0.5, 2.0
    draws = sorted(median * latency_factor(7, seq, median, p99) for seq in range(20_000))
    assert statistics.median(draws) == pytest.approx(median, rel=0.03)
    assert draws[int(0.99 * len(draws))] == pytest.approx(p99, rel=0.08)
    assert min(draws) > 0  # a lognormal: never zero, never negative


def test_a_draw_depends_on_the_seed_and_the_request_number_only() -> None:
    first = [latency_factor(3, seq, 0.5, 1.5) for seq in range(50)]
    assert first == [latency_factor(3, seq, 0.5, 1.5) for seq in range(50)]
    assert first != [latency_factor(4, seq, 0.5, 1.5) for seq in range(50)]
    assert len(set(first)) == len(first)  # no two requests in lockstep


def test_without_a_p99_every_request_takes_the_latency_and_p99_equal_to_it_does_too() -> None:
    assert {latency_factor(0, seq, 0.5, None) for seq in range(10)} == {1.0}
    assert {latency_factor(0, seq, 0.5, 0.5) for seq in range(10)} == {1.0}
    assert lognormal_sigma(1.0, math.e**Z99) == pytest.approx(1.0)


@pytest.mark.parametrize(("median", "p99"), [(0.0, 1.0), (0.5, 0.4), (-1.0, 1.0)])
def test_a_spread_needs_a_positive_median_at_most_the_p99(median: float, p99: float) -> None:
    with pytest.raises(ValueError, match="need 0 < median <= p99"):
        lognormal_sigma(median, p99)


def test_settings_refuse_a_p99_below_the_latency() -> None:
    with pytest.raises(ValidationError, match=r"latency_p99 \(0.1\) needs a latency above 0 and at most latency_p99"):
        UpstreamSettings(latency=0.5, latency_p99=0.1)
    with pytest.raises(ValidationError, match="latency_p99"):
        UpstreamSettings(latency=0.0, latency_p99=0.1)
    assert UpstreamSettings(latency=0.5, latency_p99=0.5).latency_p99 == 0.5


async def _calls(latency: float, p99: float | None, *, stream: bool = False) -> list[tuple[float, float]]:
    """(planned latency, wall time) of ten calls, one after the other."""
    messages = [{"role": "user", "content": "x"}]
    async with run_upstream(latency=latency, ttft=latency, chunk_delay=0.0, reply_tokens=2, latency_p99=p99) as up:
        async with AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
            walls = []
            for _ in range(10):
                started = time.perf_counter()
                if stream:
                    stream_ = await client.chat.completions.create(model=MODEL, messages=messages, stream=True)  # type: ignore[arg-type]
                    async for _chunk in stream_:
                        pass
                else:
                    await client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
                walls.append(time.perf_counter() - started)
        planned = [e.planned_latency for e in up.journal.entries()]
    assert all(p is not None for p in planned)
    return list(zip([p or 0.0 for p in planned], walls, strict=True))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_the_upstream_takes_each_requests_drawn_latency_and_journals_it(stream: bool) -> None:
    spread = asyncio.run(asyncio.wait_for(_calls(0.05, 0.2, stream=stream), 30))
    again = asyncio.run(asyncio.wait_for(_calls(0.05, 0.2, stream=stream), 30))
    assert [p for p, _ in spread] == [p for p, _ in again]  # seeded: the same run, the same latencies
    assert len({p for p, _ in spread}) == len(spread)
    for planned, wall in spread:
        assert planned <= wall < planned + 0.25  # each call took its own latency
    flat = asyncio.run(asyncio.wait_for(_calls(0.05, None, stream=stream), 30))
    assert {p for p, _ in flat} == {0.05}


def test_the_cli_takes_the_option_and_the_variable_and_names_a_bad_combination() -> None:
    line = cli_error_line(run_cli("--latency", "0.5", "--latency-p99", "0.1", "--port", "0"), PROG)
    assert line == f"{PROG}: error: latency_p99 (0.1) needs a latency above 0 and at most latency_p99 (got latency 0.5)"
    line = cli_error_line(run_cli("--port", "0", env=clean_env(UPSTREAM_LATENCY_P99="0.1")), PROG)
    assert line.startswith(f"{PROG}: error: invalid environment variable: latency_p99 (0.1) needs a latency")
    assert "lognormal" in run_cli("--help").stdout


def test_the_mean_of_the_lognormal_agrees_with_its_draws() -> None:
    draws = [0.5 * latency_factor(0, seq, 0.5, 1.0) for seq in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(mean_latency(0.5, 1.0), rel=0.01)
    assert mean_latency(0.5, 1.0) > 0.5  # above the median: a closed loop's ceiling is lower than C / median
    assert mean_latency(0.5, None) == 0.5  # no spread: constant
