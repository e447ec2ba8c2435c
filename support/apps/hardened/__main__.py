"""``python -m support.apps.hardened``: check the settings, then serve with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from .settings import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.apps.hardened",
        description="The hardened OpenAI service. Configure it with OPENAI_API_KEY, OPENAI_BASE_URL, "
        "SERVICE_TOKENS and the other SERVICE_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="processes; each has its own limits (default 1)")
    args = parser.parse_args(argv)
    try:
        Settings().check()  # fail here, with one clear line, rather than in every worker
    except ConfigError as exc:
        print(f"{parser.prog}: error: cannot start: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # e.g. SERVICE_MAX_CONCURRENCY=many; values are never shown
        problems = "; ".join(f"SERVICE_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"{parser.prog}: error: cannot start: {problems}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    uvicorn.run(
        "support.apps.hardened:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )  # the service logs each request itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
