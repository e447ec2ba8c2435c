"""What the benchmark writes: ``results.json``, ``results.md`` (the table) and PNG plots,
and `headline`: the few figures a reader checks first, against the hardened service's targets."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..tables import text_table
from . import machine
from .errors import BenchError
from .loadgen import ideal_throughput, percentile
from .results import BenchResult
from .summary import Spread, Summary, spread_of, summarize

# What the hardened service aims for, under the load TARGET_LOAD describes: the bundled
# upstream's median latency, the closed loop's clients and the open loop's arrival rate.
HARDENED_TARGETS = {
    "vs_upstream": 0.95,  # closed loop: successful throughput, share of the upstream alone
    "vs_async_aiohttp": 0.97,  # closed loop: share of plain AsyncOpenAI over aiohttp (what hardening costs)
    "added_p99_ms": 50.0,  # open loop: latency added at the 99th percentile
    "lag_p99_ms": 10.0,  # open loop: the service's event-loop lag at the 99th percentile
    "cpu_ms": 1.0,  # service CPU per request (closed loop)
    "first_event_p99_s": 1.0,  # streams opened over a short ramp: time to the first event
}
TARGET_LOAD = {"latency_s": 0.5, "concurrency": 100, "open_rate_rps": 150.0}


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


def summaries(result: BenchResult) -> list[Summary]:
    """The run's rows, one `Summary` per pattern and load (its rounds together)."""
    return summarize(result.to_dict()["rows"])


def _spread(spread: Spread) -> str:
    """The rounds' relative spread, ``"14% wide"`` past `SPREAD_LIMIT`; ``-`` with one round or none."""
    if spread.n < 2 or math.isnan(spread.relative):
        return "-"
    return f"{spread.relative:.0%}" + (" wide" if spread.wide else "")


