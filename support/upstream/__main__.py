"""``python -m support.upstream``: serve the bundled upstream on a port.

Every option defaults to its ``UPSTREAM_*`` environment variable, then to the
built-in default; ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import uvicorn
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..serve import ServerStartError, bind_socket
from .app import UpstreamApp
from .errors import UpstreamError
from .faults import parse_fault
from .settings import UpstreamSettings

PROG = "python -m support.upstream"


def build_parser(defaults: UpstreamSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the bundled OpenAI-compatible upstream (Chat Completions, Responses, models).",
        epilog="Fault kinds: rate_limit, quota, server_error, bad_request, unauthorized, hang, reset, "
        "stream_drop, stream_error, malformed_json, truncated_json, and the 200s of another shape (chat only) "
        "filter_annotations, refusal; e.g. --fault 'server_error;status=503;times=2'. "
        "Per request: the x-upstream-fault and x-upstream-latency headers. "
        "Besides faults: real per-key rate limits (--rate-limit-*: 429 rate_limit_exceeded with Retry-After and "
        "live x-ratelimit-* headers) and stale keep-alive connections (--stale-after: the journal's fault "
        "stale_connection). Journal: GET/DELETE /_upstream/journal.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8001, help="port to listen on, 0 for any free (default: %(default)s)"
    )
    parser.add_argument(
        "--latency", type=float, default=defaults.latency, help="seconds per plain call (default: %(default)s)"
    )
    parser.add_argument(
        "--ttft", type=float, default=defaults.ttft, help="seconds to a stream's first chunk (default: %(default)s)"
    )
    parser.add_argument(
        "--latency-p99",
        type=float,
        default=defaults.latency_p99,
        metavar="S",
        help="spread the latencies: each request's is drawn (seeded by --seed and its number) from a lognormal "
        "with median --latency and 99th percentile S, its TTFT scaled alike, so that concurrent clients do not move "
        "in lockstep (default: $UPSTREAM_LATENCY_P99, else every request takes --latency)",
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=defaults.chunk_delay, help="seconds between chunks (default: %(default)s)"
    )
    parser.add_argument(
        "--reply-tokens", type=int, default=defaults.reply_tokens, help="tokens in a full reply (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of replies and ids (default: %(default)s)"
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=defaults.capacity,
        metavar="N",
        help="at most N generations in progress at once; more wait their turn (queued, not refused), and a queued "
        "request's latency runs from its turn (default: $UPSTREAM_CAPACITY, else no limit)",
    )
    parser.add_argument(
        "--rate-limit-requests",
        type=int,
        default=defaults.rate_limit_requests,
        metavar="N",
        help="requests per window allowed to each API key, like the real RPM (requests per minute at the default "
        "window); past it, 429 rate_limit_exceeded with retry-after and retry-after-ms. Limits are per key, as token "
        "buckets that start full and refill continuously (default: $UPSTREAM_RATE_LIMIT_REQUESTS, else no limit)",
    )
    parser.add_argument(
        "--rate-limit-tokens",
        type=int,
        default=defaults.rate_limit_tokens,
        metavar="N",
        help="tokens per window allowed to each API key, like the real TPM; a request counts its prompt estimate "
        "plus its max output tokens (else --reply-tokens), and one larger than N is 'Request too large' "
        "(default: $UPSTREAM_RATE_LIMIT_TOKENS, else no limit)",
    )
    parser.add_argument(
        "--rate-limit-window",
        type=float,
        default=defaults.rate_limit_window,
        metavar="S",
        help="seconds in which an emptied bucket refills completely; 60 models per-minute limits "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--keep-alive",
        type=float,
        default=defaults.keep_alive,
        metavar="S",
        help="seconds an idle connection stays open before the server closes it cleanly "
        "(uvicorn's timeout_keep_alive; default: %(default)s)",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=defaults.stale_after,
        metavar="S",
        help="model a NAT, load balancer or proxy that forgets a connection idle for more than S seconds: the next "
        "request on it is not answered (see --stale-mode). Only meaningful below --keep-alive, which closes idle "
        "connections first; a connection's first request is never stale (default: off)",
    )
    parser.add_argument(
        "--stale-mode",
        choices=["reset", "silent"],
        default=defaults.stale_mode,
        help="reset: the request meets a TCP reset (the close crossing the request on the wire); silent: no answer "
        "and no close, so the client waits for its read timeout, at most max_hang (default: %(default)s)",
    )
    parser.add_argument("--fault", default=defaults.fault, help="a fault applied to every request (default: none)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the only bearer key accepted (default: $UPSTREAM_API_KEY, else any non-empty key). "
        "This is the fake upstream's own test credential, never a real OpenAI key.",
    )
    parser.add_argument(
        "--models", default=None, help=f"comma-separated models to serve (default: {','.join(defaults.models)})"
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _problem(error: ErrorDetails, name: Callable[[list[str]], str]) -> str:
    """One validation error as ``<option>: <message>``; a check across options (no location)
    is its message alone, without pydantic's "Value error, " prefix."""
    message = error["msg"].removeprefix("Value error, ")
    location = [str(part) for part in error["loc"]]
    return f"{name(location)}: {message}" if location else message


def main(argv: list[str] | None = None) -> int:
    try:
        defaults = UpstreamSettings()
    except ValidationError as exc:
        problems = "; ".join(_problem(e, lambda loc: f"UPSTREAM_{'_'.join(loc).upper()}") for e in exc.errors())
        print(f"{PROG}: error: invalid environment variable: {problems}", file=sys.stderr)
        return 2
    parser = build_parser(defaults)
    args = parser.parse_args(argv)
    overrides = {
        "latency": args.latency,
        "ttft": args.ttft,
        "latency_p99": args.latency_p99,
        "chunk_delay": args.chunk_delay,
        "reply_tokens": args.reply_tokens,
        "seed": args.seed,
        "fault": args.fault,
        "capacity": args.capacity,
        "rate_limit_requests": args.rate_limit_requests,
        "rate_limit_tokens": args.rate_limit_tokens,
        "rate_limit_window": args.rate_limit_window,
        "keep_alive": args.keep_alive,
        "stale_after": args.stale_after,
        "stale_mode": args.stale_mode,
    }
    if args.api_key is not None:
        overrides["api_key"] = args.api_key
    if args.models is not None:
        overrides["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        settings = UpstreamSettings(**{**defaults.model_dump(), **overrides})
        if settings.fault:
            parse_fault(settings.fault, source="--fault")
        sock = bind_socket(args.host, args.port)
    except ValidationError as exc:
        parser.error("; ".join(_problem(e, lambda loc: "--" + "-".join(loc).replace("_", "-")) for e in exc.errors()))
    except UpstreamError as exc:
        parser.error(exc.message)
    except ServerStartError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(f"bundled upstream on http://{host}:{port}/v1 (latency {settings.latency} s)", flush=True)
    config = uvicorn.Config(
        UpstreamApp(settings),
        log_level=args.log_level,
        access_log=False,
        # uvicorn annotates an int but only passes it to loop.call_later, which takes fractions
        timeout_keep_alive=settings.keep_alive,  # type: ignore[arg-type]
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly, then re-raised SIGINT
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
