"""One batch of chat completions under rate limits, sent three ways, and what each cost (notebook 12).

A batch job (classify a thousand tickets, embed a catalogue) fans out many calls at once.
Under a key's rate limits, how it fans out decides how many attempts the service sees,
how many calls fail for good, and how long the batch takes. `run_batch` sends the same
batch (`make_batch`) one of three ways to a fresh bundled upstream with the given limits
and reads the outcome from both sides, the caller's and the upstream's journal:

- ``gather``: every call at once with ``asyncio.gather``, the SDK's retries as the only defence;
- ``semaphore``: at most `concurrency` calls in flight (a concurrency limit, not a rate limit);
- ``paced``: `support.paced.RateLimitPacer`, configured from the first reply's headers.

`minimum_wall_s` is the floor the limits set, whatever the client does.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from .paced import RateLimitPacer, RateLimits, estimated_tokens, paced_create
from .tables import text_table
from .upstream import upstream_in_thread
from .upstream_calls import UpstreamCalls

__all__ = [
    "STRATEGIES",
    "BatchResult",
    "Call",
    "Limits",
    "Minimum",
    "make_batch",
    "minimum_wall_s",
    "results_table",
    "run_batch",
]

Strategy = Literal["gather", "semaphore", "paced"]
STRATEGIES: dict[Strategy, str] = {
    "gather": "asyncio.gather, all at once",
    "semaphore": "a semaphore",
    "paced": "paced by the rate-limit headers",
}
WORDS = ("invoice", "refund", "login", "error", "crash", "export", "billing", "upgrade", "password", "timeout")


@dataclass(frozen=True)
class Call:
    """One call of the batch: its messages and its output cap."""

    messages: list[ChatCompletionMessageParam]
    max_completion_tokens: int

    @property
    def tokens(self) -> int:
        """What it counts against the token limit (`support.paced.estimated_tokens`)."""
        return estimated_tokens(self.messages, self.max_completion_tokens)


def make_batch(n: int, *, seed: int = 0) -> list[Call]:
    """`n` ticket-classification calls of different, reproducible sizes (the same `seed`, the same batch)."""
    if n < 1:
        raise ValueError("a batch needs at least one call")
    calls = []
    for i in range(n):
        digest = hashlib.sha256(f"{seed}:{i}".encode()).digest()
        words = " ".join(WORDS[b % len(WORDS)] for b in digest[: 4 + digest[0] % 20])
        ticket = f"Ticket {i}: {words}."
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": "Classify the ticket: billing or bug."},
            {"role": "user", "content": ticket},
        ]
        calls.append(Call(messages, max_completion_tokens=8 + digest[1] % 17))
    return calls


@dataclass(frozen=True)
class Limits:
    """A key's rate limits on the bundled upstream: per `window` seconds."""

    requests: int
    tokens: int
    window: float

    def upstream_settings(self) -> dict[str, Any]:
        return {
            "rate_limit_requests": self.requests,
            "rate_limit_tokens": self.tokens,
            "rate_limit_window": self.window,
        }


@dataclass(frozen=True)
class Minimum:
    """The least wall time the limits allow for a batch: buckets start full and refill at limit/window."""

    by_requests: float  # window * (calls / request limit - 1)
    by_tokens: float  # window * (batch tokens / token limit - 1)
    latency: float  # the last call still takes its own time

    @property
    def seconds(self) -> float:
        return max(self.by_requests, self.by_tokens, 0.0) + self.latency

    @property
    def binding(self) -> str:
        return "tokens" if self.by_tokens >= self.by_requests else "requests"


def minimum_wall_s(batch: list[Call], limits: Limits, latency: float) -> Minimum:
    """The floor: each bucket lets its limit through at once, then refills at limit / window per
    second, so a batch needing more than one window's worth takes at least
    ``window * (needed / limit - 1)`` for each limit, plus one call's latency."""
    tokens = sum(call.tokens for call in batch)
    return Minimum(
        by_requests=limits.window * (len(batch) / limits.requests - 1),
        by_tokens=limits.window * (tokens / limits.tokens - 1),
        latency=latency,
    )


