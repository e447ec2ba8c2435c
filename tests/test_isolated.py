"""support.isolated: run code in a fresh interpreter or a fresh kernel, where a notebook's loop cannot."""

from __future__ import annotations

import os
from pathlib import Path

from support.isolated import PROJECT_ROOT, run_in_fresh_kernel, run_python


def test_run_python_captures_output_and_runs_from_the_project_root() -> None:
    done = run_python("-c", "import os, support; print(os.getcwd()); print('err', file=__import__('sys').stderr)")
    assert done.returncode == 0
    assert done.stdout.strip() == str(PROJECT_ROOT)
    assert done.stderr.strip() == "err"


def test_run_python_unsets_variables_for_the_child_only() -> None:
    os.environ["LOOPS_TEST_VARIABLE"] = "set"
    try:
        code = "import os; print(os.environ.get('LOOPS_TEST_VARIABLE', 'missing'))"
        assert run_python("-c", code).stdout.strip() == "set"
        assert run_python("-c", code, unset=["LOOPS_TEST_VARIABLE"]).stdout.strip() == "missing"
        assert os.environ["LOOPS_TEST_VARIABLE"] == "set"
    finally:
        del os.environ["LOOPS_TEST_VARIABLE"]


def test_run_python_adds_variables_and_runs_where_asked(tmp_path: Path) -> None:
    code = "import os, support; print(os.getcwd(), os.environ['LOOPS_EXTRA'])"
    done = run_python("-c", code, env={"LOOPS_EXTRA": "added"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path), "added"]


def test_fresh_kernel_reports_output_and_survival() -> None:
    run = run_in_fresh_kernel("print(6 * 7)\nraise ValueError('boom')")
    assert run.finished and run.alive
    assert run.output == "42\nValueError: boom\n"


def test_fresh_kernel_reports_a_dead_kernel() -> None:
    run = run_in_fresh_kernel("import os\nos._exit(0)", timeout=10)
    assert not run.finished and not run.alive
