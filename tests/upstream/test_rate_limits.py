"""Per-key rate limits: token buckets for requests and tokens, the real 429, and what the SDK does with it.

The bucket arithmetic is checked exactly against a hand-driven clock; the wire behaviour
with the real `AsyncOpenAI` over loopback against `run_upstream`, with windows of a
second or so, so refills are seen in a test that stays fast.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from support.upstream import UpstreamSettings, run_upstream
from support.upstream.ratelimits import RateLimiter, duration_text, token_cost
from support.upstream.requests import parse_chat_request
from tests.conftest import MODEL, cli_error_line
from tests.upstream.test_cli import clean_env, run_cli, start_cli

PROMPT = [{"role": "user", "content": "hi"}]
PROMPT_TOKENS = 7  # ceil(len("hi") / 4) + 3 per message + 3: the estimate usage reports
FAST = {"latency": 0.0, "ttft": 0.0, "chunk_delay": 0.0}
GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


def seconds(text: str) -> float:
    """Parse the real service's duration format back (``6m0s``, ``1.5s``, ``120ms``)."""
    match = GO_DURATION.match(text)
    assert match and text, text
    hours, minutes, secs, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0) + int(millis or 0) / 1000


def limits(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith(("x-ratelimit-", "retry-after"))}


def message(error: openai.APIStatusError) -> str:
    """The error body's message (the exception's own text prefixes ``Error code: 429 - ``)."""
    assert isinstance(error.body, dict), error.body
    text: str = error.body["message"]
    return text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the buckets, exactly --------------------------------------------------------------------------


def test_duration_text_is_the_real_services_format() -> None:
    cases = {0: "0s", 0.0004: "1ms", 0.006: "6ms", 0.12: "120ms", 0.3: "300ms", 1.5: "1.5s", 17.034: "17.034s"}
    cases |= {20: "20s", 60: "1m0s", 83.5: "1m23.5s", 360: "6m0s", 3600: "1h0m0s", 86_399.999: "23h59m59.999s"}
    assert {value: duration_text(value) for value in cases} == cases
    assert all(seconds(text) == pytest.approx(value, abs=0.001) for value, text in cases.items())


def test_buckets_start_full_refill_continuously_and_a_refusal_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(requests=3, tokens=100, window=60.0, clock=clock)
    seen = [limiter.admit("key", 30, MODEL) for _ in range(3)]
    assert [a.refused for a in seen] == [None, None, None]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in seen] == ["2", "1", "0"]
    assert [a.headers["x-ratelimit-remaining-tokens"] for a in seen] == ["70", "40", "10"]
    # one request refills in 60 s / 3 = 20 s; 90 tokens in 90 / (100 / 60) = 54 s
    assert [a.headers["x-ratelimit-reset-requests"] for a in seen] == ["20s", "40s", "1m0s"]
    assert seen[-1].headers["x-ratelimit-reset-tokens"] == "54s"

    for _ in range(5):  # refused again and again: nothing is taken
        refused = limiter.admit("key", 30, MODEL)
        assert refused.refused == "requests" and refused.error is not None
        assert refused.headers["x-ratelimit-remaining-tokens"] == "10"
    assert refused.error.message == (
        f"Rate limit reached for {MODEL} in organization org-bundled on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s."
    )
    # the tokens would have kept it out 12 s anyway; the requests bucket, longer, is named
    assert (refused.error.headers["retry-after"], refused.error.headers["retry-after-ms"]) == ("20", "20000")

    clock.now += 20  # one request back, and 10 + 33.3 tokens: not enough for 50
    tokens_short = limiter.admit("key", 50, MODEL)
    assert tokens_short.refused == "tokens" and tokens_short.error is not None
    assert tokens_short.error.type == "tokens" and tokens_short.error.code == "rate_limit_exceeded"
    assert tokens_short.error.message.startswith(
        f"Rate limit reached for {MODEL} in organization org-bundled on tokens per min (TPM): "
        "Limit 100, Used 57, Requested 50. Please try again in 4"
    )
    assert tokens_short.headers["x-ratelimit-remaining-requests"] == "1"  # not taken either
    passed = limiter.admit("key", 43, MODEL)
    assert passed.refused is None and passed.headers["x-ratelimit-remaining-tokens"] == "0"


