"""``python -m support.bench --help``"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import report
from .config import Config
from .errors import BenchError
from .options import parse_levels
from .patterns import PATTERNS
from .run import run_benchmark

DEFAULT_OUT = Path("build/bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m support.bench",
        description="Drive every pattern's service with the same loads (a closed loop of C clients per level, "
        "then an open loop of Poisson arrivals) against the bundled upstream (each in its own process), or against "
        "a running server with --base-url, in interleaved rounds; report medians with their spread, whether the "
        "machine was contended, and write results.json, results.md and PNG plots.",
        epilog="Patterns: " + "; ".join(f"{p.name} = {p.title}" for p in PATTERNS.values()),
    )
    defaults = Config()
    parser.add_argument(
        "--latency",
        type=float,
        default=defaults.latency_s,
        help="upstream median latency per call, s (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-p99",
        type=float,
        default=defaults.latency_p99_s,
        metavar="S",
        help="the bundled upstream's 99th-percentile latency: each call's latency is drawn from a seeded lognormal "
        "with median --latency; 0 for a constant latency (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=parse_levels,
        default=defaults.levels,
        metavar="C1,C2,...",
        help=f"concurrency levels (default: {','.join(map(str, defaults.levels))})",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=defaults.window_s,
        metavar="S",
        help="seconds each level is measured for; requests still in flight then are "
        "counted as unfinished (default: %(default)s)",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=defaults.ramp_s,
        metavar="S",
        help="seconds each load runs before its window opens, not counted: the window measures the steady "
        "state (default: %(default)s)",
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        default=defaults.open_rate_rps,
        metavar="R",
        help="open-loop arrivals per second, Poisson, latency from each request's intended send time; "
        "0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=defaults.rounds,
        metavar="N",
        help="measure every pattern N times, interleaved round-robin; report medians and spread (default: %(default)s)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the service to a core of its own (by default, with 2+ cores, it gets one and the upstream "
        "and the load generator the others)",
    )
    parser.add_argument(
        "--cross-check",
        action="store_true",
        help="also drive the upstream alone and the hardened service with hey, a compiled load generator "
        "(make hey installs it), and report both",
    )
    parser.add_argument(
        "--patterns",
        default=",".join(PATTERNS),
        metavar="P1,P2,...",
        help="patterns to run (default: all); the upstream alone always runs",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=defaults.streams,
        metavar="N",
        help="streams to open on the hardened service over --stream-ramp, 0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--stream-ramp",
        type=float,
        default=defaults.stream_ramp_s,
        metavar="S",
        help="seconds over which the streams start, evenly (default: %(default)s)",
    )
    parser.add_argument(
        "--transport-rounds",
        type=int,
        default=defaults.transport_rounds,
        metavar="N",
        help="rounds of the side-by-side CPU comparison of the SDK's transports, 0 to skip (default: %(default)s)",
    )
    parser.add_argument("--model", default=defaults.model, help="the model every call asks for (default: %(default)s)")
    parser.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible server that is already running (ends in /v1), instead of the bundled upstream; "
        "every request is a real call to it (billed, on a paid API); --latency is then unused",
    )
    parser.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="NAME",
        help="with --base-url: the environment variable holding its key (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    patterns = [name.strip() for name in args.patterns.split(",") if name.strip()]
    unknown = sorted(set(patterns) - set(PATTERNS))
    if unknown:
        parser.error(f"unknown pattern(s): {', '.join(unknown)}; choose from {', '.join(PATTERNS)}")
    if not args.latency > 0:
        parser.error("--latency must be > 0")
    if args.base_url is None and args.latency_p99 and not args.latency_p99 >= args.latency:
        parser.error("--latency-p99 must be 0 (constant) or at least --latency")
    if not args.window > 0 or args.streams < 0 or args.transport_rounds < 0:
        parser.error("--window must be > 0, --streams and --transport-rounds >= 0")
    if args.rounds < 1 or not args.open_rate >= 0 or not args.stream_ramp >= 0 or not args.ramp >= 0:
        parser.error("--rounds must be >= 1, --open-rate, --ramp and --stream-ramp >= 0")
    config = Config(
        latency_s=args.latency,
        latency_p99_s=args.latency_p99 or None,
        open_rate_rps=args.open_rate or None,
        rounds=args.rounds,
        ramp_s=args.ramp,
        pin=args.pin,
        cross_check=args.cross_check,
        stream_ramp_s=args.stream_ramp,
        levels=args.concurrency,
        window_s=args.window,
        patterns=patterns,
        streams=args.streams,
        transport_rounds=args.transport_rounds,
        model=args.model,
        upstream_url=args.base_url,
        upstream_key_env=args.api_key_env if args.base_url else None,
    )
    started = time.perf_counter()
    try:
        result = run_benchmark(config)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except (BenchError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    files = report.write(result, args.out)
    print(report.conditions(result) + "\n")
    print(report.table(result))
    print("\n" + report.headline(result))
    for check in result.cross_checks:
        print(f"\ncross-check with hey: {check.summary()}")
    if result.transports is not None:
        t = result.transports
        print(
            f"\nCPU per SDK call (client side, median of {len(t.cpu_ms['httpx'])} rounds): httpx "
            f"{t.median_ms('httpx'):.2f} ms, aiohttp {t.median_ms('aiohttp'):.2f} ms ({t.aiohttp_vs_httpx:.0%})"
        )
    if result.streams is not None:
        print(f"\nstreams: {result.streams.summary()}")
    print(f"\n{time.perf_counter() - started:.0f} s; wrote " + ", ".join(str(f) for f in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
