"""Keep committed notebooks diff-friendly: outputs and execution counts stay, volatile metadata goes.

nbdev-style gate: running the normalizer on committed notebooks must be a no-op, so CI runs
``python -m support.devtools.nbnormalize --check notebooks/*.ipynb`` and fails if any file would change.
Stripping is nbstripout's ``strip_output`` with ``--keep-output --keep-count --keep-id`` (cell ids
stay as they are: nbstripout would otherwise renumber them "0", "1", ..., churning every cell
after an inserted one). The file is written with nbformat (canonical 1-space JSON).

The one deviation from "strip it" is ``metadata.kernelspec.display_name``: the nbformat 4 schema
requires it, so it is pinned (with the name, which must be ``python3``) instead of removed.

Outputs keep their text, except machine paths (tracebacks, warnings): an installed package's
file becomes ``<site-packages>/openai/_base_client.py``, the standard library's
``<stdlib>/asyncio/runners.py``, and the project's own files a path relative to the project
(``support/apps/silent_blocking.py``). `MACHINE_PATHS` holds the rules; strict nbval applies
the same rules (tests/nbval_sanitize.cfg) to a fresh run before comparing.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import nbformat
from nbstripout import strip_output

__all__ = [
    "EXTRA_KEYS",
    "KERNELSPEC",
    "MACHINE_PATHS",
    "is_normalized",
    "kernelspec_problem",
    "main",
    "normalize",
    "normalized_text",
    "without_machine_paths",
]

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

EXTRA_KEYS = [
    # nbstripout's CLI defaults (its Python API has none)
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
    # papermill/nbclient run records, the Python patch version, VS Code's interpreter hash
    "metadata.papermill",
    "cell.metadata.papermill",
    "metadata.language_info.version",
    "metadata.vscode",
]


# Where a machine path starts: after an ANSI colour code, or after anything that cannot
# continue a word, a URL or another path (so "http://host:8000/v1/..." is left alone).
_START = r"(?:(?<=\x1b\[\dm)|(?<=\x1b\[\d\dm)|(?<=\x1b\[\d;\d\dm)|(?<![\w/.:~-]))"
# Then "~" or "/" and segments: no whitespace, quotes, brackets, colons or ESC.
_SEGMENTS = _START + r"""(?:~|/)[^\s'"()\[\]:\x1b]*?"""
MACHINE_PATHS: list[tuple[re.Pattern[str], str]] = [  # in this order: packages first, then the project
    (re.compile(_SEGMENTS + r"/site-packages/"), "<site-packages>/"),
    (re.compile(_SEGMENTS + r"/lib/python3\.\d+/"), "<stdlib>/"),
    (re.compile(_SEGMENTS + r"/(support|notebooks|tests)/"), r"\1/"),
]


def without_machine_paths(text: str) -> str:
    """`text` with every machine path replaced by its portable form (see the module docstring)."""
    for pattern, replacement in MACHINE_PATHS:
        text = pattern.sub(replacement, text)
    return text


def _portable_outputs(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = without_machine_paths(output["text"])
            if "traceback" in output:
                output["traceback"] = [without_machine_paths(line) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = without_machine_paths(output["evalue"])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = without_machine_paths(value)


def _read(text: str) -> nbformat.NotebookNode:
    with warnings.catch_warnings():  # a missing cell id gets one (once; it is then kept)
        warnings.simplefilter("ignore", nbformat.warnings.MissingIDFieldWarning)
        nb: nbformat.NotebookNode = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
        return nb


def kernelspec_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why the notebook's kernelspec is not the runbook's ``python3`` one (None if it is)."""
    name = nb.metadata.get("kernelspec", {}).get("name")
    return None if name == "python3" else f"kernelspec.name is {name!r}, must be 'python3'"


def normalized_text(text: str) -> str:
    """The canonical form of a notebook's JSON text."""
    nb = _read(text)
    strip_output(nb, keep_output=True, keep_count=True, keep_id=True, extra_keys=EXTRA_KEYS)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    _portable_outputs(nb)
    for cell in nb.cells:
        if cell.get("metadata", {}).get("tags") == []:  # papermill adds empty tags to every cell
            del cell.metadata["tags"]
    out: str = nbformat.writes(nb)
    return out if out.endswith("\n") else out + "\n"


def is_normalized(path: str | Path) -> bool:
    """True if ``normalize(path)`` would leave the file byte-for-byte unchanged."""
    text = Path(path).read_text(encoding="utf-8")
    return normalized_text(text) == text


def normalize(path: str | Path) -> bool:
    """Rewrite ``path`` in canonical form; True if the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = normalized_text(text)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8", newline="\n")
    return True


def main(argv: list[str] | None = None) -> int:
    """CLI: rewrite (or with --check only list) notebooks that are not normalized."""
    parser = argparse.ArgumentParser(
        prog="python -m support.devtools.nbnormalize",
        description="Strip volatile metadata from notebooks, keeping outputs, execution counts and "
        "cell ids. With --check nothing is written; exit 1 if any notebook would change.",
    )
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any file would change")
    args = parser.parse_args(argv)
    if missing := [nb for nb in args.notebooks if not Path(nb).is_file()]:
        parser.error(f"notebook not found: {', '.join(missing)}")
    dirty = []
    for notebook in args.notebooks:
        try:
            text = Path(notebook).read_text(encoding="utf-8")
            problem = kernelspec_problem(_read(text))
            changed = normalized_text(text) != text
        except (nbformat.reader.NotJSONError, nbformat.ValidationError, ValueError) as exc:
            parser.error(f"{notebook}: not a readable notebook: {' '.join(str(exc).split())[:200]}")
        if not changed:
            continue
        dirty.append(notebook)
        reason = f" ({problem})" if problem else ""
        if args.check:
            print(f"would change: {notebook}{reason}")
        else:
            normalize(notebook)
            print(f"normalized: {notebook}{reason}")
    if args.check and dirty:
        print(
            f"{parser.prog}: error: {len(dirty)} notebook(s) not normalized; run: {parser.prog} " + " ".join(dirty),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
