"""Argument types shared by the benchmark CLIs (``support.bench`` and ``support.bench.ceiling``)."""

from __future__ import annotations

import argparse

__all__ = ["parse_levels"]


def parse_levels(text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]``, for argparse."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be integers >= 1, got {text!r}")
    return levels
