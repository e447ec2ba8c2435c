"""Measurement.min_rounds: the latency model behind the notebooks' lower bounds."""

from __future__ import annotations

import pytest

from support.bench.loadgen import LoadResult
from support.bench.measure import Measurement


def measurement(concurrency: int, n_requests: int, latency_s: float = 0.5) -> Measurement:
    return Measurement(LoadResult(concurrency=concurrency, n_requests=n_requests), latency_s=latency_s, probe_s=None)


@pytest.mark.parametrize(
    ("concurrency", "n_requests", "in_flight", "rounds"),
    [
        (30, 60, 6, 10),  # a pool of 6: ten rounds
        (30, 60, 40, 2),  # more tokens than clients: the clients are the limit
        (80, 80, 40, 2),
        (80, 80, 80, 1),
        (10, 25, 10, 3),  # a partial round still takes a whole latency
    ],
)
def test_rounds_divide_the_requests_by_the_calls_in_flight(
    concurrency: int, n_requests: int, in_flight: int, rounds: int
) -> None:
    assert measurement(concurrency, n_requests).min_rounds(in_flight) == rounds


def test_the_ideal_wall_time_is_the_clients_own_rounds() -> None:
    m = measurement(10, 25, latency_s=0.5)
    assert m.ideal_wall_s == m.min_rounds(10) * 0.5 == 1.5


def test_nothing_in_flight_is_an_error() -> None:
    with pytest.raises(ValueError, match="in_flight"):
        measurement(10, 10).min_rounds(0)