def test_another_window_is_named_as_it_is() -> None:
    limiter = RateLimiter(requests=1, tokens=None, window=2.0, clock=Clock())
    limiter.admit("key", 1, MODEL)
    refused = limiter.admit("key", 1, MODEL).error
    assert refused is not None
    assert "on requests per 2s: Limit 1, Used 1, Requested 1. Please try again in 2s." in refused.message
    assert limiter.admit("key", 1, MODEL).headers["x-ratelimit-limit-tokens"] == "10000000"  # unlimited: as ever


def test_the_token_cost_is_the_prompt_estimate_plus_n_times_the_output_limit() -> None:
    def cost(**body: Any) -> int:
        return token_cost(parse_chat_request({"model": MODEL, "messages": PROMPT, **body}), 16)

    assert cost() == PROMPT_TOKENS + 16  # no limit set: the upstream's reply_tokens
    assert cost(max_tokens=40) == PROMPT_TOKENS + 40
    assert cost(max_completion_tokens=40, n=3) == PROMPT_TOKENS + 120


def test_keys_are_kept_as_digests_and_full_buckets_are_forgotten_past_the_bound() -> None:
    clock = Clock()
    limiter = RateLimiter(requests=2, tokens=None, window=1.0, clock=clock, max_keys=3)
    for key in ("sk-one", "sk-two", "sk-three"):
        limiter.admit(key, 1, MODEL)
    assert set(limiter._keys) == {hashlib.sha256(k.encode()).digest() for k in ("sk-one", "sk-two", "sk-three")}
    clock.now += 1  # all full again: a fourth key makes room by forgetting them
    limiter.admit("sk-four", 1, MODEL)
    assert set(limiter._keys) == {hashlib.sha256(b"sk-four").digest()}


# --- over the wire, with the SDK ---------------------------------------------------------------


def test_the_request_past_the_limit_gets_the_real_429() -> None:
    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=3, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            passed = [
                await client.chat.completions.with_raw_response.create(model=MODEL, messages=PROMPT) for _ in range(3)
            ]
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model=MODEL, messages=PROMPT)
            entries = up.journal.entries()
        assert [limits(r)["x-ratelimit-remaining-requests"] for r in passed] == ["2", "1", "0"]
        assert all(limits(r)["x-ratelimit-limit-requests"] == "3" for r in passed)
        resets = [seconds(limits(r)["x-ratelimit-reset-requests"]) for r in passed]
        for used, reset in enumerate(resets, start=1):  # 20 s a request, less what refilled meanwhile
            assert 20 * used - 0.5 < reset <= 20 * used, resets
        error = caught.value
        assert (error.status_code, error.type, error.code) == (429, "requests", "rate_limit_exceeded")
        match = re.fullmatch(
            f"Rate limit reached for {MODEL} in organization org-bundled on requests per min \\(RPM\\): "
            r"Limit 3, Used 3, Requested 1\. Please try again in (\S+)\.",
            message(error),
        )
        assert match, message(error)
        headers = limits(error.response)
        wait_ms = int(headers["retry-after-ms"])
        assert 19_500 < wait_ms <= 20_000 and headers["retry-after"] == "20"
        assert seconds(match[1]) == pytest.approx(wait_ms / 1000, abs=0.001)
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert [(e.status, e.outcome, e.rate_limited) for e in entries] == [(200, "ok", None)] * 3 + [
            (429, "error", "requests")
        ]

    asyncio.run(main())


