"""The bundled OpenAI-compatible upstream: a real HTTP server for the real SDK.

It answers Chat Completions and Responses (plain and streamed) and the models list,
deterministically, after a configurable latency (one for all, or a seeded lognormal
spread with ``latency_p99``: `latency`), with faults on demand (see `faults`),
and keeps a journal of every request it received (see `journal`). Every reply is one the
installed SDK accepts with ``_strict_response_validation=True``
(``tests/upstream/test_strict_validation.py`` fails when the two drift apart).

The request parameters the SDK sends are checked with the real API's wording
(`requests`, `checks`, `messages`) and shape the reply as they would for real: function
tools and ``tool_choice`` (`tools`), ``response_format``/``text.format`` with JSON
schemas (`formats`, `schemas`), ``n``, ``logprobs``, ``stop``, token limits, reasoning
models (`models`), ``previous_response_id`` (`stored`). `replies` decides what the
'model' says; `chat_wire` and `responses_wire` put it on the wire. ``capacity``
(`capacity`) makes the server a bottleneck of its own: at most N generations at once,
the rest queued. ``rate_limit_requests`` / ``rate_limit_tokens`` (`ratelimits`) are the
real service's per-key limits: token buckets, live ``x-ratelimit-*`` headers, and its
429 wording with ``Retry-After``. ``keep_alive`` closes idle connections as uvicorn does,
and ``stale_after`` (`connections`) models a NAT or load balancer that forgets an idle
connection sooner: the next request on it meets a reset or silence.

Start it with ``python -m support.upstream``, ``async with run_upstream(...)`` or
``with upstream_in_thread(...)``.
"""

from .app import UpstreamApp
from .embedded import RunningUpstream, run_upstream, upstream_in_thread
from .errors import UpstreamError
from .faults import Fault, parse_fault
from .journal import Journal, JournalEntry, format_entries
from .settings import UpstreamSettings

__all__ = [
    "Fault",
    "Journal",
    "JournalEntry",
    "RunningUpstream",
    "UpstreamApp",
    "UpstreamError",
    "UpstreamSettings",
    "format_entries",
    "parse_fault",
    "run_upstream",
    "upstream_in_thread",
]
