"""What the benchmark writes: ``results.json``, ``results.md`` (the table) and PNG plots,
and `headline`: the few figures a reader checks first, against the hardened service's targets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

from ..tables import text_table
from .errors import BenchError
from .loadgen import ideal_throughput
from .run import BenchResult

# What the hardened service aims for, under the load TARGET_LOAD describes.
HARDENED_TARGETS = {"vs_upstream": 0.90, "added_p99_ms": 50.0, "lag_p99_ms": 10.0}
TARGET_LOAD = {"latency_s": 0.5, "concurrency": 100}  # the bundled upstream's latency, clients at once


def _pyplot() -> ModuleType:
    """matplotlib's pyplot, drawing to files only; it comes with the ``bench`` extra."""
    try:
        import matplotlib
    except ImportError:
        raise BenchError("the plots need matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table(result: BenchResult) -> str:
    """One Markdown row per pattern and concurrency level."""
    header = (
        "| pattern | C | ok req/s | vs upstream | added p50 ms | added p99 ms | errors | unfinished | upstream calls "
        "| peak in flight | loop lag p99 ms | lag max ms | peak RSS MiB | service CPU ms/req | CPU stall |"
    )
    lines = [header, "|" + "|".join(["---"] * 15) + "|"]
    for row in result.to_dict()["rows"]:
        lag = row["lag_ms"] or {}
        lines.append(
            "| "
            + " | ".join(
                [
                    row["title"],
                    str(row["concurrency"]),
                    _fmt(row["ok_throughput_rps"], ".1f"),
                    _fmt(row["vs_upstream"].get("throughput"), ".0%"),
                    _added(row, 50),
                    _added(row, 99),
                    str(row["errors"]),
                    str(row["unfinished"]),
                    _fmt(row["upstream_requests"], "d"),
                    _fmt(row["upstream_peak_in_flight"], "d"),
                    "no answer" if row["unresponsive"] else _fmt(lag.get("p99"), ".1f"),
                    "no answer" if row["unresponsive"] else _fmt(lag.get("max"), ".0f"),
                    _fmt(row["peak_rss_mib"], ".0f"),
                    _fmt(row["service_cpu_ms"], ".1f"),
                    _fmt(row["cpu_stall_pct"], ".0f") + "%",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def headline(result: BenchResult, concurrency: int | None = None) -> str:
    """The upstream alone against the ideal, and the hardened service (one and two workers) against
    the upstream alone and `HARDENED_TARGETS`, at one level (the highest by default).

    These are the figures a reader compares first; a pattern the run did not include is left out.
    """
    level = concurrency or max(result.config.levels)
    rows = {row["pattern"]: row for row in result.to_dict()["rows"] if row["concurrency"] == level}
    lines = []
    if (ceiling := rows.get("upstream")) is not None:
        ideal = ideal_throughput(level, result.latency_s)
        lines.append(
            f"upstream alone at C={level}: {ceiling['ok_throughput_rps']:.1f} req/s = "
            f"{ceiling['ok_throughput_rps'] / ideal:.0%} of the ideal {ideal:.0f}"
        )
    if (one := rows.get("hardened")) is not None:
        t = HARDENED_TARGETS
        lines.append(
            f"hardened at C={level}: {_fmt(one['vs_upstream'].get('throughput'), '.0%')} of the upstream alone "
            f"(target {t['vs_upstream']:.0%}), "
            f"added p99 {_added(one, 99)} ms (target {t['added_p99_ms']:.0f}), "
            f"loop lag p99 {_fmt((one['lag_ms'] or {}).get('p99'), '.1f')} ms (target {t['lag_p99_ms']:.0f}), "
            f"{_fmt(one['service_cpu_ms'], '.1f')} ms CPU per request"
        )
    if (two := rows.get("hardened_2w")) is not None:
        lines.append(
            f"hardened with 2 workers: {_fmt(two['vs_upstream'].get('throughput'), '.0%')} of the upstream alone, "
            f"peak RSS {_fmt(two['peak_rss_mib'], '.0f')} MiB"
            + (f" vs {_fmt(one['peak_rss_mib'], '.0f')} MiB for one" if one is not None else "")
        )
    return "\n".join(lines)


def target_table(result: BenchResult, concurrency: int | None = None) -> str:
    """Every pattern at one level (the highest by default) against `HARDENED_TARGETS`: its
    figure and whether it met the target in this run (the upstream alone is the reference).
    A loop that could not answer its stats route missed the lag target."""
    level = concurrency or max(result.config.levels)
    t = HARDENED_TARGETS
    rows = [
        [
            f"pattern at C={level}",
            f"vs upstream >= {t['vs_upstream']:.0%}",
            f"added p99 <= {t['added_p99_ms']:.0f} ms",
            f"loop lag p99 <= {t['lag_p99_ms']:.0f} ms",
        ]
    ]
    for row in result.to_dict()["rows"]:
        if row["concurrency"] != level or row["pattern"] == "upstream":
            continue
        lag = (
            "no answer: missed" if row["unresponsive"] else _verdict((row["lag_ms"] or {}).get("p99"), t["lag_p99_ms"])
        )
        rows.append(
            [
                row["title"],
                _verdict(row["vs_upstream"].get("throughput"), t["vs_upstream"], ".0%", at_least=True),
                _added_verdict(row, t["added_p99_ms"]),
                lag,
            ]
        )
    return text_table(rows, rule=True)


def _added(row: dict[str, Any], p: int) -> str:
    """The added latency at percentile `p`; ``>=`` marks a lower bound (unfinished requests)."""
    value = _fmt(row[f"added_p{p}_ms"], ".0f")
    return f">={value}" if row.get(f"added_p{p}_at_least") and value != "-" else value


def _added_verdict(row: dict[str, Any], target: float) -> str:
    """Like `_verdict` for the added p99, where a lower bound within the target proves nothing."""
    value = row["added_p99_ms"]
    if value is None or math.isnan(value):
        return "-"
    if row.get("added_p99_at_least"):
        return f"{_added(row, 99)}: {'missed' if value > target else 'unknown'}"
    return _verdict(value, target, ".0f")


def _verdict(value: float | None, target: float, spec: str = ".1f", *, at_least: bool = False) -> str:
    """``"72%: missed"``; ``-`` when there is no figure."""
    if value is None or math.isnan(value):
        return "-"
    met = value >= target if at_least else value <= target
    return f"{format(value, spec)}: {'met' if met else 'missed'}"


def plot_throughput(result: BenchResult, path: Path) -> None:
    rows = result.to_dict()["rows"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for title in dict.fromkeys(r["title"] for r in rows):
        mine = [r for r in rows if r["title"] == title]
        ceiling = mine[0]["pattern"] == "upstream"
        ax.plot(
            [r["concurrency"] for r in mine],
            [r["ok_throughput_rps"] for r in mine],
            marker="o",
            label=title,
            color="black" if ceiling else None,
            linestyle="--" if ceiling else "-",
        )
    ax.set(
        xscale="log",
        xlabel="concurrent clients",
        ylabel="successful requests / s",
        title=f"Throughput at {result.latency_s:.3g} s upstream latency",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(result: BenchResult, path: Path, concurrency: int | None = None) -> None:
    """Latency distribution per pattern at one level (the highest by default), successes only."""
    level = concurrency or max(result.config.levels)
    rows = [r for r in result.rows if r.concurrency == level]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = [[x * 1000 for x in r.load.latencies_s] or [math.nan] for r in rows]
    ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False)
    ax.set_yticks(range(1, len(rows) + 1), [r.title for r in rows], fontsize=8)
    ax.axvline(result.latency_s * 1000, color="grey", linestyle=":", label="upstream latency")
    ax.set(
        xscale="log",
        xlabel="latency, ms (box: p25-p75, whiskers: p1-p99)",
        title=f"Latency per request at {level} concurrent clients",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: BenchResult, out: Path) -> dict[str, Path]:
    """Write everything into `out`; return the files by name."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "results.json",
        "table": out / "results.md",
        "throughput": out / "throughput.png",
        "latency": out / "latency.png",
    }
    data = _without_nan(result.to_dict())
    files["json"].write_text(json.dumps(data, indent=2, default=_jsonable, allow_nan=False) + "\n")
    extra = ""
    if result.transports is not None:
        t = result.transports
        extra += (
            f"\n\nCPU per SDK call (client side, median of {len(t.cpu_ms['httpx'])} alternating rounds): "
            f"httpx {t.median_ms('httpx'):.2f} ms, aiohttp {t.median_ms('aiohttp'):.2f} ms"
        )
    if result.streams is not None:
        extra += f"\n\nStreams: {result.streams.summary()}"
    files["table"].write_text(table(result) + extra + "\n")
    plot_throughput(result, files["throughput"])
    plot_latency(result, files["latency"])
    return files


def _without_nan(value: Any) -> Any:
    """NaN (no measurement) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")
