"""support.isolated: run code in a fresh interpreter, kernel or pytest process, where a notebook's loop cannot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from support.isolated import PROJECT_ROOT, run_command, run_in_fresh_kernel, run_pytest, run_python


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


# --- run_command (a tool as CI runs it) and run_pytest (test files in their own process) ------------


PRINT_ENV = "import os; print(os.getcwd(), os.environ.get('NO_COLOR'), os.environ.get('FORCE_COLOR', 'unset'))"


def test_run_command_echoes_output_then_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    done = run_command(sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")  # the streams stay apart
    assert capsys.readouterr().out == "out\nerr\n[exit status 3]\n"


def test_run_command_turns_colours_off_and_runs_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    done = run_command(sys.executable, "-c", PRINT_ENV, cwd=tmp_path, echo=False)
    assert done.stdout.split() == [str(tmp_path), "1", "unset"]
    assert capsys.readouterr().out == ""  # echo=False prints nothing
    assert run_command(sys.executable, "-c", PRINT_ENV, echo=False).stdout.split()[0] == str(PROJECT_ROOT)


FIXTURE_TESTS = """
import pytest


@pytest.fixture
def value():
    yield 42


def test_passes(value):
    assert value == 42


def test_fails(value):
    raise RuntimeError("Event loop is closed")
"""


def test_run_pytest_reports_each_test_and_the_failures() -> None:
    run = run_pytest({"test_probe.py": FIXTURE_TESTS, "test_more.py": "def test_more():\n    pass\n"})
    assert run.returncode == 1
    assert run.results == [  # files in name order, tests in definition order
        "test_more.py::test_more PASSED",
        "test_probe.py::test_passes PASSED",
        "test_probe.py::test_fails FAILED",
    ]
    assert run.failures == ["FAILED test_probe.py::test_fails - RuntimeError: Event loop is closed"]
    assert run.summary == "1 failed, 2 passed"


def test_run_pytest_can_import_the_project() -> None:
    run = run_pytest({"test_imports.py": "import support.fanout\n\n\ndef test_it():\n    assert support.fanout\n"})
    assert (run.returncode, run.summary, run.failures) == (0, "1 passed", [])
