"""A client-side limiter that keeps a batch under an account's rate limits instead of hitting them.

OpenAI limits each key (organization, project) by requests and by tokens per window
(RPM/TPM: a minute) and says where you stand on every reply, in the ``x-ratelimit-*``
headers. A token counts when the request is *admitted*: the prompt's estimate plus the
output the request may produce (``max_completion_tokens``, times ``n``), which is what
OpenAI's cookbook (``api_request_parallel_processor.py``) reserves before sending.

`RateLimits.from_headers` reads the limits and what is left of them from one reply;
`RateLimitPacer` holds one bucket per limit (aiolimiter's `AsyncLimiter`, a leaky bucket:
the same arithmetic as the service's token bucket, which starts full and refills at
limit/window per second) and makes each call wait until both have room; `paced_create`
is a chat completion through it that reads the headers of its own reply.

A pacer belongs to one event loop (aiolimiter binds its waiters to the loop that first
used it), like the client it paces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

__all__ = ["RateLimitPacer", "RateLimits", "estimated_tokens", "paced_create"]


def estimated_tokens(messages: Iterable[Mapping[str, object]], max_output_tokens: int, n: int = 1) -> int:
    """What a chat request counts against a token limit: a prompt estimate plus `n` times its output cap.

    The prompt estimate is the common rule of thumb, about four characters a token plus a few
    per message, which is also what the bundled upstream counts (so here it is exact; against
    another server it is an estimate: the service's formula is not published). Send
    ``max_completion_tokens`` on every paced call: without it the service reserves its own default.
    """
    texts = [str(message.get("content") or "") for message in messages]
    return math.ceil(len("\n".join(texts)) / 4) + 3 * len(texts) + 3 + n * max_output_tokens


@dataclass(frozen=True)
class RateLimits:
    """A key's limits per `window` seconds and what a reply said was left of them."""

    requests: int
    tokens: int
    remaining_requests: int
    remaining_tokens: int
    window: float = 60.0  # the headers give limits, not the window: RPM and TPM are per minute

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], window: float = 60.0) -> RateLimits:
        """Read ``x-ratelimit-{limit,remaining}-{requests,tokens}``; a missing or non-integer one is a
        `ValueError` that names it (a server that sends none has no limits to pace by)."""
        values: dict[str, int] = {}
        for field_name, header in (
            ("requests", "x-ratelimit-limit-requests"),
            ("tokens", "x-ratelimit-limit-tokens"),
            ("remaining_requests", "x-ratelimit-remaining-requests"),
            ("remaining_tokens", "x-ratelimit-remaining-tokens"),
        ):
            raw = headers.get(header)
            try:
                values[field_name] = int(raw)  # type: ignore[arg-type]  # None raises TypeError, caught
            except (TypeError, ValueError):
                raise ValueError(f"the reply has no usable {header} header (got {raw!r})") from None
        if window <= 0:
            raise ValueError("window must be positive")
        return cls(window=window, **values)


class RateLimitPacer:
    """Waits before each call until the requests bucket has one and the tokens bucket has its cost.

    Both buckets refill at the service's rates (limit / window per second). Each holds
    `slack_s` seconds' worth of refill less than the service's: a request reaches the service
    a little after the client let it go, and while the service's bucket is full (at the start of
    a batch) that delay is refill the service never gains, so without the margin its bucket is
    short by delay times rate when the client's is not. On two busy cores (two notebooks and their
    servers) the delay passed 0.1 s and the service refused paced calls; 0.3 s has held. The
    usage a reply reported when the pacer was made (another process on the same key) is
    taken from the buckets on the first call.
    """

    def __init__(self, limits: RateLimits, *, slack_s: float = 0.3) -> None:
        if slack_s < 0:
            raise ValueError("slack_s must not be negative")
        self.limits = limits
        self.slack_s = slack_s
        self._requests = self._bucket(limits.requests)
        self._tokens = self._bucket(limits.tokens)
        self._used: tuple[float, float] | None = (
            min(limits.requests - limits.remaining_requests, self._requests.max_rate),
            min(limits.tokens - limits.remaining_tokens, self._tokens.max_rate),
        )
        self.waited = 0  # calls that had to wait for room

    def _bucket(self, limit: int) -> AsyncLimiter:
        rate = limit / self.limits.window
        capacity = max(1.0, limit - math.ceil(rate * self.slack_s))
        return AsyncLimiter(capacity, capacity / rate)  # the service's refill rate, a smaller burst

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and `tokens` tokens fit. A cost above the whole token limit never
        fits (the service answers it "Request too large"): `ValueError` at once instead of a wait."""
        if tokens > self.limits.tokens:
            raise ValueError(f"a request of {tokens} tokens exceeds the limit of {self.limits.tokens} per window")
        if self._used is not None:
            used_requests, used_tokens = self._used
            self._used = None
            await self._requests.acquire(used_requests)
            await self._tokens.acquire(used_tokens)
        # A cost between the bucket's (smaller) capacity and the limit waits for a full bucket.
        cost = min(tokens, self._tokens.max_rate)
        if not (self._tokens.has_capacity(cost) and self._requests.has_capacity()):
            self.waited += 1
        await self._tokens.acquire(cost)
        await self._requests.acquire()


async def paced_create(
    client: AsyncOpenAI, pacer: RateLimitPacer, **params: Any
) -> tuple[ChatCompletion, RateLimits | None]:
    """A chat completion that waits for `pacer` first; returns it with the limits its reply
    reported (None if the reply had no ``x-ratelimit-*`` headers: the call still succeeded).

    ``max_completion_tokens`` is required: it is half of what the call costs.
    """
    if "max_completion_tokens" not in params:
        raise ValueError("a paced call needs max_completion_tokens: the service reserves it against the token limit")
    await pacer.acquire(estimated_tokens(params["messages"], params["max_completion_tokens"], params.get("n", 1)))
    raw = await client.chat.completions.with_raw_response.create(**params)
    try:
        reported = RateLimits.from_headers(raw.headers, pacer.limits.window)
    except ValueError:
        reported = None
    return raw.parse(), reported
