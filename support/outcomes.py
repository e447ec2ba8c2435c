"""What a call did, as one line: a status code, a result, or the exception and where it came from.

A notebook that demonstrates a failure wants to print it and assert it, and to carry on:
``RuntimeError: Event loop is closed`` on the second request is the lesson, not a reason
for the cell to stop. `outcome` runs the call and describes whichever way it ended.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["outcome"]


def outcome(call: Callable[[], object], *, where: bool = False) -> str:
    """``call()``'s outcome as one line.

    A response (anything with an integer ``status_code``) gives its status code, any
    other result ``str(result)``, and an exception ``"Type: message"``. With `where`, an
    exception also names the two innermost frames it was raised in (``(raised in
    base_events.py:call_soon -> base_events.py:_check_closed)``), which tells an error
    raised by asyncio from one raised by the SDK or the app.
    """
    try:
        result = call()
    except Exception as exc:
        line = f"{type(exc).__name__}: {exc}"
        if where:
            frames = traceback.extract_tb(exc.__traceback__)[-2:]
            line += "  (raised in " + " -> ".join(f"{Path(f.filename).name}:{f.name}" for f in frames) + ")"
        return line
    status = getattr(result, "status_code", None)
    return str(status) if isinstance(status, int) else str(result)
