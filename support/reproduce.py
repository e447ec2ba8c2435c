"""Notebook 01's harness: the error texts CPython produces, and the services it runs.

- `await_error_text`, `async_for_error_text`: the message of the `TypeError` that
  ``await`` and ``async for`` raise on an object they cannot use, in the wording of a
  given Python version (by default the running one);
- `reproduce`: connect to the target (`support.target.connect`), measure how long a plain
  call to it takes, and import the example services pointed at it; the `Reproduction` it
  returns serves them (`Reproduction.serve`) and stops everything on `close`.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from types import ModuleType

from .serve import serve_in_thread
from .target import Target, connect

__all__ = ["SERVICES", "Reproduction", "async_for_error_text", "await_error_text", "reproduce"]

# CPython formats both messages from a template that names the type of the object:
# `await` in _PyEval_GetAwaitable's error path (Python/ceval.c), reworded in 3.14 by
# gh-114091; `async for` in the GET_AITER instruction (the GET_AITER case of
# Python/ceval.c up to 3.11, inst(GET_AITER) in Python/bytecodes.c from 3.12), worded the
# same from 3.5, when `async for` arrived, to the main branch at this writing.
_AWAIT = [((3, 14), "'{}' object can't be awaited"), ((3, 5), "object {} can't be used in 'await' expression")]
_ASYNC_FOR = [((3, 5), "'async for' requires an object with __aiter__ method, got {}")]


def _wording(table: list[tuple[tuple[int, int], str]], type_name: str, version: tuple[int, int] | None) -> str:
    running = version if version is not None else (sys.version_info.major, sys.version_info.minor)
    for since, template in table:
        if running >= since:
            return template.format(type_name)
    raise ValueError(f"Python {running[0]}.{running[1]} has no such message")


def await_error_text(type_name: str, version: tuple[int, int] | None = None) -> str:
    """CPython's message for ``await`` on an object of type `type_name` that is not awaitable."""
    return _wording(_AWAIT, type_name, version)


def async_for_error_text(type_name: str, version: tuple[int, int] | None = None) -> str:
    """CPython's message for ``async for`` over an object of type `type_name` that has no ``__aiter__``."""
    return _wording(_ASYNC_FOR, type_name, version)


SERVICES = ("broken_await", "silent_blocking", "fix_async_client", "fix_sync_route")


@dataclass
class Reproduction:
    """The target, the measured latency of a plain call to it, and the example services."""

    target: Target
    latency_s: float  # the median wall time of a plain chat completion (Target.measure_latency)
    services: dict[str, ModuleType]
    _servers: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _served: dict[str, str] = field(default_factory=dict, repr=False)  # module name -> base URL

    def __getattr__(self, name: str) -> ModuleType:
        services: dict[str, ModuleType] = self.__dict__.get("services", {})
        if name in services:
            return services[name]
        raise AttributeError(name)

    def serve(self, service: ModuleType) -> str:
        """Serve `service.app` with uvicorn in a thread of its own (its own event loop, so a
        service that blocks its loop does not block the caller's) until `close`; its base URL.

        Each service is served once: asked again, this returns the same server's URL (a
        second server would run the app's lifespan again and replace the client the first
        one's requests use with one bound to another event loop).
        """
        if service.__name__ not in self._served:
            self._served[service.__name__] = self._servers.enter_context(serve_in_thread(service.app)).base_url
        return self._served[service.__name__]

    def close(self) -> None:
        """Stop every service served, then the bundled upstream (if one was started)."""
        self._servers.close()
        self._served.clear()
        self.target.close()

    def __str__(self) -> str:
        names = ", ".join(f"support.apps.{name}" for name in self.services)
        return f"{self.target}\na plain call takes {self.latency_s:.3f} s (median)\nservices: {names}"


def reproduce(base_url: str | None, model: str, api_key_env: str, *, latency_s: float) -> Reproduction:
    """Connect to the target (the bundled upstream with `latency_s` when `base_url` is None),
    measure a plain call's latency there, and import the example services pointed at it.

    The services create their client when they are imported, from the SDK's own
    environment variables, which `Target.import_service` sets first.
    """
    target = connect(base_url, model, api_key_env, latency=latency_s, ttft=latency_s / 2, chunk_delay=0.01)
    try:
        services = {name: target.import_service(name) for name in SERVICES}
        return Reproduction(target=target, latency_s=target.measure_latency(), services=services)
    except BaseException:
        target.close()
        raise
