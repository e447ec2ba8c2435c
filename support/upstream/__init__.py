"""The bundled OpenAI-compatible upstream: a real HTTP server for the real SDK.

It answers Chat Completions and Responses (plain and streamed) and the models list,
deterministically, after a configurable latency, with faults on demand (see `faults`),
and keeps a journal of every request it received (see `journal`).

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
