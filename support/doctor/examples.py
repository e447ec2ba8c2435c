"""The example services in ``support/apps`` and the notebooks that run them, read from the notebooks.

Notebook 09 runs the doctor on ``support/apps``; this says where each module comes from,
so that its prose never has to count them. A notebook *runs* a module when one of its
code cells, or a ``support`` module those cells import, refers to it:
``from support.apps import x``, ``support.apps.x``, ``target.import_service("x")``, or the
name as a string literal (``SERVICES = ("x", ...)``, the benchmark's ``Pattern("x", ...)``).
Markdown does not count: prose mentions what it does not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import nbformat

from ..tables import text_table

__all__ = ["by_module", "example_modules", "notebooks_running", "summary", "table"]

_NOT_SERVICES = {"__init__", "schemas"}  # the package and the request/reply models the services share
_IMPORT = re.compile(r"^\s*(?:from|import)\s+(support(?:\.\w+)*)", re.MULTILINE)


def example_modules(apps: Path) -> list[str]:
    """The services in the `apps` folder: its modules and packages, without the shared helpers."""
    names = {p.stem for p in apps.glob("*.py")} | {p.parent.name for p in apps.glob("*/__init__.py")}
    return sorted(names - _NOT_SERVICES)


def _named_in(code: str, modules: Iterable[str]) -> set[str]:
    found = set()
    for name in modules:
        patterns = (
            rf"\bsupport\.apps\.{name}\b",
            rf"\bfrom support\.apps import [^\n]*\b{name}\b",
            # import_service("x"), a tuple of names, Pattern("x", ...); not `"x" in text`
            rf"[(\[,{{=]\s*[\"']{name}[\"']",
        )
        if any(re.search(p, code) for p in patterns):
            found.add(name)
    return found


def _imported_sources(code: str, root: Path) -> str:
    """The text of the project's ``support`` modules that `code` imports (one level deep)."""
    texts = []
    for dotted in set(_IMPORT.findall(code)):
        base = root.joinpath(*dotted.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def notebooks_running(notebooks: Path, modules: Iterable[str], root: Path | None = None) -> dict[str, list[str]]:
    """Each module -> the notebooks (by number, in order) that run it; `root` holds ``support``
    (default: the notebooks' parent folder)."""
    modules, root = list(modules), root or notebooks.parent
    running: dict[str, list[str]] = {name: [] for name in modules}
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        for name in _named_in(code + "\n" + _imported_sources(code, root), modules):
            running[name].append(path.name[:2])
    return running


def table(running: Mapping[str, list[str]], findings: Mapping[str, list[str]]) -> str:
    """One line per module: the notebooks that run it and the doctor's codes for it."""
    rows = [["module", "run in notebooks", "doctor"]]
    rows += [
        [name, ", ".join(nbs) or "-", ", ".join(findings.get(name, [])) or "clean"] for name, nbs in running.items()
    ]
    return text_table(rows, numeric_from=3, rule=True)


def by_module(findings: Iterable[Mapping[str, object]], apps: str = "support/apps") -> dict[str, list[str]]:
    """The doctor's ``--format json`` findings under `apps` -> module (a package counts as one) -> codes."""
    codes: dict[str, list[str]] = {}
    for finding in findings:
        parts = Path(str(finding["path"])).relative_to(apps).parts
        codes.setdefault(parts[0].removesuffix(".py"), []).append(str(finding["code"]))
    return codes


def summary(running: Mapping[str, list[str]], findings: Mapping[str, list[str]]) -> str:
    """What the table says, counted: the flagged modules and where each is first run, and the fixes."""
    flagged = [name for name in running if findings.get(name)]
    fixes = [name for name in running if name.startswith("fix_")]
    first = ", ".join(f"{name} ({running[name][0] if running[name] else 'no notebook'})" for name in flagged)
    return (
        f"{len(flagged)} modules flagged, each first run in the notebook named: {first}; "
        f"{len(fixes)} fix_* modules, {sum(bool(findings.get(name)) for name in fixes)} of them flagged"
    )
