"""``python -m support.bench.ceiling``: show that the bundled upstream is not the bottleneck.

The upstream runs in its own process (as it does next to a service under test) and the
load generator in this one, so both share the machine's cores as they would in a real
measurement. At each concurrency level a closed loop of clients calls
``POST /v1/chat/completions``; a perfect server with latency L serves C / L requests per
second, and the table shows how close the upstream gets to that ceiling, what it adds
to the latency, and what CPU both sides burnt.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from . import eventloop, procfs
from .errors import BenchError
from .loadgen import LoadResult, RequestSpec, ideal_throughput, new_session, run_load
from .options import parse_levels
from .processes import UpstreamProcess, start_upstream

HEADERS = {"Authorization": "Bearer bench"}
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in a few words."}],
    "max_completion_tokens": 16,
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
COLUMNS = (
    "endpoint",
    "concurrency",
    "requests",
    "wall s",
    "throughput req/s",
    "ideal req/s",
    "ratio",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "added p99 ms",
    "errors",
    "upstream CPU",
    "loadgen CPU",
    "CPU stall",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m support.bench.ceiling",
        description="Measure the bundled upstream against the closed-loop ceiling concurrency / latency. "
        "Exits 1 if any request failed.",
        epilog="Columns: ideal = concurrency / latency; ratio = throughput / ideal; added p99 = p99 - latency; "
        "upstream/loadgen CPU = % of one core; CPU stall = share of the time some task on the machine waited "
        "for a CPU (Linux PSI): high values mean other processes disturbed the measurement.",
    )
    parser.add_argument(
        "--latency", type=float, default=0.5, help="upstream latency per plain call, s (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=parse_levels,
        default=[1, 10, 100],
        metavar="C1,C2,...",
        help="concurrency levels (default: 1,10,100)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        metavar="N",
        help="requests per level (default: max(20, 20 x concurrency), about 10 s a level at 0.5 s)",
    )
    parser.add_argument("--stream", action="store_true", help="also measure streamed chat completions")
    parser.add_argument(
        "--ttft", type=float, default=0.2, help="upstream time to first chunk, s (default: %(default)s)"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="upstream delay between chunks, s (default: %(default)s)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON to PATH"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the upstream's log level (default: %(default)s)",
    )
    return parser


async def count_stream_events(url: str) -> int:
    """How many ``data:`` events (before ``[DONE]``) one streamed reply has: its ideal
    duration is ttft + (events - 1) x chunk_delay."""
    async with new_session() as session, session.post(url, json=STREAM_BODY, headers=HEADERS) as response:
        text = await response.text()
    return sum(1 for line in text.splitlines() if line.startswith("data:") and line != "data: [DONE]")


async def measure(url: str, pid: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Warm up, then run every (endpoint, concurrency) level; one row per level."""
    endpoint = f"{url}/chat/completions"
    plans = [("chat", RequestSpec("POST", endpoint, BODY, HEADERS), args.latency)]
    if args.stream:
        events = await count_stream_events(endpoint)
        stream_latency = args.ttft + (events - 1) * args.chunk_delay
        plans.append(("chat stream", RequestSpec("POST", endpoint, STREAM_BODY, HEADERS), stream_latency))
    rows = []
    for name, spec, latency in plans:
        for concurrency in args.concurrency:
            n = args.requests or max(20, 20 * concurrency)
            print(f"{name}: {n} requests at concurrency {concurrency} ...", file=sys.stderr, flush=True)
            async with new_session() as session:
                # Warm-up: open `concurrency` keep-alive connections (as a long-running
                # service has) and check the request is answered, before measuring.
                warmup = await run_load(
                    spec, concurrency=concurrency, n_requests=concurrency, timeout_s=30 + 4 * latency, session=session
                )
                if warmup.errors:
                    raise BenchError(f"warm-up of {name} failed: {dict(warmup.statuses)}")
                up0, me0, st0 = procfs.cpu_seconds(pid), time.process_time(), procfs.cpu_stall_seconds()
                result = await run_load(
                    spec,
                    concurrency=concurrency,
                    n_requests=n,
                    session=session,
                    timeout_s=30 + 3 * math.ceil(n / concurrency) * latency,
                )
                up1, me1, st1 = procfs.cpu_seconds(pid), time.process_time(), procfs.cpu_stall_seconds()
            rows.append(row(name, result, latency, up1 - up0, me1 - me0, st1 - st0))
    return rows


