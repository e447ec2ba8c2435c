"""The files of one project, so a module can see what it imports from the others.

Real services build the client in one module (``clients.py``, a lifespan in ``main.py``)
and call it from another (``routers/chat.py``). Checked alone, the calling module holds
no evidence of what the name is, and the doctor stays silent. A `Project` is every
Python file under one root directory (the directory the doctor runs from), parsed on
demand, so ``from app.clients import client`` resolves to what ``app/clients.py`` binds.

Module names resolve the way a service started from any folder between the importing
file and the root would import them: ``app.clients`` is ``<folder>/app/clients.py`` (or
``.../__init__.py``) for the nearest such folder. The standard library and the packages
the rules know by name (``openai``, ``fastapi``, ...) are never looked up here, so a
project file called ``openai.py`` does not shadow the SDK.
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

if TYPE_CHECKING:
    from .resolve import Module

__all__ = ["Project"]

T = TypeVar("T")

SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules", "venv", "site-packages"})
# Packages whose names the rules match themselves (never a project file).
KNOWN_PACKAGES = frozenset(
    {
        "openai",
        "fastapi",
        "starlette",
        "httpx",
        "tenacity",
        "backoff",
        "langsmith",
        "langfuse",
        "azure",
        "typing_extensions",
        "anyio",
        "trio",
        "pydantic",
        "sse_starlette",
    }
)
MAX_FILES = 5000  # a bound on what one run parses (a vendored tree is skipped above)


class Project:
    """The Python files under `root`, parsed once each, on first use."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._modules: dict[Path, Module | None] = {}
        self._all: list[Path] | None = None
        self._derived: dict[Callable[[Project], object], object] = {}

    def once(self, compute: Callable[[Project], T]) -> T:
        """``compute(self)``, computed on first use and kept (a fact about the whole project)."""
        if compute not in self._derived:
            self._derived[compute] = compute(self)
        return cast(T, self._derived[compute])

    def module(self, path: str | Path) -> Module | None:
        """The parsed module at `path` (None when it does not parse)."""
        from .resolve import Module  # resolve imports nothing from here at import time

        key = Path(path).resolve()
        if key not in self._modules:
            self._modules[key] = None  # an import cycle sees "unknown" while this one parses
            try:
                with warnings.catch_warnings():  # another file's invalid escapes are not ours to report
                    warnings.simplefilter("ignore")
                    tree = ast.parse(key.read_text(encoding="utf-8"), str(key))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                return None
            self._modules[key] = Module(tree, project=self, path=key)
        return self._modules[key]

    def add(self, path: str | Path, module: Module) -> None:
        """Register a module parsed elsewhere (the file being checked) under its path."""
        self._modules.setdefault(Path(path).resolve(), module)

    def files(self) -> list[Path]:
        """Every ``.py`` file under the root (hidden and build folders skipped), sorted."""
        if self._all is None:
            found: list[Path] = []
            stack = [self.root]
            while stack and len(found) < MAX_FILES:
                folder = stack.pop()
                try:
                    entries = sorted(folder.iterdir())
                except OSError:
                    continue
                for entry in entries:
                    if entry.is_dir():
                        if not entry.name.startswith(".") and entry.name not in SKIP_DIRS:
                            stack.append(entry)
                    elif entry.suffix == ".py" and not entry.name.startswith("."):
                        found.append(entry)
            self._all = sorted(found)
        return self._all

    def modules(self) -> Iterator[Module]:
        """Every module of the project that parses."""
        for path in self.files():
            module = self.module(path)
            if module is not None:
                yield module

    def locate(self, importer: Path, qualname: str) -> tuple[Module, str] | None:
        """Where ``qualname`` (``app.clients.client``) is bound: a project module and the
        name in it. Leading dots make it relative to `importer`'s package, as in
        ``from .clients import client`` (``.clients.client``)."""
        level = len(qualname) - len(qualname.lstrip("."))
        head, _, name = qualname[level:].rpartition(".")  # `a.b.c.chat` is not a name of a.b.c
        found = self.module_file(importer, "." * level + head) if level or head else None
        module = self.module(found) if found is not None else None
        return (module, name) if module is not None and name else None

    def module_file(self, importer: Path, dotted: str) -> Path | None:
        """The project file a module name imported from `importer` is (``app.clients`` is
        ``app/clients.py`` or ``app/clients/__init__.py``; ``.`` the importer's package)."""
        level = len(dotted) - len(dotted.lstrip("."))
        parts = [p for p in dotted[level:].split(".") if p]
        if not level and (not parts or parts[0] in KNOWN_PACKAGES or parts[0] in sys.stdlib_module_names):
            return None  # not a project module, even where a project file is named like the package
        bases = [self._package_of(importer, level)] if level else self._folders_up(importer)
        for base in bases:
            if base is None:
                continue
            module_path = base.joinpath(*parts)
            files = [module_path / "__init__.py"]
            if parts:
                files.insert(0, module_path.with_suffix(".py"))
            for candidate in files:
                if candidate.is_file() and self._inside(candidate):
                    return candidate.resolve()
        return None

    def _folders_up(self, importer: Path) -> list[Path | None]:
        """The folders from `importer`'s own up to the root, nearest first."""
        folders: list[Path | None] = []
        folder = importer.resolve().parent
        while self._inside(folder):
            folders.append(folder)
            if folder == self.root:
                break
            folder = folder.parent
        return folders

    def _package_of(self, importer: Path, level: int) -> Path | None:
        folder = importer.resolve().parent
        for _ in range(level - 1):
            folder = folder.parent
        return folder if self._inside(folder) else None

    def _inside(self, path: Path) -> bool:
        return path == self.root or self.root in path.parents
