"""How long a generation takes: the configured latency, or a seeded lognormal spread around it.

Real model latencies vary widely and have a long right tail. With one constant latency,
the clients of a closed-loop benchmark move in lockstep: they all send at once, one
latency apart, and a percentile measured then is the burst's, not the service's. A
lognormal whose median is the configured latency and whose 99th percentile is
``latency_p99`` breaks the lockstep with the shape measured latencies take.

A request's draw depends on the seed and its sequence number only, so the same run gets
the same latencies, whatever else happens concurrently. One factor per request scales
both its plain latency and, for a stream, its time to first token.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

__all__ = ["Z99", "latency_factor", "lognormal_sigma", "mean_latency"]

Z99 = NormalDist().inv_cdf(0.99)  # a standard normal's 99th percentile, about 2.326


def lognormal_sigma(median: float, p99: float) -> float:
    """The sigma of the lognormal with this median and 99th percentile: ln(p99 / median) / z99."""
    if not 0 < median <= p99:
        raise ValueError(f"need 0 < median <= p99, got median {median} and p99 {p99}")
    return math.log(p99 / median) / Z99


def latency_factor(seed: int, seq: int, median: float, p99: float | None) -> float:
    """What request `seq` multiplies its latency by: 1 without a spread, else a lognormal draw
    with median 1 (so the latencies' median is the configured one) and 99th percentile
    ``p99 / median``."""
    if p99 is None:
        return 1.0
    sigma = lognormal_sigma(median, p99)
    return math.exp(random.Random(f"latency:{seed}:{seq}").gauss(0.0, sigma))


def mean_latency(median: float, p99: float | None) -> float:
    """The latencies' mean, median * exp(sigma**2 / 2) for the lognormal: what a closed loop's
    ceiling divides by (each client completes one request per mean latency), above the median."""
    if p99 is None:
        return median
    return median * math.exp(lognormal_sigma(median, p99) ** 2 / 2)
