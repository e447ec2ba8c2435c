"""support.loop_demos: notebook 05's demonstrations; those that patch asyncio run in a fresh interpreter."""

from __future__ import annotations

import asyncio
import json

import uvicorn.config

from support.isolated import run_python
from support.loop_demos import interleaving, sync_helper


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


# --- the parts notebook 05 shows by name, run without the patch (nothing here patches asyncio) ------


def test_sync_helper_runs_its_coroutine_where_no_loop_is_running() -> None:
    assert sync_helper() == "helper: done"


def test_sync_helper_reports_the_refusal_inside_a_running_loop_without_a_warning() -> None:
    async def main() -> str:
        return sync_helper()

    assert asyncio.run(main()) == "helper: RuntimeError: asyncio.run() cannot be called from a running event loop"


def test_interleaving_without_nest_asyncio_keeps_the_no_await_promise() -> None:
    log = interleaving()
    call, returned = log.index("caller: calls the sync helper"), log.index("caller: the helper returned")
    assert log[call + 1] == "helper: RuntimeError: asyncio.run() cannot be called from a running event loop"
    assert returned == call + 2  # nothing ran between the two lines that have no await between them
    assert [line for line in log if line.startswith("other task")] == [f"other task: tick {i}" for i in range(3)]
