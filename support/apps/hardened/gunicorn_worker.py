"""gunicorn's uvicorn worker, with the limits ``python -m support.apps.hardened`` gives uvicorn.

``uvicorn_worker.UvicornWorker`` (the ``uvicorn-worker`` package; uvicorn 0.54 deprecates
its own ``uvicorn.workers``) builds uvicorn's ``Config`` from gunicorn's settings and its
class attribute ``CONFIG_KWARGS``, and passes no ``timeout_graceful_shutdown``: on SIGTERM
such a worker waits for every stream, until gunicorn's ``graceful_timeout`` SIGKILLs it and
the streams are cut without a last event. This worker reads the service's settings and
passes the same bounds as ``__main__``: ``SERVICE_GRACEFUL_SHUTDOWN_S`` and the connection
limits (the listening socket's backlog is gunicorn's own ``backlog`` setting).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # ships no py.typed

from .connections import server_limits
from .settings import Settings


class HardenedWorker(UvicornWorker):  # type: ignore[misc]  # an untyped base class
    """A `UvicornWorker` whose uvicorn bounds shutdown and connections as the template's ``__main__`` does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = Settings()  # checked by gunicorn.conf.py in the master, before any worker starts
        limits = {name: value for name, value in server_limits(settings).items() if name != "backlog"}
        self.CONFIG_KWARGS = {
            **UvicornWorker.CONFIG_KWARGS,
            **limits,
            "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        }
        super().__init__(*args, **kwargs)
