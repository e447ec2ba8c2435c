"""support.devtools.nbnormalize: notebooks keep outputs, counts and ids, lose volatile metadata, idempotently.

Normalizing twice is a no-op (the CI gate is ``--check``). No kernels needed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbstripout import strip_output

from support.devtools.nbnormalize import (
    KERNELSPEC,
    MACHINE_PATHS,
    is_normalized,
    main,
    normalize,
    without_machine_paths,
)
from tests.conftest import ROOT as REPO

STAMP = "2026-11-25T17:00:35.679815Z"


def executed_notebook(path: Path, kernel: str = "python3") -> Path:
    """What papermill/nbclient/JupyterLab leave behind after a run."""
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": kernel, "display_name": "Python (.venv)", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.7", "pygments_lexer": "ipython3"},
            "papermill": {"parameters": {"N": 3}, "version": "2.7.0", "duration": 1.23},
            "widgets": {"application/vnd.jupyter.widget-state+json": {}},
            "vscode": {"interpreter": {"hash": "abc123"}},
        }
    )
    nb.cells = [
        new_markdown_cell("# Title", id="intro"),
        new_code_cell(
            "N = 2",
            id="params",
            execution_count=1,
            metadata={
                "tags": ["parameters"],
                "papermill": {"duration": 0.01, "status": "completed"},
                "execution": {"iopub.status.busy": STAMP},
            },
        ),
        new_code_cell(
            "print(N)",
            id="show",
            execution_count=2,
            metadata={"tags": [], "papermill": {}, "execution": {"shell.execute_reply": STAMP}, "scrolled": True},
            outputs=[new_output("stream", name="stdout", text="3\n")],
        ),
        new_code_cell(
            "1/0",
            id="lesson",
            execution_count=3,
            metadata={"tags": ["raises-exception"]},
            outputs=[
                new_output(
                    "error",
                    ename="ZeroDivisionError",
                    evalue="division by zero",
                    traceback=["ZeroDivisionError: division by zero"],
                )
            ],
        ),
    ]
    nbformat.write(nb, path)
    return path


def test_strips_volatile_metadata_and_keeps_outputs_counts_ids_tags(tmp_path: Path) -> None:
    path = executed_notebook(tmp_path / "01.ipynb")
    assert not is_normalized(path)
    assert normalize(path) is True
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert set(nb["metadata"]) == {"kernelspec", "language_info"}
    assert nb["metadata"]["kernelspec"] == {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    assert "version" not in nb["metadata"]["language_info"]
    assert [c["id"] for c in nb["cells"]] == ["intro", "params", "show", "lesson"]
    assert [c.get("execution_count") for c in nb["cells"]] == [None, 1, 2, 3]
    assert [c["metadata"] for c in nb["cells"]] == [{}, {"tags": ["parameters"]}, {}, {"tags": ["raises-exception"]}]
    assert nb["cells"][2]["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["3\n"]}]
    assert nb["cells"][3]["outputs"][0]["ename"] == "ZeroDivisionError"
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))  # still schema-valid


def test_idempotent_and_canonical_nbformat_layout(tmp_path: Path) -> None:
    path = executed_notebook(tmp_path / "01.ipynb")
    normalize(path)
    text = path.read_text(encoding="utf-8")
    assert normalize(path) is False and is_normalized(path)
    assert path.read_text(encoding="utf-8") == text
    assert text == nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"
    assert text.startswith('{\n "cells": [\n  {\n')  # nbformat's 1-space indent, trailing newline


def test_relaid_json_is_not_normalized(tmp_path: Path) -> None:
    path = executed_notebook(tmp_path / "01.ipynb")
    normalize(path)
    path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2), encoding="utf-8")
    assert not is_normalized(path) and normalize(path) and is_normalized(path)


def test_missing_cell_id_is_added_once_then_kept(tmp_path: Path) -> None:
    path = executed_notebook(tmp_path / "01.ipynb")
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw["cells"][1]["id"]
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert normalize(path) is True
    new_id = json.loads(path.read_text(encoding="utf-8"))["cells"][1]["id"]
    assert new_id and normalize(path) is False
    assert json.loads(path.read_text(encoding="utf-8"))["cells"][1]["id"] == new_id


def test_check_lists_without_changing_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirty, clean = executed_notebook(tmp_path / "dirty.ipynb"), executed_notebook(tmp_path / "clean.ipynb")
    normalize(clean)
    before = dirty.read_bytes()
    assert main(["--check", str(dirty), str(clean)]) == 1
    out = capsys.readouterr()
    assert out.out == f"would change: {dirty}\n"
    assert out.err.startswith("python -m support.devtools.nbnormalize: error: 1 notebook(s) not normalized; run: ")
    assert dirty.read_bytes() == before
    assert main(["--check", str(clean)]) == 0 and capsys.readouterr().out == ""


def test_rewrite_lists_changed_files_and_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirty, clean = executed_notebook(tmp_path / "dirty.ipynb"), executed_notebook(tmp_path / "clean.ipynb")
    normalize(clean)
    assert main([str(dirty), str(clean)]) == 0
    assert capsys.readouterr().out == f"normalized: {dirty}\n"
    assert main(["--check", str(dirty), str(clean)]) == 0


def test_check_reports_a_wrong_kernelspec_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = executed_notebook(tmp_path / "venv_kernel.ipynb", kernel="runbook-venv")
    assert main(["--check", str(path)]) == 1
    assert "kernelspec.name is 'runbook-venv', must be 'python3'" in capsys.readouterr().out
    assert main([str(path)]) == 0  # the rewrite pins it
    assert nbformat.read(path, as_version=4).metadata.kernelspec.name == "python3"


def test_cli_module_wiring_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = executed_notebook(tmp_path / "01.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "support.devtools.nbnormalize", "--check", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )  # ~4 s: importing nbformat is slow here
    assert result.returncode == 1 and result.stdout == f"would change: {path}\n"
    with pytest.raises(SystemExit) as info:
        main(["--check", str(tmp_path / "nope.ipynb")])
    assert info.value.code == 2 and "notebook not found" in capsys.readouterr().err


def test_output_satisfies_nbstripout_verify_with_keep_id(tmp_path: Path) -> None:
    """`nbstripout --verify` with the same flags agrees, but only with --keep-id: without it,
    nbstripout renumbers cell ids "0", "1", ... and would flag every normalized notebook."""
    path = executed_notebook(tmp_path / "01.ipynb")
    normalize(path)
    keys = "metadata.papermill cell.metadata.papermill metadata.language_info.version metadata.vscode"
    cmd = [
        sys.executable,
        "-m",
        "nbstripout",
        "--keep-output",
        "--keep-count",
        "--keep-id",
        "--extra-keys",
        keys,
        "--verify",
        str(path),
    ]
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    nb = nbformat.read(path, as_version=4)
    strip_output(nb, keep_output=True, keep_count=True, keep_id=False)
    assert [c.id for c in nb.cells] == ["0", "1", "2", "3"]


# --- machine paths ---------------------------------------------------------------------------

MACHINE_TEXTS = {
    "\x1b[32m~/.pyenv/versions/3.11.7/lib/python3.11/asyncio/runners.py:186\x1b[39m": (
        "\x1b[32m<stdlib>/asyncio/runners.py:186\x1b[39m"
    ),
    "File /srv/app/.venv/lib/python3.11/site-packages/openai/_base_client.py:1560, in request": (
        "File <site-packages>/openai/_base_client.py:1560, in request"
    ),
    "/tmp/tmp.Ab12/p/support/apps/silent_blocking.py:24": "support/apps/silent_blocking.py:24",
    "(/home/me/runbook/tests/doctor/corpus/oa101.py)": "(tests/doctor/corpus/oa101.py)",
    "GET http://127.0.0.1:8000/v1/support/x.py": "GET http://127.0.0.1:8000/v1/support/x.py",  # a URL stays
}


@pytest.mark.parametrize(("text", "portable"), MACHINE_TEXTS.items())
def test_machine_paths_become_portable(text: str, portable: str) -> None:
    assert without_machine_paths(text) == portable
    assert without_machine_paths(portable) == portable  # a no-op the second time: CI's --check passes


def test_nbval_sanitizer_applies_the_same_path_rules_before_the_temporary_path_rule() -> None:
    """strict nbval compares a fresh run (real paths) with the committed outputs (portable ones):
    only the same rules, applied before [temporary paths] turns a clone in /tmp into TMPPATH, make
    both sides equal."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((REPO / "tests" / "nbval_sanitize.cfg").read_text())
    expected = [(p.pattern, r) for p, r in MACHINE_PATHS]
    start = patterns.index(expected[0])
    assert patterns[start : start + len(expected)] == expected
    assert all("/tmp/" not in regex for regex, _ in patterns[:start])


def test_outputs_lose_machine_paths_and_sources_keep_theirs(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    cell = new_code_cell("print('/srv/app/support/x.py')", execution_count=1)
    cell.outputs = [
        new_output("stream", name="stdout", text="/srv/app/support/x.py\n"),
        new_output(
            "error",
            ename="E",
            evalue="at /srv/app/.venv/lib/python3.11/site-packages/m.py",
            traceback=["File /srv/app/.venv/lib/python3.11/site-packages/m.py:1"],
        ),
    ]
    nbformat.write(new_notebook(cells=[cell], metadata={"kernelspec": dict(KERNELSPEC)}), str(path))
    normalize(path)
    (stored,) = nbformat.read(str(path), as_version=4).cells
    assert stored.source == "print('/srv/app/support/x.py')"  # the code is the reader's, not a machine path
    assert stored.outputs[0].text == "support/x.py\n"
    assert stored.outputs[1].evalue == "at <site-packages>/m.py"
    assert stored.outputs[1].traceback == ["File <site-packages>/m.py:1"]
