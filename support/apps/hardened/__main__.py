"""``python -m support.apps.hardened``: check the settings, then serve with uvicorn, limits on.

The limits uvicorn can enforce come from the ``SERVICE_*`` settings (see ``settings``) and
are passed as uvicorn's own options (``uvicorn/config.py``: ``Config.__init__``), with
the connection protocol ``connections.BoundedH11Protocol`` (h11, which bounds a request head's
size; see its docstring for why not httptools). The equivalent command line, defaults
shown, is::

    uvicorn support.apps.hardened:app --http support.apps.hardened.connections:BoundedH11Protocol \\
        --h11-max-incomplete-event-size 16384 --timeout-keep-alive 5 \\
        --limit-concurrency 512 --backlog 2048 --timeout-graceful-shutdown 8

A bare ``uvicorn support.apps.hardened:app`` serves with httptools and none of these
bounds. What only a reverse proxy can enforce is listed in ``gate``'s docstring.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from .connections import ensure_file_descriptors, server_limits
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
    parser.add_argument("--root-path", default="", help="the path prefix a proxy in front strips (e.g. /llm)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        settings.check()  # fail here, with one clear line, rather than in every worker
        ensure_file_descriptors(settings)
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
        root_path=args.root_path,
        log_level="info",
        access_log=False,  # the service logs each request itself
        # On SIGTERM, work in flight gets this long, then uvicorn cancels it (server.py,
        # Server.shutdown); unset, it would wait for every stream and every unfinished body.
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        **server_limits(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
