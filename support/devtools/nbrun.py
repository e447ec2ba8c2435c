"""Execute a notebook with parameters: papermill injects them, nbclient runs the cells.

Why not ``papermill.execute_notebook``? papermill 2.7 fails a run on *any* error output,
even in cells tagged ``raises-exception``, and the runbook teaches with such cells.
nbclient honours the tag, so papermill only parameterizes and nbclient executes.

    python -m support.devtools.nbrun notebooks/01_x.ipynb --output-dir build/notebooks -p LATENCY_S 0.05
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from traitlets.config import Config

__all__ = ["NotebookRunError", "check_parameters", "main", "parse_value", "run_notebook"]

# Words of a parameter name (split on "_", "-", "." and camelCase) that mark a credential.
# Whole words, not substrings, so that MAX_TOKENS or KEYWORDS stay usable.
_SECRET_WORDS = {
    "key",
    "keys",
    "apikey",
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "credential",
    "credentials",
}
_SECRET_SUBSTRINGS = ("secret", "password", "passwd", "credential", "apikey")
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{20,}")


class NotebookRunError(Exception):
    """A notebook failed: says which cell and what it raised, so a CI log points at the fix.

    ``cell_index`` indexes the *executed* notebook's cells (papermill's injected-parameters
    cell counts); ``execution_count`` is the ``In [n]`` number.
    """

    def __init__(
        self,
        path: str | Path,
        cell_index: int | None,
        execution_count: int | None,
        source: str,
        ename: str,
        evalue: str,
    ) -> None:
        self.path, self.cell_index, self.execution_count = str(path), cell_index, execution_count
        self.source, self.ename, self.evalue = source, ename, evalue
        where = "before any cell ran" if cell_index is None else f"cell {cell_index}"
        if execution_count is not None:
            where += f" (In [{execution_count}])"
        quoted = [f"  > {line}" for line in source.strip().splitlines()[:3]]
        super().__init__("\n".join([f"{self.path}: {where} raised {ename}: {evalue}", *quoted]))


def _credential_problem(name: str, value: Any) -> str | None:
    """Say why a parameter must not be written into a notebook, never echoing its value."""
    words = {w.lower() for w in re.split(r"[_\-\s.\[\]]+|(?<=[a-z0-9])(?=[A-Z])", name) if w}
    looks_secret = bool(words & _SECRET_WORDS) or any(s in name.lower() for s in _SECRET_SUBSTRINGS)
    if looks_secret and not name.lower().endswith("_env"):
        return (
            f"parameter {name!r} looks like a credential; papermill writes parameters into the "
            f"executed notebook, so pass the NAME of an environment variable instead "
            f"(e.g. {name.split('.')[-1]}_ENV='OPENAI_API_KEY')"
        )
    if isinstance(value, Mapping):
        return next((p for k, v in value.items() if (p := _credential_problem(f"{name}.{k}", v))), None)
    if isinstance(value, (list, tuple)):
        return next((p for i, v in enumerate(value) if (p := _credential_problem(f"{name}[{i}]", v))), None)
    if isinstance(value, str) and _OPENAI_KEY.search(value):
        return (
            f"parameter {name!r} has a value that looks like an OpenAI API key (sk-...); secrets "
            "never go into notebooks: read them from the environment inside the notebook"
        )
    return None


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Raise ValueError if a parameter would write a secret into the executed notebook."""
    for name, value in parameters.items():
        if problem := _credential_problem(str(name), value):
            raise ValueError(problem)


def parse_value(text: str) -> Any:
    """Type a ``-p`` value like papermill's CLI: True/False/None, int, float, else the string.

    Not YAML, where "None" stays a string and "no" becomes False."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def _load(path: Path, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Load (and parameterize if asked), leaving no papermill scaffolding behind."""
    nb: nbformat.NotebookNode = load_notebook_node(str(path))  # plain nbformat.read breaks parameterize_notebook
    if parameters:
        nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    else:
        nb.metadata.pop("papermill", None)  # no injected cell, no trace: in-place reruns stay clean
    for cell in nb.cells:  # load_notebook_node adds both keys to every cell
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.metadata.get("papermill") == {}:
            del cell.metadata["papermill"]
    return nb


def _write(nb: nbformat.NotebookNode, output_path: Path) -> None:
    output_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(output_path))


