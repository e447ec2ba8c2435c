"""support.loops: code that must not run on a notebook's own loop, run elsewhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import uvicorn.config

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


def test_uvicorn_exits_the_interpreter_when_the_port_is_taken() -> None:
    done = run_python("-c", "from support.loop_demos import uvicorn_on_taken_port; uvicorn_on_taken_port()")
    assert done.returncode == uvicorn.config.STARTUP_FAILURE
    assert done.stdout.strip() == f"uvicorn raised SystemExit({uvicorn.config.STARTUP_FAILURE})"
    assert "address already in use" in done.stderr


def test_uvicorn_as_a_task_stops_the_whole_loop() -> None:
    code = (
        "import asyncio\nfrom support.loop_demos import uvicorn_task_on_taken_port\n"
        "print(asyncio.run(uvicorn_task_on_taken_port()))"
    )
    done = run_python("-c", code)
    assert done.returncode == uvicorn.config.STARTUP_FAILURE
    assert "still running" not in done.stdout


def test_fresh_kernel_reports_output_and_survival() -> None:
    run = run_in_fresh_kernel("print(6 * 7)\nraise ValueError('boom')")
    assert run.finished and run.alive
    assert run.output == "42\nValueError: boom\n"


def test_fresh_kernel_reports_a_dead_kernel() -> None:
    run = run_in_fresh_kernel("import os\nos._exit(0)", timeout=10)
    assert not run.finished and not run.alive


def test_nest_asyncio_effects() -> None:
    code = "import json; from support.loop_demos import nest_asyncio_effects; print(json.dumps(nest_asyncio_effects(1000)))"
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["before"][2] == "helper: RuntimeError: asyncio.run() cannot be called from a running event loop"
    assert report["after"][2:5] == ["other task: tick 1", "other task: tick 2", "helper: done"]
    assert all(report["replaced"].values())
    assert report["deadline"]["elapsed_s"] >= report["deadline"]["work_s"]
    assert report["anyio.run"].startswith("RuntimeError")
    assert report["uvloop"].startswith("ValueError")
    assert report["bench_before_s"] > 0 and report["bench_after_s"] > 0
