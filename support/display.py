"""Show code in a notebook: the code shown is the code that runs."""

from __future__ import annotations

import inspect
from typing import Any

from IPython.display import Code


class _Source(Code):
    def _repr_latex_(self) -> None:  # HTML and plain text are enough; skip the LaTeX copy
        return None


def source(obj: Any) -> Code:
    """The source of a module, class or function, highlighted (plain text in a terminal)."""
    return _Source(inspect.getsource(obj), language="python")  # type: ignore[no-untyped-call]  # IPython: untyped __init__