def table(result: BenchResult) -> str:
    """One Markdown row per pattern and load: medians over the rounds, and the spread of the
    throughput ratio. A row with contended rounds says how many; its figures are no evidence."""
    header = (
        "| pattern | load | ok req/s | vs upstream | spread | added p50 ms | added p99 ms | errors | unfinished "
        "| upstream calls | peak in flight | loop lag p99 ms | service CPU ms/req | peak RSS MiB | contended |"
    )
    lines = [header, "|" + "|".join(["---"] * 15) + "|"]
    for s in summaries(result):
        lag = "no answer" if s.unresponsive else _fmt(s.lag_ms().median, ".1f")
        lines.append(
            "| "
            + " | ".join(
                [
                    s.title,
                    s.level,
                    _fmt(s.ok_rps.median, ".1f"),
                    _fmt(s.vs_upstream.median, ".0%"),
                    _spread(s.vs_upstream if s.pattern != "upstream" else s.ok_rps),
                    _added(s, 50),
                    _added(s, 99),
                    str(s.errors),
                    str(s.unfinished),
                    _fmt(s.upstream_requests.median, ".0f"),
                    _fmt(s.upstream_peak, "d"),
                    lag,
                    _fmt(s.service_cpu_ms.median, ".2f"),
                    _fmt(s.peak_rss_mib.median, ".0f"),
                    f"{s.contended_rounds}/{len(s.rows)}" if s.contended_rounds else "no",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _find(result: BenchResult, pattern: str, level: str) -> Summary | None:
    return next((s for s in summaries(result) if s.pattern == pattern and s.level == level), None)


def _paired_ratio(result: BenchResult, pattern: str, other: str, concurrency: int) -> Spread:
    """`pattern`'s successful throughput over `other`'s, round by round, at one closed level."""
    by_round: dict[tuple[str, int], float] = {
        (row.pattern, row.round): row.ok_rps
        for row in result.rows
        if row.mode == "closed" and row.concurrency == concurrency
    }
    return spread_of(
        by_round[(pattern, r)] / by_round[(other, r)]
        for r in range(1, result.config.rounds + 1)
        if (pattern, r) in by_round and by_round.get((other, r))
    )


def headline(result: BenchResult, concurrency: int | None = None) -> str:
    """The figures a reader compares first, medians over the rounds: the upstream alone against
    the ideal, the hardened service against the upstream alone, plain AsyncOpenAI over aiohttp
    and `HARDENED_TARGETS`, its open loop, and two workers against one. A pattern the run did
    not include is left out. A contended run says so first, naming the patterns whose windows
    were, and each line resting on one of them is marked: it supports no conclusion."""
    level = concurrency or max(result.config.levels)
    closed, t = f"C={level}", HARDENED_TARGETS
    lines = []
    if busy := [s.title for s in summaries(result) if s.contended_rounds]:
        lines.append(
            f"CONTENDED windows in: {', '.join(dict.fromkeys(busy))}; a line marked (contended) is no evidence"
        )
    if (ceiling := _find(result, "upstream", closed)) is not None:
        ideal = ideal_throughput(level, result.mean_latency_s)
        lines.append(
            f"upstream alone at {closed}: {_fmt(ceiling.ok_rps.median, '.1f')} req/s = "
            f"{ceiling.ok_rps.median / ideal:.0%} of the ideal {ideal:.0f} (C / mean latency)" + _contended(ceiling)
        )
    if (one := _find(result, "hardened", closed)) is not None:
        vs_plain = _paired_ratio(result, "hardened", "async_aiohttp", level)
        lines.append(
            f"hardened at {closed}: {_fmt(one.vs_upstream.median, '.1%')} of the upstream alone "
            f"(target {t['vs_upstream']:.0%}), "
            + (
                f"{vs_plain.median:.1%} of AsyncOpenAI over aiohttp (target {t['vs_async_aiohttp']:.0%}), "
                if vs_plain.n
                else ""
            )
            + f"{_fmt(one.service_cpu_ms.median, '.2f')} ms CPU per request (target {t['cpu_ms']:.1f})"
            + _contended(one, _find(result, "upstream", closed), _find(result, "async_aiohttp", closed))
        )
    if (
        result.config.open_rate_rps
        and (opened := _find(result, "hardened", f"{result.config.open_rate_rps:g}/s")) is not None
    ):
        lines.append(
            f"hardened, open loop at {opened.level}: added p99 {_added(opened, 99)} ms "
            f"(target {t['added_p99_ms']:.0f}), loop lag p99 {_fmt(opened.lag_ms().median, '.1f')} ms "
            f"(target {t['lag_p99_ms']:.0f}), {_fmt(opened.service_cpu_ms.median, '.2f')} ms CPU per request"
            + _contended(opened)
        )
    if (two := _find(result, "hardened_2w", closed)) is not None:
        gain = _paired_ratio(result, "hardened_2w", "hardened", level)
        lines.append(
            f"hardened with 2 workers (unpinned: {len(result.host.get('available_cores') or []) or 'all'} cores): "
            f"{_fmt(two.vs_upstream.median, '.1%')} of the upstream alone"
            + (f", {gain.median:.2f}x one worker's throughput" if gain.n else "")
            + f", peak RSS {_fmt(two.peak_rss_mib.median, '.0f')} MiB"
            + (f" vs {_fmt(one.peak_rss_mib.median, '.0f')} MiB for one" if one is not None else "")
            + _contended(two, one)
        )
    if (streams := result.streams) is not None:
        first = percentile(streams.first_event_s, 99)
        lines.append(
            f"streams: {streams.completed}/{streams.streams} completed over a {streams.ramp_s:g} s ramp, "
            f"first event p99 {_fmt(first, '.2f')} s (target {t['first_event_p99_s']:g}), "
            f"{streams.kib_per_stream:.0f} KiB per stream"
        )
    return "\n".join(lines)


def _contended(*rested_on: Summary | None) -> str:
    """`` (contended)`` when a line rests on a pattern with contended rounds."""
    return " (contended)" if any(s is not None and s.contended_rounds for s in rested_on) else ""


def target_table(result: BenchResult, concurrency: int | None = None) -> str:
    """Every pattern against `HARDENED_TARGETS`, medians over the rounds: throughput and CPU in the
    closed loop at one level (the highest by default), added latency and loop lag in the open loop.
    A figure from contended rounds gets no verdict; a loop that could not answer missed the lag target."""
    level = concurrency or max(result.config.levels)
    t = HARDENED_TARGETS
    opened = f"{result.config.open_rate_rps:g}/s" if result.config.open_rate_rps else None
    rows = [
        [
            "pattern",
            f"vs upstream at C={level} >= {t['vs_upstream']:.0%}",
            f"CPU ms/req <= {t['cpu_ms']:.1f}",
            f"added p99 at {opened or '-'} <= {t['added_p99_ms']:.0f} ms",
            f"loop lag p99 at {opened or '-'} <= {t['lag_p99_ms']:.0f} ms",
        ]
    ]
    names = dict.fromkeys(s.pattern for s in summaries(result) if s.pattern != "upstream")
    for name in names:
        closed = _find(result, name, f"C={level}")
        open_ = _find(result, name, opened) if opened else None
        either = closed or open_
        rows.append(
            [
                either.title if either is not None else name,
                _judge(closed, lambda s: _verdict(s.vs_upstream.median, t["vs_upstream"], ".0%", at_least=True)),
                _judge(closed, lambda s: _verdict(s.service_cpu_ms.median, t["cpu_ms"], ".2f")),
                _judge(open_, lambda s: _added_verdict(s, t["added_p99_ms"])),
                _judge(
                    open_,
                    lambda s: "no answer: missed" if s.unresponsive else _verdict(s.lag_ms().median, t["lag_p99_ms"]),
                ),
            ]
        )
    return text_table(rows, rule=True)


def _judge(summary: Summary | None, verdict: Callable[[Summary], str]) -> str:
    if summary is None:
        return "-"
    text = verdict(summary)
    if summary.contended_rounds and text.endswith(("met", "missed", "unknown")):
        return text.rpartition(":")[0] + ": contended, no verdict"
    return text


def _added(summary: Summary, p: int) -> str:
    """The median added latency at percentile `p`; ``>=`` marks a lower bound (unfinished requests)."""
    value = _fmt(summary.added_ms(p).median, ".0f")
    return f">={value}" if summary.added_at_least(p) and value != "-" else value


def _added_verdict(summary: Summary, target: float) -> str:
    """Like `_verdict` for the added p99, where a lower bound within the target proves nothing."""
    value = summary.added_ms(99).median
    if math.isnan(value):
        return "-"
    if summary.added_at_least(99):
        return f"{_added(summary, 99)}: {'missed' if value > target else 'unknown'}"
    return _verdict(value, target, ".0f")


def _verdict(value: float | None, target: float, spec: str = ".1f", *, at_least: bool = False) -> str:
    """``"72%: missed"``; ``-`` when there is no figure."""
    if value is None or math.isnan(value):
        return "-"
    met = value >= target if at_least else value <= target
    return f"{format(value, spec)}: {'met' if met else 'missed'}"


def plot_throughput(result: BenchResult, path: Path) -> None:
    """Successful throughput per closed-loop level, the median over the rounds, one line per pattern."""
    closed = [s for s in summaries(result) if s.mode == "closed"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for title in dict.fromkeys(s.title for s in closed):
        mine = [s for s in closed if s.title == title]
        ceiling = mine[0].pattern == "upstream"
        ax.plot(
            [s.first["concurrency"] for s in mine],
            [s.ok_rps.median for s in mine],
            marker="o",
            label=title,
            color="black" if ceiling else None,
            linestyle="--" if ceiling else "-",
        )
    ax.set(
        xscale="log",
        xlabel="concurrent clients",
        ylabel="successful requests / s (median of rounds)",
        title=f"Throughput, upstream latency median {result.latency_s:.3g} s",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(result: BenchResult, path: Path, concurrency: int | None = None) -> None:
    """Latency distribution per pattern at one closed level (the highest by default), every round's
    requests together, failures included."""
    level = concurrency or max(result.config.levels)
    rows = [r for r in result.rows if r.mode == "closed" and r.concurrency == level]
    titles = list(dict.fromkeys(r.title for r in rows))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = [[x * 1000 for r in rows if r.title == title for x in r.load.latencies_s] or [math.nan] for title in titles]
    ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False)
    ax.set_yticks(range(1, len(titles) + 1), titles, fontsize=8)
    ax.axvline(result.latency_s * 1000, color="grey", linestyle=":", label="upstream median latency")
    ax.set(
        xscale="log",
        xlabel="latency, ms (box: p25-p75, whiskers: p1-p99)",
        title=f"Latency per request at {level} concurrent clients",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def conditions(result: BenchResult) -> str:
    """Where and how the run measured: the machine, the core placement, the calibration, and
    whether any window was contended (with the reasons)."""
    c = result.config
    spread = f", p99 {c.latency_p99_s:g} s (lognormal)" if result.bundled and c.latency_p99_s else ""
    lines = [
        f"machine: {result.host.get('cpu_model', 'unknown')}; {result.placement}",
        f"upstream: {'bundled' if result.bundled else 'running server'}, latency median {result.latency_s:.3g} s"
        + spread,
        f"rounds: {c.rounds}, interleaved; windows of {c.window_s:g} s",
    ]
    if result.calibration is not None:
        lines.append(f"calibration: {result.calibration.summary()}")
    lines.append(contention(result))
    return "\n".join(lines)


def contention(result: BenchResult) -> str:
    """Whether any window was contended, and the worst of each figure over the windows, against
    its threshold (`machine.DEFAULT_THRESHOLDS`)."""
    windows = [row.window for row in result.rows if row.window is not None]
    busy = sum(1 for row in result.rows if row.contention)
    limits = machine.DEFAULT_THRESHOLDS
    worst = ", ".join(
        f"{label} up to {_fmt(max((getattr(w, name) for w in windows), default=math.nan), '.0f')}% "
        f"(limit {getattr(limits, name):g}%)"
        for label, name in (
            ("CPU stall", "stall_pct"),
            ("steal", "steal_pct"),
            ("load generator", "loadgen_cpu_pct"),
            ("other processes", "other_cpu_pct"),
        )
    )
    verdict = f"CONTENDED in {busy} of {len(result.rows)} windows" if busy else f"no, in {len(result.rows)} windows"
    return f"contended: {verdict}; {worst}"


def write(result: BenchResult, out: Path) -> dict[str, Path]:
    """Write everything into `out`; return the files by name."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "results.json",
        "table": out / "results.md",
        "throughput": out / "throughput.png",
        "latency": out / "latency.png",
    }
    data = _without_nan({**result.to_dict(), "summaries": [s.to_dict() for s in summaries(result)]})
    files["json"].write_text(json.dumps(data, indent=2, default=_jsonable, allow_nan=False) + "\n")
    extra = ""
    for check in result.cross_checks:
        extra += f"\n\nCross-check with hey: {check.summary()}"
    if result.transports is not None:
        t = result.transports
        extra += (
            f"\n\nCPU per SDK call (client side, median of {len(t.cpu_ms['httpx'])} alternating rounds): "
            f"httpx {t.median_ms('httpx'):.2f} ms, aiohttp {t.median_ms('aiohttp'):.2f} ms"
        )
    if result.streams is not None:
        extra += f"\n\nStreams: {result.streams.summary()}"
    files["table"].write_text(conditions(result) + "\n\n" + table(result) + extra + "\n")
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
