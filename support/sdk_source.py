"""Facts read from an installed package's own source, to check what quick answers claim.

A quick-fix page can name a class or quote a message; whether the SDK has such a thing
is a question the installed files answer. `defined_in` says which file a function
really lives in (the SDK wraps its ``create`` methods), `search_package` reads every
``.py`` file of a package for a name and for the classes whose names match a pattern.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["PackageSearch", "defined_in", "search_package"]


@dataclass(frozen=True)
class PackageSearch:
    """What `search_package` found."""

    files: int  # .py files read
    mentions: list[str]  # files (relative to the package's parent folder) containing the text
    classes: list[str]  # class names matching the pattern, sorted, once each


def _root(package: ModuleType) -> Path:
    file = getattr(package, "__file__", None)  # a namespace or built-in module has none
    if file is None:
        raise ValueError(f"{package.__name__} has no source files")
    return Path(file).parent


def defined_in(function: Callable[..., Any]) -> str:
    """The file that defines `function` (a bound method's function included), relative to
    the folder its top-level package is installed in, e.g. ``openai/_utils/_utils.py``."""
    source_file = inspect.getsourcefile(function)
    if source_file is None:
        raise ValueError(f"no source file for {function!r}")
    top = importlib.import_module(function.__module__.partition(".")[0])
    return Path(source_file).relative_to(_root(top).parent).as_posix()


def search_package(package: ModuleType, text: str, *, class_pattern: str) -> PackageSearch:
    """Read every ``.py`` file of `package`: which ones contain `text`, and which
    ``class`` statements define a name that fully matches `class_pattern` (a regex)."""
    root = _root(package)
    sources = {path: path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.py"))}
    definition = re.compile(rf"^class ({class_pattern})\b", re.MULTILINE)
    return PackageSearch(
        files=len(sources),
        mentions=[path.relative_to(root.parent).as_posix() for path, source in sources.items() if text in source],
        classes=sorted({name for source in sources.values() for name in definition.findall(source)}),
    )