def _ipc_transport(folder: Path) -> Config:
    """Kernel settings: talk to the kernel over Unix sockets in `folder`, not TCP.

    Over TCP ipykernel warns on every start that anyone on the machine could listen in;
    over IPC only this user can, and there is nothing to warn about.
    """
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(folder / "kernel")
    return config


def run_notebook(
    path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    output_path: str | Path | None = None,
    timeout: float = 600,
    cwd: str | Path | None = None,
) -> nbformat.NotebookNode:
    """Execute ``path`` in ``cwd`` (default: its folder) and return the executed notebook.

    ``timeout`` is per cell. Errors in cells tagged ``raises-exception`` are allowed; any other
    error, a timeout or a dead kernel raises NotebookRunError. The executed notebook goes to
    ``output_path`` if given, on failure too (for inspection) unless that is the source itself.
    """
    path, parameters = Path(path), dict(parameters or {})
    check_parameters(parameters)  # before anything runs or is written
    nb = _load(path, parameters)
    running: list[int] = []  # indexes of cells started, to name the failing one
    with tempfile.TemporaryDirectory(prefix="nbrun-") as sockets:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            config=_ipc_transport(Path(sockets)),
            on_cell_execute=lambda cell, cell_index: running.append(cell_index),
            resources={"metadata": {"path": str(cwd or path.parent)}},
        )
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            if isinstance(exc, CellExecutionError):
                ename, evalue = exc.ename, exc.evalue
            elif isinstance(exc, CellTimeoutError):
                ename, evalue = "CellTimeoutError", f"timed out after {timeout:g} s (the timeout is per cell)"
            else:
                ename, evalue = "DeadKernelError", "the kernel died (os._exit, a crash, out of memory?)"
            if output_path is not None and Path(output_path).resolve() != path.resolve():
                _write(nb, Path(output_path))
            index = running[-1] if running else None
            cell = nb.cells[index] if index is not None else nbformat.v4.new_code_cell()
            raise NotebookRunError(path, index, cell.get("execution_count"), cell.source, ename, evalue) from exc
    if output_path is not None:
        _write(nb, Path(output_path))
    return nb


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m support.devtools.nbrun",
        description="Execute notebooks with papermill-style parameters (cells tagged raises-exception "
        "may raise). Exit 0 if all ran, 1 if any failed, 2 on usage errors.",
    )
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--output-dir", type=Path, metavar="DIR", help="write executed notebooks here")
    where.add_argument("--inplace", action="store_true", help="overwrite each notebook with its run")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="typed like papermill: True/False/None/int/float/str",
    )
    parser.add_argument("-y", "--yaml", metavar="YAML", help="a YAML mapping, e.g. '{A: 1, B: x}'; -p wins")
    parser.add_argument("--timeout", type=float, default=600, metavar="S", help="per-cell timeout (600)")
    args = parser.parse_args(argv)
    try:
        params = yaml.safe_load(args.yaml) if args.yaml else {}
        if not isinstance(params, dict):
            parser.error(f"-y must be a YAML mapping such as '{{A: 1}}', not {type(params).__name__}")
        params.update({name: parse_value(value) for name, value in args.parameter})
        check_parameters(params)
    except (yaml.YAMLError, ValueError) as exc:
        parser.error(" ".join(str(exc).split()))
    if missing := [nb for nb in args.notebooks if not Path(nb).is_file()]:
        parser.error(f"notebook not found: {', '.join(missing)}")
    if args.output_dir and len({Path(nb).name for nb in args.notebooks}) < len(args.notebooks):
        parser.error("two notebooks share a file name and would overwrite each other in --output-dir")
    args.params = params
    return args


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 if every notebook ran, 1 if any failed (the rest still run), 2 on usage errors."""
    args = _parse_args(argv)  # argparse exits 2 on usage errors
    failed = False
    for notebook in args.notebooks:
        out = Path(notebook) if args.inplace else args.output_dir / Path(notebook).name
        start = time.perf_counter()
        try:
            run_notebook(notebook, args.params, output_path=out, timeout=args.timeout)
            print(f"ok    {notebook} -> {out} ({time.perf_counter() - start:.1f} s)", flush=True)
        except Exception as exc:
            failed = True
            why = exc if isinstance(exc, NotebookRunError) else f"{notebook}: {type(exc).__name__}: {exc}"
            print(f"FAIL  {notebook} ({time.perf_counter() - start:.1f} s): {why}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