def test_remaining_counts_down_and_refills_over_time() -> None:
    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=4, rate_limit_window=1.0, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):

            async def remaining() -> tuple[int, float]:
                raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=PROMPT)
                headers = limits(raw)
                return int(headers["x-ratelimit-remaining-requests"]), seconds(headers["x-ratelimit-reset-requests"])

            burst = [await remaining() for _ in range(4)]
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model=MODEL, messages=PROMPT)
            await asyncio.sleep(0.55)  # two requests' worth (0.25 s each) come back
            after_half = await remaining()
            await asyncio.sleep(1.05)  # full again
            after_full = await remaining()
            entries = up.journal.entries()
        assert [count for count, _ in burst] == [3, 2, 1, 0]
        for used, (_, reset) in enumerate(burst, start=1):
            assert 0.25 * used - 0.1 < reset <= 0.25 * used, burst
        refilled = 4 * (entries[5].received_at - entries[3].received_at)  # 4 a second since the last one taken
        assert after_half[0] == min(4, math.floor(refilled)) - 1 and after_half[0] >= 1, refilled
        assert after_full[0] == 3

    asyncio.run(main())


def test_a_token_limit_counts_max_tokens_and_spares_the_request_bucket() -> None:
    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=10, rate_limit_tokens=100, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
        ):
            first = await client.chat.completions.with_raw_response.create(model=MODEL, messages=PROMPT, max_tokens=40)
            second = await client.responses.with_raw_response.create(model=MODEL, input="hi", max_output_tokens=30)
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=40)
            entries = up.journal.entries()
        assert limits(first)["x-ratelimit-remaining-tokens"] == str(100 - PROMPT_TOKENS - 40)
        chat_cost, responses_cost = PROMPT_TOKENS + 40, entries[1].prompt_tokens + 30
        assert limits(second)["x-ratelimit-remaining-tokens"] == str(100 - chat_cost - responses_cost)
        headers = limits(caught.value.response)
        assert caught.value.type == "tokens"
        assert f"on tokens per min (TPM): Limit 100, Used {chat_cost + responses_cost}, Requested {chat_cost}." in (
            message(caught.value)
        )
        assert headers["x-ratelimit-remaining-requests"] == "8"  # the refused request took no request either
        assert [e.rate_limited for e in entries] == [None, None, "tokens"]
        assert entries[2].prompt_tokens == PROMPT_TOKENS  # the journal shows the estimate it was refused on

    asyncio.run(main())


def test_a_request_larger_than_the_token_limit_is_refused_for_good_and_the_sdk_retries_it_anyway() -> None:
    """No Retry-After: `_should_retry` still retries a 429, so the SDK spends its two retries
    after its own backoff (0.5 s, then 1 s, less up to 25 % jitter) on a request that cannot pass."""

    async def main() -> None:
        async with (
            run_upstream(rate_limit_tokens=50, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k") as client,  # the default two retries
        ):
            started = time.monotonic()
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=100)
            elapsed = time.monotonic() - started
            entries = up.journal.entries()
        assert message(caught.value) == (
            f"Request too large for {MODEL} in organization org-bundled on tokens per min (TPM): "
            f"Limit 50, Requested {PROMPT_TOKENS + 100}. "
            "The input or output tokens must be reduced in order to run successfully."
        )
        headers = limits(caught.value.response)
        assert "retry-after" not in headers and "retry-after-ms" not in headers
        assert headers["x-ratelimit-remaining-tokens"] == "50"  # nothing taken
        assert [(e.attempt, e.status, e.rate_limited) for e in entries] == [(n, 429, "tokens") for n in range(3)]
        assert 0.375 + 0.75 <= elapsed < 1.5 + 1.0, elapsed

    asyncio.run(main())


def test_each_key_has_its_own_buckets() -> None:
    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=1, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="sk-first", max_retries=0) as first,
            AsyncOpenAI(base_url=up.base_url, api_key="sk-second", max_retries=0) as second,
        ):
            await first.chat.completions.create(model=MODEL, messages=PROMPT)
            with pytest.raises(openai.RateLimitError):
                await first.chat.completions.create(model=MODEL, messages=PROMPT)
            reply = await second.chat.completions.with_raw_response.create(model=MODEL, messages=PROMPT)
            models = [await first.models.list() for _ in range(3)]  # the models list is not limited
        assert limits(reply)["x-ratelimit-remaining-requests"] == "0"
        assert all(page.data for page in models)

    asyncio.run(main())