def row(
    endpoint: str, result: LoadResult, latency: float, upstream_cpu_s: float, loadgen_cpu_s: float, stall_s: float
) -> dict[str, Any]:
    """One level's JSON-ready figures: NaN (no /proc, nothing completed) becomes None."""
    ideal = ideal_throughput(result.concurrency, latency)
    wall = result.wall_s or math.nan
    figures = {
        "ideal_rps": ideal,
        "ratio": result.ratio_to_ideal(latency),
        "added_p99_ms": (result.p99 - latency) * 1000,
        "upstream_cpu_s": upstream_cpu_s,
        "upstream_cpu_pct": 100 * upstream_cpu_s / wall,  # % of one core
        "loadgen_cpu_s": loadgen_cpu_s,
        "loadgen_cpu_pct": 100 * loadgen_cpu_s / wall,
        "cpu_stall_pct": 100 * stall_s / wall,  # PSI "some": share of time a task waited for a CPU
    }
    return {
        "endpoint": endpoint,
        "latency_s": latency,
        **result.to_dict(),
        **{k: None if math.isnan(v) else v for k, v in figures.items()},
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table. CPU is in % of one core over the level's wall time;
    CPU stall is the share of that time some task on the machine waited for a CPU."""

    def cell(value: float | None, template: str, scale: float = 1) -> str:
        return "-" if value is None else template.format(value * scale)

    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if c != "endpoint" else "---" for c in COLUMNS) + "|",
    ]
    for r in rows:
        cells = [
            r["endpoint"],
            str(r["concurrency"]),
            str(r["completed"]),
            cell(r["wall_s"], "{:.2f}"),
            cell(r["throughput_rps"], "{:.1f}"),
            cell(r["ideal_rps"], "{:.1f}"),
            cell(r["ratio"], "{:.1f}%", 100),
            *(cell(r[k], "{:.0f}", 1000) for k in ("p50_s", "p95_s", "p99_s")),
            cell(r["added_p99_ms"], "{:.1f}"),
            str(r["errors"]),
            *(cell(r[k], "{:.0f}%") for k in ("upstream_cpu_pct", "loadgen_cpu_pct", "cpu_stall_pct")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.latency <= 0:
        parser.error("--latency must be > 0 (the ideal throughput is concurrency / latency)")
    if args.requests is not None and args.requests < 1:
        parser.error("--requests must be >= 1")
    upstream: UpstreamProcess | None = None
    try:
        upstream = start_upstream(
            latency_s=args.latency, ttft_s=args.ttft, chunk_delay_s=args.chunk_delay, log_level=args.log_level
        )
        print(
            f"upstream pid {upstream.pid} on {upstream.base_url} (latency {args.latency} s)",
            file=sys.stderr,
            flush=True,
        )
        rows = eventloop.run(measure(upstream.base_url, upstream.pid, args))
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except (BenchError, OSError, aiohttp.ClientError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    finally:  # always, whatever happened above
        if upstream is not None:
            upstream.stop()
    print(format_table(rows))
    worst = max((r["cpu_stall_pct"] for r in rows if r["cpu_stall_pct"] is not None), default=0.0)
    if worst > 10:
        print(
            f"\nNote: other processes competed for the CPUs (CPU stall up to {worst:.0f}% of a level's time), "
            "so throughput and tails are pessimistic: rerun on a quiet machine."
        )
    if args.json is not None:
        report = {
            "upstream": {
                "url": upstream.base_url,
                "pid": upstream.pid,
                "latency_s": args.latency,
                "ttft_s": args.ttft,
                "chunk_delay_s": args.chunk_delay,
            },
            "cpus": os.cpu_count(),
            "levels": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
