"""support.devtools.nbrun: papermill parameters + nbclient execution, failures that point at the cell, no secrets.

Every kernel start costs 1-3 s, so executions are shared through module-scoped fixtures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from support.devtools.nbnormalize import normalize
from support.devtools.nbrun import NotebookRunError, check_parameters, main, parse_value, run_notebook
from tests.conftest import ROOT as REPO

FAKE_KEY = "sk-proj-" + "A1b2C3d4E5" * 4


def write_notebook(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nb = new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    )
    nb.cells = list(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def good_notebook(path: Path) -> Path:
    return write_notebook(
        path,
        new_markdown_cell("# Parameters drive the run"),
        new_code_cell(
            'N = 2\nLATENCY_S = 1.0\nBASE_URL = "http://127.0.0.1:1"\nMODE = "slow"', metadata={"tags": ["parameters"]}
        ),
        new_code_cell("print('total', N * 21)"),
        new_code_cell("int('not a number')", metadata={"tags": ["raises-exception"]}),
        new_code_cell("print(repr(LATENCY_S), repr(BASE_URL), repr(MODE), repr(N))"),
    )


def failing_notebook(path: Path) -> Path:
    return write_notebook(
        path,
        new_markdown_cell("An untagged error must fail the run"),
        new_code_cell("x = 7"),
        new_code_cell("raise RuntimeError(f'boom x={x}')\n# second line"),
        new_code_cell("print('never runs')"),
    )


def stdout_text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def parameterized(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("param")
    source = good_notebook(tmp / "01_good.ipynb")
    out = tmp / "build" / "deep" / "01_good.ipynb"
    nb = run_notebook(source, {"N": 3, "MODE": "fast", "API_KEY_ENV": "OPENAI_API_KEY"}, output_path=out)
    return source, out, nb


def test_parameters_are_injected_after_the_parameters_cell_and_used(parameterized) -> None:
    _, _, nb = parameterized
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[1] == ["parameters"] and tags[2] == ["injected-parameters"]
    assert "N = 3" in nb.cells[2].source and 'MODE = "fast"' in nb.cells[2].source
    assert stdout_text(nb.cells[3]) == "total 63\n"
    assert stdout_text(nb.cells[5]) == "1.0 'http://127.0.0.1:1' 'fast' 3\n"
    assert nb.metadata.papermill["parameters"]["N"] == 3


def test_output_path_is_written_with_parent_dirs_and_source_untouched(parameterized) -> None:
    source, out, nb = parameterized
    assert nbformat.read(out, as_version=4) == nb
    assert len(nbformat.read(source, as_version=4).cells) == 5  # the source has no injected cell


def test_raises_exception_cell_may_raise(parameterized) -> None:
    _, _, nb = parameterized
    (error,) = nb.cells[4].outputs
    assert error.output_type == "error" and error.ename == "ValueError"
    assert stdout_text(nb.cells[5])  # and the run went on past it


def test_no_parameters_means_no_injected_cell_and_normalized_rerun_is_a_noop(tmp_path: Path) -> None:
    source = good_notebook(tmp_path / "02_inplace.ipynb")
    run_notebook(source, output_path=source)  # first run fills outputs
    normalize(source)
    committed = source.read_text(encoding="utf-8")
    nb = run_notebook(source, {}, output_path=source)  # re-execute the "committed" notebook in place
    assert len(nb.cells) == 5 and "papermill" not in nb.metadata
    assert all("tags" not in c.metadata or c.metadata.tags for c in nb.cells)  # no papermill `tags: []`
    assert all("papermill" not in c.metadata for c in nb.cells)
    assert stdout_text(nb.cells[2]) == "total 42\n"
    assert normalize(source) is True  # execution timestamps, language_info.version ...
    assert source.read_text(encoding="utf-8") == committed  # ... and nothing else changed


def test_untagged_error_names_the_cell_and_exception(tmp_path: Path) -> None:
    source = failing_notebook(tmp_path / "03_fail.ipynb")
    out = tmp_path / "out" / "03_fail.ipynb"
    with pytest.raises(NotebookRunError) as info:
        run_notebook(source, output_path=out)
    err = info.value
    assert (err.cell_index, err.execution_count, err.ename, err.evalue) == (2, 2, "RuntimeError", "boom x=7")
    assert str(err) == (
        f"{source}: cell 2 (In [2]) raised RuntimeError: boom x=7\n"
        "  > raise RuntimeError(f'boom x={x}')\n  > # second line"
    )
    partial = nbformat.read(out, as_version=4)  # written for inspection, stops at the failure
    assert partial.cells[2].outputs[0].ename == "RuntimeError" and partial.cells[3].outputs == []


def test_cell_timeout_raises_naming_the_cell_and_timeout(tmp_path: Path) -> None:
    source = write_notebook(
        tmp_path / "04_slow.ipynb", new_code_cell("x = 1"), new_code_cell("import time\ntime.sleep(60)")
    )
    with pytest.raises(NotebookRunError) as info:
        run_notebook(source, timeout=1)
    assert info.value.cell_index == 1 and info.value.ename == "CellTimeoutError"
    assert re.search(r"cell 1 (\(In \[2\]\) )?raised CellTimeoutError: timed out after 1 s", str(info.value))
    assert "time.sleep(60)" in str(info.value)


def test_dead_kernel_raises(tmp_path: Path) -> None:
    source = write_notebook(tmp_path / "05_dies.ipynb", new_code_cell("import os\nos._exit(1)"))
    with pytest.raises(NotebookRunError, match=r"cell 0 (\(In \[1\]\) )?raised DeadKernelError"):
        run_notebook(source)


@pytest.mark.parametrize(
    "name",
    [
        "OPENAI_API_KEY",
        "api_key",
        "openaiApiKey",
        "HF_TOKEN",
        "DB_PASSWORD",
        "passwd",
        "CLIENT_SECRET",
        "aws_credentials",
        "apikey",
    ],
)
def test_credential_names_are_refused_before_anything_runs(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out" / "x.ipynb"
    with pytest.raises(ValueError, match=rf"parameter '{name}' looks like a credential.*{name}_ENV"):
        run_notebook(tmp_path / "missing.ipynb", {name: "harmless"}, output_path=out)  # no FileNotFoundError
    assert not out.parent.exists()


@pytest.mark.parametrize("name", ["API_KEY_ENV", "openai_api_key_env", "MAX_TOKENS", "KEYWORDS", "LATENCY_S"])
def test_env_var_names_and_ordinary_names_are_allowed(name: str) -> None:
    check_parameters({name: "OPENAI_API_KEY"})


@pytest.mark.parametrize(
    "params", [{"BASE_URL": FAKE_KEY}, {"API_KEY_ENV": FAKE_KEY}, {"CONFIG": {"headers": ["x", f"Bearer {FAKE_KEY}"]}}]
)
def test_key_looking_values_are_refused_without_echoing_them(params: dict) -> None:
    with pytest.raises(ValueError, match="looks like an OpenAI API key") as info:
        check_parameters(params)
    assert FAKE_KEY not in str(info.value) and "A1b2C3" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.05", 0.05),
        ("4", 4),
        ("None", None),
        ("True", True),
        ("False", False),
        ("true", "true"),
        ("no", "no"),
        ("x", "x"),
    ],
)
def test_cli_values_are_typed_like_papermill(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def nbrun(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "support.devtools.nbrun", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_runs_with_typed_parameters_and_exits_0(tmp_path: Path) -> None:
    source = good_notebook(tmp_path / "nbs" / "01_good.ipynb")
    result = nbrun(
        source,
        "--output-dir",
        tmp_path / "build",
        "-y",
        "{N: 5, MODE: x}",
        "-p",
        "LATENCY_S",
        "0.05",
        "-p",
        "BASE_URL",
        "None",
        "--timeout",
        "60",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok    {source} -> {tmp_path / 'build' / '01_good.ipynb'} (")
    nb = nbformat.read(tmp_path / "build" / "01_good.ipynb", as_version=4)
    assert stdout_text(nb.cells[5]) == "0.05 None 'x' 5\n"


def test_cli_keeps_running_after_a_failure_and_exits_1(tmp_path: Path) -> None:
    bad, good = failing_notebook(tmp_path / "a_fail.ipynb"), good_notebook(tmp_path / "b_good.ipynb")
    result = nbrun(bad, good, "--output-dir", tmp_path / "build")
    assert result.returncode == 1, result.stdout + result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"FAIL  {bad} (") and first.endswith("raised RuntimeError: boom x=7")
    assert rest[-1].startswith(f"ok    {good} -> ")
    assert (tmp_path / "build" / "b_good.ipynb").is_file()


USAGE_ERRORS = [
    (["NB", "--output-dir", "TMP", "-y", "{A: [1"], "error: while parsing"),
    (["NB", "--output-dir", "TMP", "-y", "[1, 2]"], "-y must be a YAML mapping"),
    (["TMP/nope.ipynb", "--output-dir", "TMP"], "notebook not found: "),
    (["NB"], "one of the arguments --output-dir --inplace is required"),
    (["NB", "NB", "--output-dir", "TMP"], "share a file name"),
    (["NB", "--inplace", "-p", "OPENAI_API_KEY", "x"], "parameter 'OPENAI_API_KEY' looks like a credential"),
    (["NB", "--inplace", "-y", f"{{BASE_URL: {FAKE_KEY}}}"], "'BASE_URL' has a value that looks like an OpenAI"),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_cli_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """In-process (each `python -m` costs ~4 s here, mostly importing nbformat); same code path."""
    nb = write_notebook(tmp_path / "nb.ipynb", new_code_cell("1"))
    with pytest.raises(SystemExit) as info:
        main([a.replace("NB", str(nb)).replace("TMP", str(tmp_path)) for a in args])
    out = capsys.readouterr()
    assert info.value.code == 2 and message in out.err, out.err
    assert out.out == "" and FAKE_KEY not in out.err
    assert nbformat.read(nb, as_version=4).cells[0].outputs == []  # nothing ran


def test_cli_usage_error_subprocess_has_no_traceback_and_no_secret(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "nb.ipynb", new_code_cell("1"))
    result = nbrun(nb, "--inplace", "-p", "BASE_URL", FAKE_KEY)
    assert result.returncode == 2 and "looks like an OpenAI API key" in result.stderr
    assert "usage: python -m support.devtools.nbrun" in result.stderr and "Traceback" not in result.stderr
    assert FAKE_KEY not in result.stderr + result.stdout and "A1b2C3" not in result.stderr


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "--inplace" in out and "-p NAME VALUE" in out and "--timeout S" in out
