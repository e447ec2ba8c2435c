"""The doctor: find OpenAI SDK misuse in async Python code, statically and at run time.

Static (``python -m support.doctor PATH...``): an AST checker for Python files and
notebooks with rules OA101-OA112 (see `rules.RULES`), ruff-style output, ``--format
json``, ``--select``/``--ignore``, ``# noqa: OA102``. It follows import aliases, module
globals, ``self.client``, ``app.state.X``, annotated parameters (``Annotated[OpenAI,
Depends(...)]``) and ``with_options(...)`` chains, and flags only what it is sure of.

Runtime (`support.doctor.runtime`): a watchdog that reports event-loop blocking with
the blocking stack, as an async context manager, a pytest fixture or ASGI middleware.
"""

from .cli import main, run
from .rules import RULES, Rule
from .sources import Finding, SourceError, check_file, check_source, iter_files

__all__ = ["RULES", "Finding", "Rule", "SourceError", "check_file", "check_source", "iter_files", "main", "run"]
