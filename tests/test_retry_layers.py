"""support.retry_layers: tenacity over the SDK's retries multiplies attempts; one layer fails fast on quota."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2
import openai
import pytest
from tenacity import RetryCallState

from support.retry_layers import ask_with_one_layer, ask_with_stacked_retries, is_retryable, wait_retry_after
from support.upstream import RunningUpstream, upstream_in_thread
from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(30)

STORM = "rate_limit;retry_after=0.01"  # every attempt refused, with a short retry-after-ms


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(latency=0) as running:
        yield running


def attempts(upstream: RunningUpstream, ask, fault: str, **options) -> tuple[str, list[int | None]]:
    before = len(upstream.journal.entries())

    async def call() -> str:
        async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key="k", **options) as client:
            try:
                return await ask(client, MODEL, fault)
            except openai.APIStatusError as exc:
                return f"{type(exc).__name__} {exc.code}"

    result = asyncio.run(call())
    return result, [e.attempt for e in upstream.journal.entries()[before:]]


def test_stacked_retries_multiply(upstream: RunningUpstream) -> None:
    result, seen = attempts(upstream, ask_with_stacked_retries, STORM)
    assert result == "RateLimitError rate_limit_exceeded"
    assert seen == [0, 1, 2] * 3  # three tenacity attempts, each the SDK's three


def test_the_sdk_retries_insufficient_quota(upstream: RunningUpstream) -> None:
    async def sdk_only(client: openai.AsyncOpenAI, model: str, fault: str) -> str:
        await client.with_options(max_retries=1).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], extra_headers={"x-upstream-fault": fault}
        )
        return "answered"

    result, seen = attempts(upstream, sdk_only, "quota")
    assert result == "RateLimitError insufficient_quota" and seen == [0, 1]


def test_one_layer_fails_fast_on_quota_and_still_retries_a_rate_limit(upstream: RunningUpstream) -> None:
    assert attempts(upstream, ask_with_one_layer, "quota", max_retries=0) == ("RateLimitError insufficient_quota", [0])
    assert attempts(upstream, ask_with_one_layer, STORM, max_retries=0) == (
        "RateLimitError rate_limit_exceeded",
        [0] * 3,
    )
    assert attempts(upstream, ask_with_one_layer, "none", max_retries=0)[1] == [0]


def test_one_layer_refuses_a_client_that_retries_itself(upstream: RunningUpstream) -> None:
    with pytest.raises(ValueError, match="max_retries=0"):
        attempts(upstream, ask_with_one_layer, "none")


def _status_error(status: int, code: str | None, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://upstream/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("refused", response=response, body={"code": code})


def test_is_retryable_keeps_the_sdk_rule_but_quota() -> None:
    assert [is_retryable(_status_error(s, None)) for s in (400, 404, 408, 409, 429, 500, 503)] == [
        False, False, True, True, True, True, True,
    ]  # fmt: skip
    assert not is_retryable(_status_error(429, "insufficient_quota"))
    assert not is_retryable(ValueError("not an API error"))


def test_the_wait_honours_retry_after_ms_then_retry_after_then_backs_off() -> None:
    def state_for(exc: BaseException, attempt: int = 1) -> RetryCallState:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((type(exc), exc, None))
        return state

    assert wait_retry_after(state_for(_status_error(429, None, {"retry-after-ms": "250", "retry-after": "1"}))) == 0.25
    assert wait_retry_after(state_for(_status_error(429, None, {"retry-after": "2"}))) == 2.0
    assert wait_retry_after(state_for(_status_error(503, None), attempt=1)) == 0.5
    assert wait_retry_after(state_for(_status_error(503, None), attempt=3)) == 2.0
