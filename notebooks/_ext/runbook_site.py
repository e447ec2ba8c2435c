"""Sphinx extension for the runbook's site: nothing here edits a notebook.

- Every notebook page gets a closing "Run it yourself" section: the ``support.devtools.nbrun``
  command with the parameters read from the notebook's ``parameters`` cell (and, when
  ``ci_parameters.yml`` sits next to it, the values ``make test`` uses).
- ``{notebook-output}`` copies a code cell's stored text output into a page (the index
  quotes notebook 04's measured table with it), so a page never restates a number by
  hand: it shows what the notebook printed when it was executed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, ClassVar

import nbformat
import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

COMMAND = ".venv/bin/python -m support.devtools.nbrun"


def notebook_parameters(notebook: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    """``(name, value source, comment)`` for each assignment in the cell tagged ``parameters``."""
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return []
    source = cells[0].source
    lines = source.splitlines()
    found = []
    for statement in ast.parse(source).body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            line = lines[statement.lineno - 1]
            comment = line.split("#", 1)[1].strip() if "#" in line[statement.value.end_col_offset :] else ""
            found.append((statement.targets[0].id, ast.get_source_segment(source, statement.value) or "", comment))
    return found


def _cli_value(value_source: str) -> str:
    """A parameter's default as ``-p NAME VALUE`` takes it (support.devtools.nbrun types it like papermill)."""
    value: Any = ast.literal_eval(value_source)
    text = str(value)
    return text if text and " " not in text else f"'{text}'"


def _run_it_yourself(name: str, parameters: list[tuple[str, str, str]], ci: dict[str, Any] | None) -> nodes.section:
    section = nodes.section(ids=["run-it-yourself"], names=["run it yourself"])
    section += nodes.title("", "Run it yourself")
    section += nodes.paragraph(
        "",
        "",
        nodes.Text(
            "This page shows the notebook's stored outputs, as validated. To execute it "
            "yourself, from the repository root after "
        ),
        nodes.literal("", "make install"),
        nodes.Text(" (each "),
        nodes.literal("", "-p"),
        nodes.Text(" overrides a default of the cell tagged "),
        nodes.literal("", "parameters"),
        nodes.Text("):"),
    )
    flags = [f"-p {p} {_cli_value(v)}" for p, v, _ in parameters if ast.literal_eval(v) is not None]
    lines = [f"{COMMAND} notebooks/{name} --output-dir build/mine"]
    lines += ["    " + " ".join(flags[i : i + 3]) for i in range(0, len(flags), 3)]
    command = " \\\n".join(lines)
    section += nodes.literal_block(command, command, language="bash")
    if parameters:
        items = nodes.bullet_list()
        for param, value, comment in parameters:
            paragraph = nodes.paragraph("", "", nodes.literal("", f"{param} = {value}"))
            if comment:
                paragraph += nodes.Text(f": {comment}")
            items += nodes.list_item("", paragraph)
        section += items
    if ci:
        section += nodes.paragraph(
            "",
            "",
            nodes.literal("", "make test"),
            nodes.Text(" also runs it with each of these parameter sets (notebooks/ci_parameters.yml):"),
        )
        sets = nodes.bullet_list()
        for set_name, values in ci.items():
            text = " ".join(f"{k}={v}" for k, v in values.items())
            sets += nodes.list_item(
                "", nodes.paragraph("", "", nodes.strong("", set_name), nodes.Text(": "), nodes.literal("", text))
            )
        section += sets
    section += nodes.paragraph(
        "",
        "",
        nodes.Text("The executed copy lands in build/mine/. To run it against a real server instead, add "),
        nodes.literal("", "-p BASE_URL https://api.openai.com/v1 -p API_KEY_ENV OPENAI_API_KEY"),
        nodes.Text(": the key stays in that environment variable, never in a parameter."),
    )
    return section


def add_run_it_yourself(app: Sphinx, doctree: nodes.document) -> None:
    source = Path(app.env.doc2path(app.env.docname))
    if source.suffix != ".ipynb":
        return
    notebook = nbformat.read(source, as_version=4)
    ci_file = source.parent / "ci_parameters.yml"
    ci = (yaml.safe_load(ci_file.read_text()) or {}).get(source.name) if ci_file.is_file() else None
    sections = [n for n in doctree.children if isinstance(n, nodes.section)]
    if not sections:
        raise ExtensionError(f"{source.name}: no top-level section to append 'Run it yourself' to")
    sections[-1] += _run_it_yourself(source.name, notebook_parameters(notebook), ci)


class NotebookOutput(SphinxDirective):
    """Copy the text output of the first code cell whose output contains ``:contains:``;
    or, with ``:figure:``, the PNG output of the first code cell whose source contains it."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "contains": directives.unchanged,
        "figure": directives.unchanged,
        "caption": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        relative = self.arguments[0]
        path = Path(self.env.doc2path(self.env.docname)).parent / relative
        self.env.note_dependency(str(path))
        notebook = nbformat.read(path, as_version=4)
        if "figure" in self.options:
            return self._figure(notebook, relative, self.options["figure"])
        wanted = self.options["contains"]
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            text = "".join(
                o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                for o in cell.outputs
            )
            if wanted in text:
                block = nodes.literal_block(text.rstrip(), text.rstrip(), language="text")
                if "caption" not in self.options:
                    return [block]
                container = nodes.container("", literal_block=True, classes=["literal-block-wrapper"])
                container += nodes.caption("", self.options["caption"])
                container += block
                return [container]
        raise self.error(f"{relative}: no code cell output contains {wanted!r}")

    def _figure(self, notebook: nbformat.NotebookNode, relative: str, wanted: str) -> list[nodes.Node]:
        for cell in notebook.cells:
            if cell.cell_type != "code" or wanted not in cell.source:
                continue
            for output in cell.outputs:
                png = output.get("data", {}).get("image/png")
                if png:  # inline, so the page loads nothing from anywhere else
                    alt = self.options.get("caption", relative)
                    html = f'<figure><img src="data:image/png;base64,{png.strip()}" alt="{alt}" style="max-width:100%">'
                    html += f"<figcaption>{alt}</figcaption></figure>" if "caption" in self.options else "</figure>"
                    return [nodes.raw("", html, format="html")]
        raise self.error(f"{relative}: no code cell with {wanted!r} in its source has a PNG output")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", add_run_it_yourself, priority=400)  # before the TOC collector (500)
    app.add_directive("notebook-output", NotebookOutput)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
