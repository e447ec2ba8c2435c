"""support.bench.measure: a load plus a probe against a served example, reported against the closed-loop ideal."""

from __future__ import annotations

import asyncio
import math

import pytest

from support.bench.loadgen import LoadResult
from support.bench.measure import Measurement, format_table, measure
from support.serve import serve_in_thread
from tests.conftest import Binder


def test_measure_a_fix(bind: Binder) -> None:
    latency, concurrency, n = 0.1, 4, 8
    bound = bind("fix_async_client", latency=latency)
    with serve_in_thread(bound.app) as server:
        m = asyncio.run(measure(server.base_url, concurrency=concurrency, n_requests=n, latency_s=latency))
        no_probe = asyncio.run(
            measure(server.base_url, concurrency=2, n_requests=2, latency_s=latency, probe_path=None)
        )

    load = m.load
    assert (load.concurrency, load.n_requests) == (concurrency, n)
    assert (load.completed, load.ok, load.errors) == (n, n, 0)
    assert dict(load.statuses) == {200: n}
    assert not load.timed_out
    assert m.latency_s == latency
    assert m.probe_s is not None and m.probe_s > 0
    assert min(load.latencies_s) >= latency - 0.005  # no answer before the upstream's latency
    assert load.wall_s >= math.ceil(n / concurrency) * latency - 0.005  # two rounds at least
    assert m.ideal_throughput == pytest.approx(concurrency / latency)
    assert m.ideal_wall_s == pytest.approx(math.ceil(n / concurrency) * latency)
    assert 0 < m.ratio <= 1.2
    assert m.ratio == pytest.approx(load.throughput / m.ideal_throughput)
    assert no_probe.probe_s is None and no_probe.load.ok == 2
    # The upstream got exactly the load: the probe never reaches it.
    assert len(bound.upstream.journal.entries(endpoint="chat.completions")) == n + 2


@pytest.mark.parametrize(("n", "concurrency", "rounds"), [(8, 4, 2), (10, 4, 3), (1, 8, 1), (64, 64, 1), (65, 64, 2)])
def test_ideal_wall_is_whole_rounds_of_latency(n: int, concurrency: int, rounds: int) -> None:
    m = Measurement(load=LoadResult(concurrency=concurrency, n_requests=n), latency_s=0.25, probe_s=None)
    assert m.ideal_wall_s == pytest.approx(rounds * 0.25)
    assert m.ideal_throughput == pytest.approx(concurrency / 0.25)


def _measurement(name_seed: int, *, probe: float | None) -> Measurement:
    load = LoadResult(concurrency=2, n_requests=4, wall_s=0.5, latencies_s=[0.2, 0.25, 0.2, 0.3])
    load.statuses.update({200: 4})
    return Measurement(load=load, latency_s=0.2 + name_seed / 100, probe_s=probe)


def test_format_table_has_a_header_and_one_row_per_pattern() -> None:
    rows = {"silent_blocking": _measurement(0, probe=0.2), "fix_async_client": _measurement(1, probe=None)}
    lines = format_table(rows).splitlines()
    assert len(lines) == 1 + len(rows)
    assert lines[0].split() == [
        "pattern",
        "conc.",
        "requests",
        "ok",
        "wall",
        "s",
        "req/s",
        "ideal",
        "ratio",
        "p50",
        "s",
        "p99",
        "s",
        "probe",
        "s",
    ]
    for line, (name, m) in zip(lines[1:], rows.items(), strict=True):
        cells = line.split()
        assert cells[0] == name
        assert cells[1:4] == ["2", "4", "4"]
        assert cells[-1] == ("-" if m.probe_s is None else f"{m.probe_s:.3f}")
        assert f"{m.ratio:.0%}" in cells
    assert len({len(line.rstrip()) for line in lines}) == 1  # aligned columns
    assert [line.split() for line in format_table({}).splitlines()] == [lines[0].split()]  # header only


# --- Measurement.min_rounds: the latency model behind the notebooks' lower bounds -------------------


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
