"""support.loop_demos: notebook 05's demonstrations, each run in a fresh interpreter through `isolated`."""

from __future__ import annotations

import json

import uvicorn.config

from support.isolated import run_python


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


def test_nest_asyncio_effects() -> None:
    code = (
        "import json; from support.loop_demos import nest_asyncio_effects; "
        "print(json.dumps(nest_asyncio_effects(1000)))"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["before"][2] == "helper: RuntimeError: asyncio.run() cannot be called from a running event loop"
    assert report["after"][2:5] == ["other task: tick 1", "other task: tick 2", "helper: done"]
    assert all(report["replaced"].values())
    assert report["deadline"]["elapsed_s"] >= report["deadline"]["work_s"]
    assert report["anyio.run"].startswith("RuntimeError")
    assert report["uvloop"].startswith("ValueError")
    # The timings before and after are measurements for the notebook to show, not asserted
    # (a positive duration cannot fail). Why they differ is structural and asserted above
    # (asyncio.Task became the pure-Python Task); what they timed is part of the report.
    assert report["bench_tasks"] == 1000
