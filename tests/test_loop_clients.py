"""support.loop_clients: a shared AsyncOpenAI across asyncio.run per task fails; the three fixes do not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from support.loop_clients import KINDS, LoopClients, RunnerPerThread, classify, run_tasks, tally_table
from support.target import Target
from support.upstream import upstream_in_thread
from tests.conftest import MODEL

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with upstream_in_thread(latency=0.005, api_key="loop-key") as upstream:
        yield Target(base_url=upstream.base_url, model=MODEL, api_key="loop-key", upstream=upstream)


def test_classify_names_the_kind_and_drops_reprs() -> None:
    assert classify(RuntimeError("Event loop is closed")) == (
        "Event loop is closed",
        "RuntimeError: Event loop is closed",
    )
    different = RuntimeError(
        "Task <Task pending coro=<f() at /x/y.py:3> cb=[g() at /z.py:1]> got Future <Future pending>"
        " attached to a different loop"
    )
    assert classify(different) == (
        "different loop",
        "RuntimeError: Task <...> got Future <...> attached to a different loop",
    )
    bound = RuntimeError("<asyncio.locks.Event object at 0x7f [unset]> is bound to a different event loop")
    assert classify(bound) == ("different loop", "RuntimeError: <...> is bound to a different event loop")
    assert classify(TimeoutError())[0] == "timeout"
    assert classify(ValueError("two\nlines")) == ("other", "ValueError: two")


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_one_shared_client_across_loops_fails_tasks(target: Target, transport: str) -> None:
    tally = run_tasks(target, "shared", transport=transport, tasks=24, workers=3, task_timeout=5)
    assert tally.failed > 0 and tally.outcomes["ok"] >= 1  # the first task, on the first loop, works
    assert set(tally.outcomes) <= {"ok", "Event loop is closed", "different loop"}, tally.examples
    assert tally.outcomes["Event loop is closed"] > 0
    assert sum(tally.outcomes.values()) == 24 and tally.clients == 1
    assert tally.received is not None and tally.answered is not None
    if transport == "httpx2":  # the request went out on the old connection: answered, and billed, unread
        assert tally.answered > tally.outcomes["ok"]
    else:  # aiohttp fails while connecting, before it sends anything
        assert tally.received < tally.failed


@pytest.mark.parametrize("strategy", ["per_loop", "runner", "sync"])
@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_the_fixes_fail_no_task(target: Target, strategy: str, transport: str) -> None:
    tally = run_tasks(target, strategy, transport=transport, tasks=24, workers=3, task_timeout=5)
    assert tally.outcomes == {"ok": 24} and tally.failure_rate == 0 and tally.logged == 0, tally.examples
    assert tally.received == tally.answered == 24
    # asyncio.run makes a loop per task, so a client per loop is a client per task; a runner per
    # worker thread builds at most one per worker
    assert tally.clients in {"per_loop": range(24, 25), "runner": range(1, 4), "sync": range(1, 2)}[strategy]


def test_a_hung_upstream_is_a_timeout_not_a_hang(target: Target) -> None:
    assert target.upstream is not None
    with target.upstream.fault("hang;seconds=5"):
        tally = run_tasks(target, "runner", tasks=4, workers=2, task_timeout=0.3)
    assert tally.outcomes == {"timeout": 4} and tally.wall_s < 3


def test_loop_clients_builds_one_client_per_loop_and_closes_it_before_the_loop_ends(target: Target) -> None:
    built = []

    def build():
        built.append(target.async_client())
        return built[-1]

    clients = LoopClients(build)

    async def twice(client):
        assert clients.get() is client  # the same loop, the same client
        return (await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])).id

    answers = [clients.run(twice) for _ in range(3)]
    assert len(answers) == 3 and clients.built == 3
    assert all(client.is_closed() for client in built)


def test_runner_per_thread_reuses_its_loop_and_closes_everything(target: Target) -> None:
    built = []

    def build():
        built.append(target.async_client())
        return built[-1]

    runners = RunnerPerThread(build)

    async def loop_id(client):
        await client.models.list()
        return id(asyncio.get_running_loop())

    loops = {runners.run(loop_id) for _ in range(3)}
    assert len(loops) == 1 and runners.loops == 1
    runners.close_all()
    assert len(built) == 1 and built[0].is_closed() and runners.loops == 0


def test_bad_sizes_are_refused(target: Target) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_tasks(target, "sync", tasks=0, workers=1)


def test_the_table_has_a_column_per_kind(target: Target) -> None:
    tally = run_tasks(target, "sync", tasks=3, workers=1)
    header, _rule, row = tally_table([tally]).splitlines()
    assert all(kind in header for kind in KINDS) and row.split()[-3:-1] == ["0%", "1"]


def test_the_runs_close_their_clients_from_a_thread_with_a_running_loop(target: Target) -> None:
    """A notebook cell's thread runs the kernel's loop: closing must not need this thread."""

    async def from_a_running_loop() -> list[int]:
        tallies = [
            run_tasks(target, s, tasks=4, workers=2) for s in ("shared", "runner")
        ]  # blocks the loop, on purpose
        return [t.outcomes["ok"] for t in tallies]

    assert asyncio.run(from_a_running_loop())[1] == 4
