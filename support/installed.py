"""What installed packages say about themselves and what their own files hold.

Quick answers name classes, quote messages and call packages "unmaintained"; the
installed files and metadata answer each of those, and are re-read every time a
notebook runs (nothing is fetched):

- `defined_in`: which file a function really lives in (the SDK wraps its ``create`` methods);
- `search_package`: which of a package's ``.py`` files contain a text, which classes match a pattern;
- `functions_mentioning`: which functions of a module contain a piece of code;
- `source_lines`: the lines of a function that contain a piece of code, with their line numbers;
- `distribution`, `requirements`: name, version, author, home page, newest Python listed, requirements.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "Distribution",
    "PackageSearch",
    "defined_in",
    "distribution",
    "functions_mentioning",
    "requirements",
    "search_package",
    "source_lines",
]

_PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3)\.(\d+)")


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


@dataclass(frozen=True)
class Distribution:
    """An installed distribution, as its metadata describes it."""

    name: str
    version: str
    author: str | None
    home_page: str | None
    newest_python: tuple[int, int] | None  # the newest "Python :: 3.x" classifier; None if it lists none

    def __str__(self) -> str:
        newest = ".".join(map(str, self.newest_python)) if self.newest_python else "none listed"
        return (
            f"{self.name} {self.version}: author {self.author}, home page {self.home_page}, "
            f"classifiers up to Python {newest}"
        )


def _field(meta: importlib.metadata.PackageMetadata, name: str) -> str | None:
    """A metadata field that may be absent (the protocol has no ``get``)."""
    values = meta.get_all(name)
    return str(values[0]) if values else None


def distribution(name: str) -> Distribution:
    """The installed distribution `name` (raises `importlib.metadata.PackageNotFoundError`)."""
    meta = importlib.metadata.metadata(name)
    versions = [
        (int(m.group(1)), int(m.group(2)))
        for classifier in meta.get_all("Classifier") or []
        if (m := _PYTHON_CLASSIFIER.fullmatch(classifier))
    ]
    return Distribution(
        name=meta["Name"],
        version=meta["Version"],
        author=_field(meta, "Author"),
        home_page=_field(meta, "Home-page"),
        newest_python=max(versions) if versions else None,
    )


def requirements(name: str, prefix: str = "") -> list[str]:
    """The requirement strings of distribution `name` that start with `prefix`."""
    return [r for r in importlib.metadata.requires(name) or [] if r.startswith(prefix)]


def functions_mentioning(module: ModuleType, code: str) -> list[str]:
    """The names of `module`'s functions whose source contains `code`, sorted."""
    return sorted(
        name
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and code in inspect.getsource(function)
    )


def source_lines(function: Callable[..., Any], *fragments: str) -> list[tuple[int, str]]:
    """The lines of `function`'s source that contain any of `fragments`, in order, each
    with its line number in the file that defines it (the file `defined_in` names)."""
    if not fragments:
        raise ValueError("give at least one fragment to look for")
    lines, first = inspect.getsourcelines(function)
    return [(first + i, line.rstrip("\n")) for i, line in enumerate(lines) if any(f in line for f in fragments)]
