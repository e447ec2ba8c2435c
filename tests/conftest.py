"""What many test modules share: ROOT, wait_until, the CLI error style, and the `bind` fixture.

The project root; polling for a condition instead of sleeping; the one way every CLI
reports an error; and a fixture that points an example service at a fresh bundled upstream.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol, TypeVar

import pytest
from fastapi import FastAPI
from openai import OpenAI

from support.upstream import RunningUpstream, upstream_in_thread

__all__ = ["MODEL", "NO_SUCH_PID", "ROOT", "Binder", "Bound", "cli_error_line", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent  # the project root
NO_SUCH_PID = 2**22  # no process has it: Linux hands out pids below pid_max, which is at most 2**22
MODEL = "gpt-4o-mini"  # the model the tests ask for, and what `bind` sets OPENAI_MODEL to

T = TypeVar("T")


def wait_until(produce: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Call `produce` every 10 ms until it returns something truthy, and return that value.

    Serves both styles: a predicate (``wait_until(lambda: len(errors) == 1)``) and a
    producer whose truthy result the caller keeps (``line = wait_until(lambda: find(...))``).
    A short poll instead of a fixed sleep: the test goes on as soon as the condition holds,
    and `timeout` (generous, for a shared machine) only bounds a failure, which raises
    AssertionError naming `what`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.01)


def cli_error_line(done: subprocess.CompletedProcess[str], prog: str, returncode: int = 2) -> str:
    """Check the project's CLI error style on a finished ``python -m ...`` run and return its error line.

    A failed CLI exits with `returncode` (2: a usage or configuration error) and prints
    nothing on stdout; on stderr, at most argparse's usage, then exactly one line
    ``<prog>: error: <message>``, last, and never a traceback.
    """
    assert done.returncode == returncode, (done.returncode, done.stderr)
    assert done.stdout == "", done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and [line for line in lines if ": error:" in line] == [lines[-1]], done.stderr
    assert lines[-1].startswith(f"{prog}: error: "), done.stderr
    return lines[-1]


@dataclass
class Bound:
    """An example-app module (``support.apps.<name>``) freshly imported against its own bundled upstream."""

    module: ModuleType
    upstream: RunningUpstream
    api_key: str

    @property
    def app(self) -> FastAPI:
        app: FastAPI = self.module.app
        return app

    def direct_text(self, prompt: str) -> str:
        """What the SDK gets straight from the upstream for `prompt` (no service between)."""
        with OpenAI(base_url=self.upstream.base_url, api_key=self.api_key) as client:
            completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
        return completion.choices[0].message.content or ""


class Binder(Protocol):
    """The `bind` fixture's signature."""

    def __call__(self, name: str, *, latency: float = 0.02, threads: int | None = None) -> Bound: ...


@pytest.fixture
def bind(monkeypatch: pytest.MonkeyPatch) -> Iterator[Binder]:
    """``bind(name, latency=0.02, threads=None)``: start an upstream requiring a random key,
    point the SDK's variables (and ``THREADS``) at it, and import (or reload)
    ``support.apps.<name>``. The example modules read the environment, and the broken ones
    create their client at import time, so each call gets a module bound to its own upstream;
    every upstream stops and every variable is restored when the test ends."""
    with contextlib.ExitStack() as stack:

        def load(name: str, *, latency: float = 0.02, threads: int | None = None) -> Bound:
            key = "test-" + secrets.token_urlsafe(16)
            upstream = stack.enter_context(upstream_in_thread(latency=latency, api_key=key))
            monkeypatch.setenv("OPENAI_API_KEY", key)
            monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
            monkeypatch.setenv("OPENAI_MODEL", MODEL)
            if threads is None:
                monkeypatch.delenv("THREADS", raising=False)
            else:
                monkeypatch.setenv("THREADS", str(threads))
            module = importlib.reload(importlib.import_module(f"support.apps.{name}"))
            return Bound(module, upstream, key)

        yield load
