"""Files in, findings out: Python files, notebooks, directories, ``# noqa``.

A notebook's code cells are joined into one module (a name defined in cell 2 is known
in cell 5) and findings are mapped back to ``cell N`` (1-based, counting code cells only,
as ruff does) and the line within the cell. IPython syntax (``%magic``, ``!shell``,
``x = !cmd``, ``obj?``) is blanked out only when a cell does not parse as Python;
cells starting with a ``%%`` cell magic are skipped.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .checks import check_tree
from .project import SKIP_DIRS, Project

__all__ = ["Finding", "SourceError", "check_file", "check_source", "iter_files"]

_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_IPYTHON_LINE = re.compile(r"^\s*([%!]|[\w.]+\?\??\s*$|\?)|^\s*[\w.,\s]+=\s*[%!]")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    code: str
    message: str
    cell: int | None = None  # notebooks: 1-based index among code cells

    def location(self) -> str:
        cell = f"cell {self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{cell}{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.location()}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class SourceError(Exception):
    """A file that cannot be read or parsed (reported, and the exit code becomes 2)."""


def _parse(text: str, path: str) -> ast.Module:
    tree = compile(text, path, "exec", _FLAGS, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    return tree


def _suppressed(line_text: str, code: str) -> bool:
    match = _NOQA.search(line_text)
    if match is None:
        return False
    codes = match.group("codes")
    return codes is None or code.upper() in {c.upper() for c in re.split(r"[\s,]+", codes) if c}


def check_source(text: str, path: str = "<string>", project: Project | None = None) -> list[Finding]:
    """Findings for Python source `text` (raises `SourceError` when it does not parse);
    with a `project`, what `text` imports from the project's other files resolves too."""
    try:
        tree = _parse(text, path)
    except (SyntaxError, ValueError) as exc:
        raise SourceError(f"{path}: cannot parse: {_syntax_message(exc)}") from None
    lines = text.splitlines()
    return [
        Finding(path, i.line, i.column, i.code, i.message)
        for i in check_tree(tree, project=project, path=path)
        if not (0 < i.line <= len(lines) and _suppressed(lines[i.line - 1], i.code))
    ]


def _syntax_message(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    return str(exc)


def _cell_source(cell: dict[str, object]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _python_lines(source: str, path: str) -> list[str] | None:
    """The cell as parseable Python lines (IPython syntax blanked), or None to skip it."""
    if source.lstrip().startswith("%%"):
        return None
    lines = source.splitlines()
    try:
        _parse(source, path)
        return lines
    except (SyntaxError, ValueError):
        pass
    cleaned = [
        (m.group(0)[: len(line) - len(line.lstrip())] + "pass") if (m := _IPYTHON_LINE.match(line)) else line
        for line in lines
    ]
    return cleaned


def check_notebook(text: str, path: str, project: Project | None = None) -> tuple[list[Finding], list[str]]:
    """Findings for a notebook's JSON `text`, and per-cell parse errors."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
        assert isinstance(cells, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise SourceError(f"{path}: not a notebook (invalid JSON or no cells)") from None
    joined: list[str] = []
    origin: list[tuple[int, int]] = []  # joined line -> (code cell number, line in cell)
    errors: list[str] = []
    number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        lines = _python_lines(_cell_source(cell), path)
        if lines is None:
            continue
        try:
            _parse("\n".join(lines), path)
        except (SyntaxError, ValueError) as exc:
            errors.append(f"{path}:cell {number}: cannot parse: {_syntax_message(exc)}")
            continue
        joined.extend(lines)
        origin.extend((number, i + 1) for i in range(len(lines)))
    try:
        tree = _parse("\n".join(joined), path)
    except (SyntaxError, ValueError) as exc:
        raise SourceError(f"{path}: cannot parse the joined cells: {_syntax_message(exc)}") from None
    findings = []
    for i in check_tree(tree, notebook=True, project=project, path=path):
        if not 0 < i.line <= len(joined) or _suppressed(joined[i.line - 1], i.code):
            continue
        cell_no, line = origin[i.line - 1]
        findings.append(Finding(path, line, i.column, i.code, i.message, cell=cell_no))
    return findings, errors


def check_file(path: str | os.PathLike[str], project: Project | None = None) -> tuple[list[Finding], list[str]]:
    """Findings for one file (``.ipynb`` as a notebook, anything else as Python) and errors;
    `project`: the files it may import from (see `support.doctor.project`)."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{name}: cannot read: {getattr(exc, 'strerror', None) or exc}"]
    try:
        if name.endswith(".ipynb"):
            return check_notebook(text, name, project)
        return check_source(text, name, project), []
    except SourceError as exc:
        return [], [str(exc)]


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Files to check: given files as they are, directories walked for .py and .ipynb."""
    for raw in paths:
        path = os.fspath(raw)
        if not os.path.isdir(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
            for name in sorted(files):
                if name.endswith((".py", ".ipynb")) and not name.startswith("."):
                    yield os.path.join(root, name)
