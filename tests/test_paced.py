"""support.paced: the limiter keeps a real SDK client under the bundled upstream's rate limits."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from openai import AsyncOpenAI

from support.paced import RateLimitPacer, RateLimits, estimated_tokens, paced_create
from support.upstream import upstream_in_thread
from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Classify: refund please."}]


def test_the_estimate_is_what_the_upstream_counts() -> None:
    """The journal's prompt_tokens is the upstream's own prompt estimate; the output cap is the rest."""
    with upstream_in_thread(latency=0) as upstream:
        with openai.OpenAI(base_url=upstream.base_url, api_key="k") as client:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=9)
        (entry,) = upstream.journal.entries()
    assert estimated_tokens(MESSAGES, 9) == entry.prompt_tokens + 9
    assert estimated_tokens(MESSAGES, 9, n=3) == entry.prompt_tokens + 27


def test_limits_are_read_from_a_real_reply() -> None:
    limited = upstream_in_thread(latency=0, rate_limit_requests=7, rate_limit_tokens=900, rate_limit_window=3)
    with limited as upstream, openai.OpenAI(base_url=upstream.base_url, api_key="k") as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=MESSAGES,
            max_completion_tokens=10,
        )
    limits = RateLimits.from_headers(raw.headers, window=3)
    assert (limits.requests, limits.tokens, limits.window) == (7, 900, 3)
    assert limits.remaining_requests == 6
    assert limits.remaining_tokens == 900 - estimated_tokens(MESSAGES, 10)


def test_a_missing_header_is_named() -> None:
    headers = {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-limit-tokens": "50",
        "x-ratelimit-remaining-requests": "4",
    }
    with pytest.raises(ValueError, match="x-ratelimit-remaining-tokens"):
        RateLimits.from_headers(headers)
    with pytest.raises(ValueError, match="x-ratelimit-limit-requests"):
        RateLimits.from_headers({**headers, "x-ratelimit-limit-requests": "many", "x-ratelimit-remaining-tokens": "1"})


def test_a_cost_over_the_whole_limit_fails_at_once() -> None:
    pacer = RateLimitPacer(RateLimits(10, 100, 10, 100, window=60))
    with pytest.raises(ValueError, match="exceeds the limit of 100"):
        asyncio.run(pacer.acquire(101))


def test_usage_already_reported_is_waited_for() -> None:
    """A reply said the requests bucket is empty: the first call waits for one request's refill."""
    pacer = RateLimitPacer(RateLimits(4, 1000, 0, 1000, window=0.4), slack_s=0)
    started = time.perf_counter()
    asyncio.run(pacer.acquire(1))
    assert time.perf_counter() - started >= 0.08  # 0.4 s / 4 requests, less the timer's rounding
    assert pacer.waited == 1


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"ticket {i}: " + "refund " * (i % 5)}]


async def _paced_batch(base_url: str, calls: int, limits: RateLimits) -> list[object]:
    async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as client:  # a 429 would fail the call
        pacer = RateLimitPacer(limits)

        async def one(i: int) -> object:
            completion, seen = await paced_create(
                client, pacer, model=MODEL, messages=_messages(i), max_completion_tokens=8
            )
            assert seen is not None and (seen.requests, seen.tokens) == (limits.requests, limits.tokens)
            return completion

        return await asyncio.gather(*(one(i) for i in range(calls)), return_exceptions=True)


@pytest.mark.parametrize("binding", ["requests", "tokens"])
def test_a_paced_batch_gets_no_429_and_takes_what_the_limits_require(binding: str) -> None:
    window, calls = 0.5, 24
    costs = [estimated_tokens(_messages(i), 8) for i in range(calls)]
    requests, tokens = (6, 10_000) if binding == "requests" else (1000, 6 * max(costs))
    settings = {"rate_limit_requests": requests, "rate_limit_tokens": tokens, "rate_limit_window": window}
    floor = window * max(calls / requests - 1, sum(costs) / tokens - 1)
    assert floor >= 0.8  # the limit under test binds
    with upstream_in_thread(latency=0.01, **settings) as upstream:
        started = time.perf_counter()
        outcomes = asyncio.run(
            _paced_batch(upstream.base_url, calls, RateLimits(requests, tokens, requests, tokens, window))
        )
        elapsed = time.perf_counter() - started
        entries = upstream.journal.entries()
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert len(entries) == calls and not [e for e in entries if e.rate_limited]
    assert elapsed >= floor * 0.95  # it did wait: unpaced, the batch is over in a blink (and refused)


def test_a_paced_call_needs_its_output_cap() -> None:
    async def call() -> None:
        async with AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k") as client:
            await paced_create(client, RateLimitPacer(RateLimits(5, 50, 5, 50)), model=MODEL, messages=MESSAGES)

    with pytest.raises(ValueError, match="max_completion_tokens"):
        asyncio.run(call())
