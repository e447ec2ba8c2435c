"""support.devtools.readme_figures: the README's copy of notebook 08's committed run stays true."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from support.devtools import readme_figures
from support.devtools.readme_figures import BEGIN, END, FiguresError, figures_block, main, with_figures


def test_the_readme_shows_the_committed_run() -> None:
    assert main(["--check"]) == 0, "run: python -m support.devtools.readme_figures"


def executed(table: str, verdict: str) -> nbformat.NotebookNode:
    cells = [
        new_code_cell(readme_figures.TABLE_CELL, outputs=[new_output("stream", name="stdout", text=table)]),
        new_code_cell(readme_figures.VERDICT_CELL + "\n    ...", outputs=[new_output("stream", text=verdict)]),
    ]
    return new_notebook(cells=cells)


def test_the_block_holds_the_conditions_the_table_and_the_verdict() -> None:
    block = figures_block(executed("machine: x\ncontended: no\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "met\n"))
    assert block.startswith(BEGIN) and block.endswith(END)
    assert "```text\nmachine: x\ncontended: no\n```\n\n| a | b |" in block and "```text\nmet\n```" in block


def test_an_unexecuted_notebook_and_missing_markers_are_errors() -> None:
    with pytest.raises(FiguresError, match="has no printed output: execute the notebook"):
        figures_block(executed("", "met"))
    with pytest.raises(FiguresError, match="no code cell starts with"):
        figures_block(new_notebook(cells=[]))
    with pytest.raises(FiguresError, match="must hold the markers once each, in order"):
        with_figures(f"{END}\n{BEGIN}\n", "x")
    assert with_figures(f"head\n{BEGIN}\nold\n{END}\ntail\n", "new") == "head\nnew\ntail\n"


def test_check_fails_on_an_outdated_copy_and_a_refresh_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme, notebook = tmp_path / "README.md", tmp_path / "08.ipynb"
    readme.write_text(f"# x\n{BEGIN}\nstale\n{END}\n")
    nbformat.write(executed("machine: x\n\n| t |", "verdict"), notebook)
    monkeypatch.setattr(readme_figures, "README", readme)
    monkeypatch.setattr(readme_figures, "NOTEBOOK", notebook)
    assert main(["--check"]) == 1 and "differ from 08.ipynb" in capsys.readouterr().out
    assert main([]) == 0 and "stale" not in readme.read_text()
    assert main(["--check"]) == 0
    readme.write_text("no markers\n")
    assert main([]) == 2 and "must hold the markers" in capsys.readouterr().err
