"""The committed notebooks' shape: one parameters cell, the python3 kernel, small code cells, stored
outputs, errors only where a cell is tagged to raise, and only the standard cell tags."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINES = 20  # harness belongs in support/: a reader sees narrative, a call, and its output
STANDARD_TAGS = {
    "parameters",
    "raises-exception",
    "nbval-ignore-output",
    "skip-execution",
    "nbval-skip",
    "remove-input",
}


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_and_the_python3_kernel(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_code_cell_is_over_the_limit(path: Path) -> None:
    long = {i: n for i, c in enumerate(_code_cells(path)) if (n := len(c.source.splitlines())) > MAX_CODE_LINES}
    assert not long, f"code cells over {MAX_CODE_LINES} lines (index: lines): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_with_errors_only_where_tagged(path: Path) -> None:
    cells = _code_cells(path)
    assert any(c.outputs for c in cells), "no stored outputs: strict nbval would pass vacuously"
    for i, cell in enumerate(cells):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors or "raises-exception" in cell.metadata.get("tags", []), f"code cell {i}: untagged error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_standard_tags(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    used = {tag for cell in nb.cells for tag in cell.metadata.get("tags", [])}
    assert used <= STANDARD_TAGS, used - STANDARD_TAGS


# An absolute path on this machine or another: a home, a temp dir, a virtualenv or the interpreter.
MACHINE_PATH = re.compile(r"(?<![\w/.:~-])(?:~|/(?:home|root|tmp|work|usr|opt|srv|var|private|Users))/[^\s'\"]+")


def _output_texts(cell: nbformat.NotebookNode) -> list[str]:
    texts: list[str] = []
    for output in cell.outputs:
        texts += [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", [])]
        texts += [v for k, v in output.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_path_in_outputs(path: Path) -> None:
    """Tracebacks show <site-packages>/..., <stdlib>/... and project-relative paths (nbnormalize)."""
    found = {
        m.group() for cell in _code_cells(path) for text in _output_texts(cell) for m in MACHINE_PATH.finditer(text)
    }
    assert not found, sorted(found)[:5]
