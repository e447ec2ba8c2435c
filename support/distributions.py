"""What installed packages say about themselves: who publishes them, which Pythons they list.

"Who maintains this, and is it still current?" is a fair question before depending on a
package such as ``nest_asyncio``. Notebook 05 answers it from the installed metadata
(nothing is fetched), so the answer is re-checked every time the notebook runs:

- `distribution`: name, version, author, home page and newest Python a package lists;
- `requirements`: what a package requires, optionally only names with a given prefix;
- `functions_mentioning`: which functions of a module contain a piece of code.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from dataclasses import dataclass
from types import ModuleType

__all__ = ["Distribution", "distribution", "functions_mentioning", "requirements"]

_PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3)\.(\d+)")


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
