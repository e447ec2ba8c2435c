"""Per-key rate limits like the real service's: requests and tokens per window, as token buckets.

Each API key has up to two buckets, one counting requests and one counting tokens. A
bucket starts full (its capacity is the limit) and refills continuously at limit/window
per second; it does not reset at minute boundaries. The real service's headers show the
same: at 10,000 requests per minute with one request used, ``x-ratelimit-reset-requests``
is ``6ms``, the 60 s / 10,000 it takes to refill one request.

A generation request costs one request and its token estimate (`token_cost`). It passes
only when both buckets hold that much, and only then is anything taken: a refused
request takes nothing, so a retry after ``retry-after-ms`` passes. (OpenAI's rate-limit
guide says that unsuccessful requests count against the per-minute limit; that part is
not modelled.) A request costing more tokens than the whole token limit can never pass
and is refused as "Request too large", without ``Retry-After``.

Keys are kept as SHA-256 digests, never as given. The check and the take happen in one
synchronous step under a lock, so concurrent requests cannot both take the last unit.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .errors import UpstreamError
from .replies import prompt_tokens
from .requests import GenerationRequest

Kind = Literal["requests", "tokens"]
EPSILON = 1e-9  # a level of 2.9999999999 after float refills holds 3
ORGANIZATION = "org-bundled"
# What answers carry for a dimension without a limit: fixed values of the real service's shape.
UNLIMITED_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "10000000",
    "x-ratelimit-remaining-tokens": "9999000",
    "x-ratelimit-reset-tokens": "0s",
}


def token_cost(request: GenerationRequest, reply_tokens: int) -> int:
    """What a request counts against the token limit: its prompt estimate plus n times its output limit.

    The prompt estimate is the one the reply's usage reports (`replies.prompt_tokens`); the
    output limit is ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``, or,
    when the request sets none, the upstream's ``reply_tokens``. This is the count of OpenAI's
    cookbook (``api_request_parallel_processor.py``: prompt tokens + n * max_tokens): the
    service reserves the output a request may produce before it produces any. OpenAI's
    rate-limit guide words it as "the maximum of max_tokens and the estimated number of
    tokens based on the character count of your request"; the exact formula is not published.
    """
    return prompt_tokens(request) + request.n * (request.max_tokens or reply_tokens)


def duration_text(seconds: float) -> str:
    """A duration as the real service writes it (Go's format, to the millisecond, rounded up):
    ``0s``, ``120ms``, ``1.5s``, ``6m0s``, ``1h0m0s``."""
    millis = ceil_millis(seconds)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def ceil_millis(seconds: float) -> int:
    """Whole milliseconds, rounded up, but not past float noise (0.3 * 1000 is 300.00000000000006)."""
    return math.ceil(round(max(0.0, seconds) * 1000, 6))


def window_text(window: float, kind: Kind) -> str:
    """``requests per min (RPM)`` at 60 s, as the real message says; another window named as it is."""
    letter = "R" if kind == "requests" else "T"
    if window == 60:
        return f"{kind} per min ({letter}PM)"
    if window == 86_400:
        return f"{kind} per day ({letter}PD)"
    return f"{kind} per {duration_text(window)}"


@dataclass
class Bucket:
    """`limit` units that refill continuously over `window` seconds; `level` is what is left."""

    limit: int
    window: float
    level: float
    updated: float  # the clock reading `level` is valid at

    @property
    def rate(self) -> float:
        return self.limit / self.window

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, cost: int) -> float:
        """Seconds until the bucket holds `cost` (0 when it does now)."""
        return 0.0 if self.holds(cost) else (cost - self.level) / self.rate

    def holds(self, cost: int) -> bool:
        return self.level + EPSILON >= cost

    @property
    def until_full(self) -> float:
        return (self.limit - self.level) / self.rate

    @property
    def remaining(self) -> int:
        return math.floor(self.level + EPSILON)


@dataclass(frozen=True)
class Admission:
    """The verdict on one request: the headers its answer carries and, when refused, the 429 to send."""

    headers: dict[str, str]
    refused: Kind | None = None
    error: UpstreamError | None = None


@dataclass
class _KeyBuckets:
    requests: Bucket | None
    tokens: Bucket | None

    def refill(self, now: float) -> None:
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill(now)

    @property
    def full(self) -> bool:
        return all(b is None or b.level >= b.limit for b in (self.requests, self.tokens))


@dataclass
class RateLimiter:
    """The buckets of every key seen; `admit` decides one request. No limit set: everything passes."""

    requests: int | None
    tokens: int | None
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000  # past this, keys whose buckets are full again are forgotten (a fresh key is the same)
    _keys: dict[bytes, _KeyBuckets] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _prune_at: int = field(default=0, init=False)

    @property
    def enabled(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def admit(self, key: str, cost: int, model: str) -> Admission:
        """Take one request and `cost` tokens from `key`'s buckets if both have room, else take nothing."""
        with self._lock:
            now = self.clock()
            buckets = self._buckets(key, now)
            buckets.refill(now)
            error, refused = self._refusal(buckets, cost, model)
            if error is None:
                for bucket, units in ((buckets.requests, 1), (buckets.tokens, cost)):
                    if bucket is not None:
                        bucket.level -= units
            headers = self._headers(buckets)
        if error is not None:
            error.headers = {**headers, **error.headers}
        return Admission(headers, refused, error)

    def _buckets(self, key: str, now: float) -> _KeyBuckets:
        digest = hashlib.sha256(key.encode()).digest()
        found = self._keys.get(digest)
        if found is None:
            if len(self._keys) >= max(self.max_keys, self._prune_at):
                self._prune(now)
            found = self._keys[digest] = _KeyBuckets(self._new(self.requests, now), self._new(self.tokens, now))
        return found

    def _new(self, limit: int | None, now: float) -> Bucket | None:
        return None if limit is None else Bucket(limit, self.window, float(limit), now)

    def _prune(self, now: float) -> None:
        for digest, buckets in list(self._keys.items()):
            buckets.refill(now)
            if buckets.full:
                del self._keys[digest]
        self._prune_at = 2 * len(self._keys)  # all busy: let the table grow before scanning again

    def _refusal(self, buckets: _KeyBuckets, cost: int, model: str) -> tuple[UpstreamError | None, Kind | None]:
        tokens = buckets.tokens
        if tokens is not None and cost > tokens.limit:
            return (
                _error(
                    f"Request too large for {model} in organization {ORGANIZATION} on "
                    f"{window_text(self.window, 'tokens')}: Limit {tokens.limit}, Requested {cost}. "
                    "The input or output tokens must be reduced in order to run successfully.",
                    "tokens",
                    {},
                ),
                "tokens",
            )
        candidates: tuple[tuple[Kind, Bucket | None, int], ...] = (
            ("requests", buckets.requests, 1),
            ("tokens", tokens, cost),
        )
        waits = [
            (bucket.wait_for(units), kind, bucket, units)
            for kind, bucket, units in candidates
            if bucket is not None and not bucket.holds(units)
        ]
        if not waits:
            return None, None
        # Name the bucket that keeps the request out longest: the wait is until *both* have room.
        wait, kind, bucket, units = max(waits, key=lambda w: w[0])
        used = bucket.limit - bucket.remaining
        message = (
            f"Rate limit reached for {model} in organization {ORGANIZATION} on {window_text(self.window, kind)}: "
            f"Limit {bucket.limit}, Used {used}, Requested {units}. Please try again in {duration_text(wait)}."
        )
        millis = ceil_millis(wait)
        retry = {"retry-after": str(max(1, math.ceil(millis / 1000))), "retry-after-ms": str(millis)}
        return _error(message, kind, retry), kind

    def _headers(self, buckets: _KeyBuckets) -> dict[str, str]:
        headers = dict(UNLIMITED_HEADERS)
        for kind, bucket in (("requests", buckets.requests), ("tokens", buckets.tokens)):
            if bucket is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(bucket.remaining)
                headers[f"x-ratelimit-reset-{kind}"] = duration_text(bucket.until_full)
        return headers


def _error(message: str, kind: Kind, headers: dict[str, str]) -> UpstreamError:
    return UpstreamError(429, message, type=kind, code="rate_limit_exceeded", headers=headers)
