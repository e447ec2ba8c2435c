"""``python -m support.devtools.readme_figures [--check]``: the README's benchmark figures, copied
from notebook 08's committed outputs.

The README shows what the committed run measured, with its conditions (the machine, the
core placement, whether any window was contended) and its verdict, and never a number
typed by hand: this tool copies the executed cells' text between two markers in
README.md. ``--check`` (run by the tests) fails when the README no longer matches the
committed notebook, so re-executing notebook 08 without refreshing the README fails CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

PROJECT_ROOT = Path(__file__).resolve().parents[2]
README = PROJECT_ROOT / "README.md"
NOTEBOOK = PROJECT_ROOT / "notebooks" / "08_benchmark.ipynb"
BEGIN = "<!-- figures from notebooks/08_benchmark.ipynb: begin (python -m support.devtools.readme_figures) -->"
END = "<!-- figures from notebooks/08_benchmark.ipynb: end -->"
# The cells whose output the README shows, found by how their source starts.
TABLE_CELL = 'print(files["table"].read_text())'
VERDICT_CELL = "if result.contended:"


class FiguresError(Exception):
    """The notebook or the README is not as this tool expects."""


def cell_text(notebook: nbformat.NotebookNode, starts_with: str) -> str:
    """The text a code cell printed, the cell found by the start of its source."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith(starts_with):
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            if not text.strip():
                raise FiguresError(f"the cell starting {starts_with!r} has no printed output: execute the notebook")
            return text.strip("\n")
    raise FiguresError(f"no code cell starts with {starts_with!r} in {NOTEBOOK.name}")


def figures_block(notebook: nbformat.NotebookNode) -> str:
    """The README's block: the run's conditions and table as printed, then the verdict."""
    conditions, _, rest = cell_text(notebook, TABLE_CELL).partition("\n\n")
    return "\n".join(
        [
            BEGIN,
            "",
            "```text",
            conditions,
            "```",
            "",
            rest,
            "",
            "```text",
            cell_text(notebook, VERDICT_CELL),
            "```",
            "",
            END,
        ]
    )


def with_figures(readme: str, block: str) -> str:
    """`readme` with the text between the markers (markers included) replaced by `block`."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise FiguresError(f"README.md must hold the markers once each, in order:\n{BEGIN}\n{END}")
    head, _, tail = readme.partition(BEGIN)
    return head + block + tail.partition(END)[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.devtools.readme_figures", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the README is out of date; change nothing")
    args = parser.parse_args(argv)
    try:
        readme = README.read_text(encoding="utf-8")
        updated = with_figures(readme, figures_block(nbformat.read(NOTEBOOK, as_version=4)))
    except (FiguresError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if updated == readme:
        return 0
    if args.check:
        print(f"{parser.prog}: README.md's benchmark figures differ from {NOTEBOOK.name}: run it without --check")
        return 1
    README.write_text(updated, encoding="utf-8")
    print(f"{parser.prog}: README.md updated from {NOTEBOOK.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
