"""Deploying a service: uvicorn ``--workers N`` and gunicorn with uvicorn workers, for real.

Notebook 14 starts the template (``support/apps/hardened``) and a few small services
that show a deployment pitfall each, as the processes production runs: a master and N
workers on a loopback port, stopped with signals. What it measures lives here:

- `servers`: start uvicorn or gunicorn as a child process, wait until every worker
  answers, list the workers, stop with a signal and time the exit, always reap;
- `memory`: each process's memory (USS and PSS), as a table;
- `preload`: a sync client that checked its key at import, under ``--preload``, and the fixes;
- `blocking`: a route that blocks its loop against one that awaits (gunicorn's worker timeout);
- `journal`: what the upstream's journal says about the processes (connections, calls in flight).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from IPython.display import Code

from ..display import _Source

__all__ = ["file_source", "module_source"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def module_source(name: str) -> Code:
    """The source of module `name`, read from its file without importing it: some of these
    modules do their damage at import (a key check with no key set)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    return _Source(Path(spec.origin).read_text(), language="python")  # type: ignore[no-untyped-call]


def file_source(path: str) -> Code:
    """The source of the project file at `path` (relative to the project's root), such as
    a configuration file that is not a module: ``support/apps/hardened/gunicorn.conf.py``."""
    return _Source((PROJECT_ROOT / path).read_text(), language="python")  # type: ignore[no-untyped-call]
