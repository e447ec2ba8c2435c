"""support.bench.results: calls the upstream saw, and the most open at one instant."""

from __future__ import annotations

import pytest

from support.bench.results import UpstreamView, peak_in_flight, view_of_journal


@pytest.mark.parametrize(
    ("intervals", "peak"),
    [
        ([], 0),
        ([(0.0, 1.0)], 1),
        ([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], 1),  # one after the other, touching: never two at once
        ([(0.0, 1.0), (0.5, 1.5), (0.9, 2.0), (1.2, 1.3)], 3),
        ([(0.0, 10.0), (1.0, 2.0), (3.0, 4.0)], 2),  # nested
        ([(0.0, None), (5.0, 8.0), (7.0, None)], 3),  # None: still open when the journal was read
    ],
)
def test_peak_in_flight(intervals: list[tuple[float, float | None]], peak: int) -> None:
    assert peak_in_flight(intervals) == peak


def test_view_of_journal_counts_and_filters_by_endpoint() -> None:
    entries = [
        {"endpoint": "chat.completions", "received_at": 0.0, "finished_at": 1.0},
        {"endpoint": "chat.completions", "received_at": 0.5, "finished_at": None},
        {"endpoint": "models", "received_at": 0.6, "finished_at": 0.7},
    ]
    assert view_of_journal(entries) == UpstreamView(3, 3, [1.0, pytest.approx(0.1)])  # finished calls only
    assert view_of_journal(entries, endpoint="chat.completions") == UpstreamView(2, 2, [1.0])
    assert view_of_journal(entries, since=0.5) == UpstreamView(3, 3, [pytest.approx(0.1)])  # received from 0.5 on
    assert view_of_journal([]) == UpstreamView(0, 0)
