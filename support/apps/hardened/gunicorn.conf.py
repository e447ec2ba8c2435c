"""gunicorn's configuration for the template: copy it next to your service.

    gunicorn -c support/apps/hardened/gunicorn.conf.py support.apps.hardened:app

Command-line options override this file (``--bind 0.0.0.0:8000 --workers 4``). Each worker
is a separate process with its own ``AsyncOpenAI``, pool and ``SERVICE_MAX_CONCURRENCY``:
N workers admit N x SERVICE_MAX_CONCURRENCY upstream calls at once.
"""

import os
import sys

from pydantic import ValidationError

from support.apps.hardened.connections import ensure_file_descriptors
from support.apps.hardened.settings import ConfigError, Settings

# Fail in the master, with one line naming the variable (never its value), rather than
# in every worker, which gunicorn would restart for ever.
try:
    _settings = Settings()
    _settings.check()
    ensure_file_descriptors(_settings)
except ConfigError as exc:
    sys.exit(f"gunicorn: error: cannot start: {exc}")
except ValidationError as exc:  # e.g. SERVICE_MAX_CONCURRENCY=many
    _problems = "; ".join(f"SERVICE_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
    sys.exit(f"gunicorn: error: cannot start: {_problems}")

bind = os.environ.get("SERVICE_BIND", "127.0.0.1:8000")  # behind a proxy on the same host
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # processes; each has its own limits
worker_class = "support.apps.hardened.gunicorn_worker.HardenedWorker"  # uvicorn's, with the template's bounds
# A worker whose event loop has not ticked for this long is killed (SIGABRT, then SIGKILL).
# An awaited upstream call, however long, keeps the loop ticking: only a blocking call trips it.
timeout = 30
# On SIGTERM: the worker ends its streams after SERVICE_GRACEFUL_SHUTDOWN_S (a last error
# event each); gunicorn SIGKILLs whatever is left after graceful_timeout, so keep it above.
graceful_timeout = _settings.graceful_shutdown_s + 5
backlog = _settings.backlog
# No preload_app: each worker imports the app after the fork, and its lifespan builds its client.
preload_app = False
accesslog = None  # the service logs each request itself, one JSON line
