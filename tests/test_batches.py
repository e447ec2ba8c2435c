"""support.batches: one batch sent three ways to a rate-limited bundled upstream, counted from both sides."""

from __future__ import annotations

import asyncio

import pytest

from support.batches import STRATEGIES, Limits, make_batch, minimum_wall_s, results_table, run_batch
from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(60)

LIMITS = Limits(requests=10, tokens=10 * 45, window=0.5)  # tokens bind: a call costs about 50


def test_the_batch_is_reproducible_and_varied() -> None:
    batch = make_batch(40)
    assert batch == make_batch(40) and batch != make_batch(40, seed=1)
    assert len({call.tokens for call in batch}) > 10
    assert len({call.max_completion_tokens for call in batch}) > 5
    with pytest.raises(ValueError, match="at least one call"):
        make_batch(0)


def test_the_minimum_is_the_binding_limit_s_refill_time_plus_one_call() -> None:
    batch = make_batch(30)
    tokens = sum(call.tokens for call in batch)
    minimum = minimum_wall_s(batch, LIMITS, latency=0.05)
    assert minimum.by_requests == pytest.approx(0.5 * (30 / 10 - 1))
    assert minimum.by_tokens == pytest.approx(0.5 * (tokens / LIMITS.tokens - 1))
    assert minimum.binding == "tokens" and minimum.seconds == pytest.approx(minimum.by_tokens + 0.05)
    assert minimum_wall_s(batch[:2], LIMITS, latency=0.05).seconds == pytest.approx(0.05)  # fits in the buckets


def test_gather_is_refused_and_fails_calls_while_the_pacer_sends_each_call_once() -> None:
    batch = make_batch(30)
    minimum = minimum_wall_s(batch, LIMITS, latency=0.01)
    results = {
        strategy: asyncio.run(run_batch(strategy, batch, model=MODEL, limits=LIMITS, latency=0.01, concurrency=5))
        for strategy in STRATEGIES
    }
    gather, semaphore, paced = results["gather"], results["semaphore"], results["paced"]
    for result in (gather, semaphore):
        assert result.rate_limited > 0 and result.attempts == result.calls - result.failed + result.rate_limited
        assert result.attempts > result.calls
    assert gather.failed > 0 and set(gather.failures) == {"RateLimitError"}  # after the SDK's two retries
    assert (paced.attempts, paced.rate_limited, paced.failed) == (30, 0, 0)
    assert paced.waited and paced.wall_s >= minimum.seconds * 0.9
    table = results_table(list(results.values()), minimum)
    assert len(table.splitlines()) == 2 + len(STRATEGIES) and all(s in table for s in STRATEGIES.values())
