"""Fault injection: what can go wrong upstream, on purpose.

A fault is written ``KIND[;PARAM=VALUE...]`` and applies either to every request
(``--fault`` / ``UPSTREAM_FAULT``) or to one request (the ``x-upstream-fault``
header, which overrides the server's fault; ``x-upstream-fault: none`` turns it off).

========================  =========================================================  ==========================
kind                      what the client gets                                       params (default)
========================  =========================================================  ==========================
``rate_limit``            429 ``rate_limit_exceeded`` with ``Retry-After``,           ``retry_after`` (1 s)
                          ``retry-after-ms`` and ``x-ratelimit-*`` headers
``quota``                 429 ``insufficient_quota`` (permanent: no Retry-After)
``server_error``          500, 502 or 503 ``server_error``                             ``status`` (500)
``bad_request``           400 ``invalid_request_error``
``unauthorized``          401 ``invalid_api_key``
``hang``                  no answer until the client gives up (or ``seconds`` pass,   ``seconds`` (max_hang)
                          then a normal reply)
``reset``                 the TCP connection is reset before any response byte
``stream_drop``           the connection is cut after ``after`` chunks of a stream    ``after`` (3)
                          (for a plain call: after the headers and half the body)
``stream_error``          a stream carries ``after`` chunks, then an error event      ``after`` (3)
``malformed_json``        200 with a body that is not valid JSON
``truncated_json``        200 with a JSON body cut in half
``filter_annotations``    Azure OpenAI's content-filter annotations (chat only): a
                          stream opens with a chunk whose ``choices`` is ``[]`` and
                          that carries ``prompt_filter_results``, and each later
                          choice carries ``content_filter_results``; a plain reply
                          carries both in its body
``refusal``               the model refuses (chat only): the deltas carry ``refusal``
                          tokens and ``content: null``, finish reason ``stop``; a
                          plain reply's message has ``content: null`` and ``refusal``
========================  =========================================================  ==========================

The last two are not errors: the answer is a 200 whose *shape* breaks a handler that
reads ``chunk.choices[0].delta.content`` (see `support.stream_shapes`); the Responses
endpoint and the models list ignore them. The shapes are those of `chat_wire`, which
cites where each comes from.

Every kind also takes ``times=N``: the fault hits only attempts 0..N-1, where the
attempt is the SDK's ``x-stainless-retry-count`` header (0 when absent), so
``server_error;times=2`` fails twice and lets the SDK's second retry through; and
``rate=F``: the fault hits a seeded, reproducible fraction F of requests.

The ``rate_limit`` fault is a 429 on demand; real limits that fill and refill with use
are settings (``rate_limit_requests``, ``rate_limit_tokens``: see `ratelimits`). A stale
keep-alive connection is a setting too (``stale_after``, see `connections`); the journal
writes ``stale_connection`` in a request's fault column when it met one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import UpstreamError

KINDS: dict[str, set[str]] = {
    "rate_limit": {"retry_after"},
    "quota": set(),
    "server_error": {"status"},
    "bad_request": set(),
    "unauthorized": set(),
    "hang": {"seconds"},
    "reset": set(),
    "stream_drop": {"after"},
    "stream_error": {"after"},
    "malformed_json": set(),
    "truncated_json": set(),
    "filter_annotations": set(),
    "refusal": set(),
}
SHAPE_KINDS = frozenset({"filter_annotations", "refusal"})  # a 200 of another shape, chat.completions only
COMMON_PARAMS = {"times", "rate"}
SERVER_ERROR_STATUSES = {500, 502, 503}


@dataclass(frozen=True)
class Fault:
    """A parsed fault specification."""

    kind: str
    retry_after: float = 1.0
    status: int = 500
    seconds: float | None = None
    after: int = 3
    times: int | None = None
    rate: float | None = None

    def applies_to(self, attempt: int, seed: int, seq: int) -> bool:
        """Whether this fault hits the given attempt of the seq-th request received."""
        if self.times is not None and attempt >= self.times:
            return False
        if self.rate is not None:
            digest = hashlib.sha256(f"{seed}:{seq}:rate".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2**64 < self.rate
        return True

    def __str__(self) -> str:
        return spec_of(self)


def spec_of(fault: Fault) -> str:
    """The canonical text of a fault, as it is written in the journal."""
    defaults = Fault(fault.kind)
    parts = [fault.kind]
    for name in sorted(KINDS[fault.kind] | COMMON_PARAMS):
        value = getattr(fault, name)
        if value != getattr(defaults, name):
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return ";".join(parts)


def parse_fault(spec: str, *, source: str = "x-upstream-fault") -> Fault | None:
    """Parse ``KIND[;PARAM=VALUE...]``; ``none`` or empty means no fault.

    Raises `UpstreamError` (400) naming `source` when the spec is not valid, so a
    typo in a header is answered clearly instead of being silently ignored.
    """
    text = spec.strip()
    if text.lower() in ("", "none"):
        return None
    kind, *pairs = [part.strip() for part in text.split(";")]
    if kind not in KINDS:
        raise _bad(source, f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
    allowed = KINDS[kind] | COMMON_PARAMS
    values: dict[str, float | int] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or name not in allowed:
            raise _bad(source, f"fault {kind!r} takes parameters {sorted(allowed)}, not {pair!r}")
        values[name] = _number(source, name, raw.strip())
    fault = Fault(kind, **values)  # type: ignore[arg-type]
    _check_ranges(source, fault)
    return fault


def _number(source: str, name: str, raw: str) -> float | int:
    integer = name in ("status", "after", "times")
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _bad(source, f"parameter {name!r} must be {kind}, got {raw!r}") from None


def _check_ranges(source: str, fault: Fault) -> None:
    if fault.kind == "server_error" and fault.status not in SERVER_ERROR_STATUSES:
        raise _bad(source, f"server_error status must be one of {sorted(SERVER_ERROR_STATUSES)}")
    if fault.retry_after < 0 or (fault.seconds is not None and fault.seconds < 0):
        raise _bad(source, "durations must not be negative")
    if fault.after < 0 or (fault.times is not None and fault.times < 0):
        raise _bad(source, "'after' and 'times' must not be negative")
    if fault.rate is not None and not 0 <= fault.rate <= 1:
        raise _bad(source, "'rate' must be between 0 and 1")


def _bad(source: str, message: str) -> UpstreamError:
    return UpstreamError(400, f"Invalid {source}: {message}.", param=source, code="invalid_fault")
