"""What a benchmark run measures, and under which load: `Config`, shared by the procedure
(`run`), its results (`results`), the command line and notebook 08."""

from __future__ import annotations

from dataclasses import dataclass, field

from .patterns import PATTERNS

__all__ = ["CLOSED", "OPEN", "Config"]

CLOSED, OPEN = "closed", "open"  # the two loads: a closed loop of C clients, an open loop at R arrivals a second


@dataclass
class Config:
    latency_s: float = 0.5  # the bundled upstream's median latency per call
    latency_p99_s: float | None = 1.0  # its 99th percentile (a seeded lognormal); None: every call takes latency_s
    levels: list[int] = field(default_factory=lambda: [10, 100])  # closed-loop clients
    open_rate_rps: float | None = 150.0  # open-loop arrivals per second (None: no open loop)
    open_drain_s: float = 10.0  # after an open-loop window, how long requests in flight may still finish
    window_s: float = 5.0  # each level is measured over this window, every pattern over the same time
    ramp_s: float = 1.0  # the load runs this long before each window opens (not counted: the steady state)
    rounds: int = 3  # each pattern is measured this many times, interleaved round-robin
    patterns: list[str] = field(default_factory=lambda: list(PATTERNS))
    pin: bool = True  # the service on a core of its own (with two or more cores)
    cross_check: bool = False  # also drive the upstream alone and the hardened service with hey
    calibrate: bool = True  # measure the CPU cost of a raw HTTP request on this machine first
    streams: int = 1000  # streams opened on the hardened service over `stream_ramp_s` (0: skip)
    stream_ramp_s: float = 5.0  # 200 new streams a second: about the closed loop's request rate
    stream_ttft_s: float = 0.5
    stream_chunk_delay_s: float = 0.5  # slow on purpose: the test is about holding connections
    stream_tokens: int = 16
    transport_rounds: int = 5  # rounds of the side-by-side transport comparison (0: skip)
    transport_calls: int = 200  # calls per transport and round
    transport_concurrency: int = 50  # of those, in flight at once (also the pool size whose checks are counted)
    model: str = "gpt-4o-mini"  # what every service and the upstream-alone rows ask for
    upstream_url: str | None = None  # None: start the bundled upstream; else a running server (ends in /v1)
    upstream_key_env: str | None = None  # with upstream_url: the NAME of the variable holding its key

    def level_keys(self) -> list[tuple[str, float]]:
        """Every load a pattern is measured under: ``("closed", C)`` per level, then ``("open", R)``."""
        keys: list[tuple[str, float]] = [(CLOSED, c) for c in self.levels]
        return keys + ([(OPEN, self.open_rate_rps)] if self.open_rate_rps else [])
