"""Start the bundled upstream inside this process: on the running loop or in a thread.

Both bind their own socket on a free port (see `support.serve`), so they never kill a
kernel over a taken port, and both stop cleanly when the block ends. Both close an idle
connection after the ``keep_alive`` setting (uvicorn's ``timeout_keep_alive``, which
uvicorn annotates as an int but only hands to ``loop.call_later``, so fractions work).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from ..serve import RunningServer, serve_in_loop, serve_in_thread
from .app import UpstreamApp
from .faults import parse_fault
from .journal import Journal
from .settings import UpstreamSettings


@dataclass
class RunningUpstream:
    """A bundled upstream that is serving: point ``base_url`` at it as the SDK's base URL."""

    app: UpstreamApp
    server: RunningServer

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        return self.server.base_url + "/v1"

    @property
    def journal(self) -> Journal:
        return self.app.journal

    @property
    def settings(self) -> UpstreamSettings:
        return self.app.settings

    @contextlib.contextmanager
    def fault(self, spec: str | None) -> Iterator[None]:
        """Apply the fault `spec` to every request for the duration of the block.

        For faults behind a service that does not forward the ``x-upstream-fault``
        header (none should); ``None`` turns the server's fault off meanwhile.
        """
        previous = self.app.server_fault
        self.app.server_fault = parse_fault(spec, source="fault") if spec else None
        try:
            yield
        finally:
            self.app.server_fault = previous


def _app(settings: UpstreamSettings | None, overrides: dict[str, Any]) -> UpstreamApp:
    base = settings or UpstreamSettings()
    if overrides:  # validated like any other settings, so a typo fails loudly
        base = UpstreamSettings(**{**base.model_dump(), **overrides})
    return UpstreamApp(base)


@contextlib.asynccontextmanager
async def run_upstream(settings: UpstreamSettings | None = None, **overrides: Any) -> AsyncIterator[RunningUpstream]:
    """Serve the upstream as a task on the running event loop::

    async with run_upstream(latency=0.1) as upstream:
        client = AsyncOpenAI(base_url=upstream.base_url, api_key="test")
    """
    app = _app(settings, overrides)
    async with serve_in_loop(app, timeout_keep_alive=app.settings.keep_alive) as server:
        yield RunningUpstream(app, server)


@contextlib.contextmanager
def upstream_in_thread(settings: UpstreamSettings | None = None, **overrides: Any) -> Iterator[RunningUpstream]:
    """Serve the upstream on its own event loop in a background thread (for sync code,
    and so that a service blocking *its* loop cannot slow the upstream down)."""
    app = _app(settings, overrides)
    with serve_in_thread(app, timeout_keep_alive=app.settings.keep_alive) as server:
        yield RunningUpstream(app, server)