def test_a_stream_carries_the_counted_headers() -> None:
    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=5, **FAST) as up,
            AsyncOpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client,
            client.chat.completions.with_streaming_response.create(model=MODEL, messages=PROMPT, stream=True) as raw,
        ):
            headers = limits(raw)
            text = await raw.text()
        assert headers["x-ratelimit-remaining-requests"] == "4" and "data: [DONE]" in text

    asyncio.run(main())


def test_the_sdk_waits_retry_after_ms_and_then_passes() -> None:
    seen_headers: list[httpx2.Headers] = []

    async def record(response: httpx2.Response) -> None:
        seen_headers.append(response.headers)

    async def main() -> None:
        async with (
            run_upstream(rate_limit_requests=1, rate_limit_window=0.8, **FAST) as up,
            AsyncOpenAI(
                base_url=up.base_url,
                api_key="k",
                http_client=DefaultAsyncHttpxClient(event_hooks={"response": [record]}),
            ) as client,
        ):
            await client.chat.completions.create(model=MODEL, messages=PROMPT)
            reply = await client.chat.completions.create(model=MODEL, messages=PROMPT)  # 429, waits, passes
            entries = up.journal.entries()
        assert reply.choices[0].message.content
        assert [(e.attempt, e.status, e.rate_limited) for e in entries] == [
            (0, 200, None),
            (0, 429, "requests"),
            (1, 200, None),
        ]
        wait = int(seen_headers[1]["retry-after-ms"]) / 1000
        assert 0.5 < wait <= 0.8
        gap = entries[2].received_at - entries[1].received_at
        assert wait <= gap < wait + 0.3, (wait, gap)

    asyncio.run(main())


# --- configuration ---------------------------------------------------------------------------------


def test_the_cli_documents_the_limits_and_refuses_bad_values() -> None:
    helped = " ".join(run_cli("--help").stdout.split())
    for option in ("--rate-limit-requests N", "--rate-limit-tokens N", "--rate-limit-window S"):
        assert option in helped
    assert "Limits are per key" in helped and "like the real RPM" in helped and "like the real TPM" in helped
    for args, message in [
        (("--rate-limit-requests", "0"), "--rate-limit-requests: Input should be greater than or equal to 1"),
        (("--rate-limit-tokens", "many"), "argument --rate-limit-tokens: invalid int value: 'many'"),
        (("--rate-limit-window", "0"), "--rate-limit-window: Input should be greater than 0"),
        (("--rate-limit-window", "inf"), "--rate-limit-window: Input should be a finite number"),
    ]:
        assert cli_error_line(run_cli(*args), "python -m support.upstream").endswith(message)
    bad_env = run_cli(env=clean_env(UPSTREAM_RATE_LIMIT_TOKENS="-5"))
    assert "UPSTREAM_RATE_LIMIT_TOKENS: Input should be greater than or equal to 1" in cli_error_line(
        bad_env, "python -m support.upstream"
    )


def test_the_environment_sets_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_RATE_LIMIT_REQUESTS", "2")
    monkeypatch.setenv("UPSTREAM_RATE_LIMIT_WINDOW", "1.5")
    settings = UpstreamSettings()
    assert (settings.rate_limit_requests, settings.rate_limit_tokens, settings.rate_limit_window) == (2, None, 1.5)

    proc, base_url = start_cli(env=clean_env(UPSTREAM_RATE_LIMIT_REQUESTS="1"))
    try:
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            client.chat.completions.create(model=MODEL, messages=PROMPT)
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(model=MODEL, messages=PROMPT)
        assert "Limit 1, Used 1, Requested 1. Please try again in" in message(caught.value)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
