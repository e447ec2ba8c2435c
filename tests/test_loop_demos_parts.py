"""support.loop_demos' parts that notebook 05 shows by name, run without the patch (nothing here patches asyncio)."""

from __future__ import annotations

import asyncio

from support.loop_demos import interleaving, sync_helper


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
