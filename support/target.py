"""Which OpenAI-compatible server a notebook talks to: the bundled upstream, or yours.

Every notebook has the parameters ``BASE_URL`` (None: start the bundled upstream),
``MODEL`` and ``API_KEY_ENV`` (the *name* of the environment variable holding the key;
papermill writes parameters into the executed notebook, so a key is never one).
`connect` turns those into a `Target` with ready-made SDK clients.

With the bundled upstream, the key is a fresh random token that the upstream is told
to require: authentication is real, and there is still no key to leak.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from openai import AsyncOpenAI, OpenAI

from .upstream import RunningUpstream, upstream_in_thread
from .upstream.journal import Journal
from .upstream.settings import DEFAULT_MODELS


@dataclass
class Target:
    """An OpenAI-compatible endpoint, a model, and (if bundled) the upstream's journal."""

    base_url: str
    model: str
    api_key: str = field(repr=False)
    upstream: RunningUpstream | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def bundled(self) -> bool:
        """True when this is the bundled upstream (journal and fault injection available)."""
        return self.upstream is not None

    @property
    def journal(self) -> Journal:
        if self.upstream is None:
            raise RuntimeError("only the bundled upstream keeps a journal")
        return self.upstream.journal

    def __repr__(self) -> str:
        kind = "bundled upstream" if self.bundled else "external server"
        return f"Target({kind} at {self.base_url}, model={self.model!r})"

    def sync_client(self, **options: Any) -> OpenAI:
        """A sync `OpenAI` client for this target; `options` go to the constructor."""
        return OpenAI(base_url=self.base_url, api_key=self.api_key, **options)

    def async_client(self, **options: Any) -> AsyncOpenAI:
        """An `AsyncOpenAI` client for this target; `options` go to the constructor."""
        return AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, **options)

    def export_sdk_env(self) -> None:
        """Set the SDK's own variables (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL) in
        this process, so that services which call ``OpenAI()`` with no arguments, as the
        example services do, reach this target."""
        os.environ["OPENAI_BASE_URL"] = self.base_url
        os.environ["OPENAI_API_KEY"] = self.api_key
        os.environ["OPENAI_MODEL"] = self.model

    def import_service(self, name: str, **env: str | int) -> ModuleType:
        """Point the example service ``support.apps.<name>`` at this target and import it.

        The example services read their settings when they are imported (a client built
        at import, ``THREADS``), so this sets the SDK's variables (`export_sdk_env`) and
        `env` (e.g. ``THREADS=40``) first, and imports the module afresh if this
        interpreter imported it before, against another target or with other settings.
        """
        self.export_sdk_env()
        for variable, value in env.items():
            os.environ[variable] = str(value)
        module_name = f"support.apps.{name}"
        loaded = sys.modules.get(module_name)
        return importlib.reload(loaded) if loaded is not None else importlib.import_module(module_name)

    def open_connections(self) -> set[object]:
        """The connections the bundled upstream holds open right now (uvicorn's own
        ``server_state.connections``): a client that is never closed keeps its own."""
        if self.upstream is None:
            raise RuntimeError("only the bundled upstream can count its connections")
        return set(self.upstream.server.server.server_state.connections)

    def measure_latency(self, calls: int = 3) -> float:
        """The median wall time, in seconds, of `calls` plain chat completions in a row.

        What a notebook expects of timings comes from this, not from ``LATENCY_S``:
        that parameter sets the bundled upstream's latency only, and another server
        has its own. The first call also opens the connection, so it is not counted.
        """
        if calls < 1:
            raise ValueError("calls must be at least 1")
        timings = []
        with self.sync_client(max_retries=0) as client:
            for _ in range(calls + 1):
                started = time.perf_counter()
                client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": "ping"}], max_completion_tokens=8
                )
                timings.append(time.perf_counter() - started)
        return statistics.median(timings[1:])

    def needs_bundled(self, what: str) -> bool:
        """Say so and return False when `what` needs the bundled upstream but this is not it."""
        if not self.bundled:
            print(f"skipped: {what} needs the bundled upstream (BASE_URL is {self.base_url}).")
        return self.bundled

    def close(self) -> None:
        """Stop the bundled upstream, if one was started."""
        self._stack.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()


def connect(
    base_url: str | None,
    model: str,
    api_key_env: str = "OPENAI_API_KEY",
    **upstream_settings: Any,
) -> Target:
    """Start the bundled upstream (``base_url=None``) or point at an existing server.

    `upstream_settings` (latency, ttft, ...) configure the bundled upstream and are
    ignored for another server. For another server the key is read from the
    environment variable named `api_key_env`; a missing or blank one is an error that
    names the variable and never shows a value.
    """
    if base_url is not None:
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise RuntimeError(f"BASE_URL is set, so the key must be in ${api_key_env}, which is missing or empty")
        return Target(base_url=base_url, model=model, api_key=key)
    key = "bundled-" + secrets.token_urlsafe(16)
    target = Target(base_url="", model=model, api_key=key)
    # Serve the notebook's model whatever its name, as a real server serves yours; any
    # other name still gets the real API's 404 model_not_found.
    models = upstream_settings.pop("models", list(DEFAULT_MODELS))
    served = models if not models or model in models else [*models, model]
    upstream = target._stack.enter_context(upstream_in_thread(api_key=key, models=served, **upstream_settings))
    target.upstream, target.base_url = upstream, upstream.base_url
    return target