@dataclass
class BatchResult:
    """What one strategy did, from the caller's side and from the upstream's journal."""

    strategy: str
    calls: int
    wall_s: float = 0.0
    attempts: int = 0  # requests the upstream received
    refused: Counter[str] = field(default_factory=Counter)  # 429s by the limit that refused them
    failures: Counter[str] = field(default_factory=Counter)  # calls that failed in the end, by exception
    waited: int | None = None  # paced calls that waited for room (None: no pacer)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rate_limited(self) -> int:
        return sum(self.refused.values())


async def run_batch(
    strategy: Strategy,
    batch: list[Call],
    *,
    model: str,
    limits: Limits,
    latency: float,
    concurrency: int = 10,
    timeout: float = 30.0,  # noqa: ASYNC109 - the SDK's timeout per attempt
) -> BatchResult:
    """Send `batch` as `strategy` does, through an `AsyncOpenAI` with the SDK's default retries, to
    a fresh bundled upstream (so every strategy starts with full buckets) with `limits`."""
    result = BatchResult(STRATEGIES[strategy], len(batch))
    with upstream_in_thread(latency=latency, models=[model], **limits.upstream_settings()) as upstream:
        calls = UpstreamCalls(upstream.journal)
        async with AsyncOpenAI(base_url=upstream.base_url, api_key="batch-key", timeout=timeout) as client:
            started = time.perf_counter()
            run = _Run(client, model, concurrency, limits.window, result)
            outcomes = await _SENDERS[strategy](run, batch)
            result.wall_s = time.perf_counter() - started
        entries = await calls.settled(at_least=len(batch), timeout=timeout)
    result.attempts = len(entries)
    result.refused = Counter(e.rate_limited for e in entries if e.rate_limited is not None)
    result.failures = Counter(type(o).__name__ for o in outcomes if isinstance(o, BaseException))
    return result


@dataclass(frozen=True)
class _Run:
    """What a sender needs besides the batch."""

    client: AsyncOpenAI
    model: str
    concurrency: int
    window: float
    result: BatchResult

    def create(self, call: Call) -> Awaitable[ChatCompletion]:
        return self.client.chat.completions.create(
            model=self.model,
            messages=call.messages,
            max_completion_tokens=call.max_completion_tokens,
        )


async def _gather(run: _Run, batch: list[Call]) -> Sequence[object]:
    return await asyncio.gather(*(run.create(call) for call in batch), return_exceptions=True)


async def _semaphore(run: _Run, batch: list[Call]) -> Sequence[object]:
    gate = asyncio.Semaphore(run.concurrency)

    async def one(call: Call) -> object:
        async with gate:
            return await run.create(call)

    return await asyncio.gather(*(one(call) for call in batch), return_exceptions=True)


async def _paced(run: _Run, batch: list[Call]) -> Sequence[object]:
    """The first call goes alone: its reply's headers give the limits and what is left of them
    (the window is the account's: a minute for RPM and TPM)."""
    first, *rest = batch
    raw = await run.client.chat.completions.with_raw_response.create(
        model=run.model,
        messages=first.messages,
        max_completion_tokens=first.max_completion_tokens,
    )
    pacer = RateLimitPacer(RateLimits.from_headers(raw.headers, run.window))

    async def one(call: Call) -> object:
        completion, _ = await paced_create(
            run.client, pacer, model=run.model, messages=call.messages, max_completion_tokens=call.max_completion_tokens
        )
        return completion

    outcomes = await asyncio.gather(*(one(call) for call in rest), return_exceptions=True)
    run.result.waited = pacer.waited
    return [raw.parse(), *outcomes]


Sender = Callable[[_Run, list[Call]], Awaitable[Sequence[object]]]
_SENDERS: dict[Strategy, Sender] = {
    "gather": _gather,
    "semaphore": _semaphore,
    "paced": _paced,
}


def results_table(results: list[BatchResult], minimum: Minimum) -> str:
    """One row per strategy: attempts and 429s (the upstream's count), failures and wall time (the caller's)."""
    rows = [["strategy", "calls", "attempts", "429 requests", "429 tokens", "failed", "wall s", "x minimum"]]
    for r in results:
        rows.append(
            [
                r.strategy,
                str(r.calls),
                str(r.attempts),
                str(r.refused["requests"]),
                str(r.refused["tokens"]),
                str(r.failed),
                f"{r.wall_s:.1f}",
                f"{r.wall_s / minimum.seconds:.2f}",
            ]
        )
    return text_table(rows, numeric_from=1, rule=True)
