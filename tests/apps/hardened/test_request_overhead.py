"""What a request costs the process besides its answer: no garbage left for the collector,
no timer or task it does not need, and a hang-up still stopping the call at once.

How much CPU each saving buys is a measurement, not a test; these pin the behaviour each
one must keep.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from fastapi.routing import APIRoute

from support.apps.hardened import context, create_app, errors, gate
from support.apps.hardened.collector import YOUNG_THRESHOLD, CollectorPace
from support.apps.hardened.limits import ConcurrencyLimit
from support.apps.hardened.service import _cancelled_if_the_client_leaves
from tests.apps.hardened.conftest import BODY, LOGGER, Stack, request_lines, service_settings
from tests.conftest import wait_until

T = TypeVar("T")


def with_record(scenario: Callable[[context.RequestRecord], Awaitable[T]]) -> T:
    """Run `scenario` on a fresh loop, with a request's record in the context as the gate sets it."""

    async def main() -> T:
        record = context.RequestRecord("req-overhead-test")
        context.current.set(record)
        return await asyncio.wait_for(scenario(record), timeout=5)

    return asyncio.run(main())


# --- no reference cycle per request ----------------------------------------------------------------


def alive(kind: type) -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, kind))


def test_a_request_leaves_no_garbage_cycle_behind(stack: Stack) -> None:
    """Freed by reference counting as soon as it is answered: with the collector off, the
    gate's per-request objects do not stay alive waiting for a collection. (A cancelled task
    keeps its CancelledError, whose traceback holds the frame that held the task.)"""
    gc.collect()
    gc.disable()
    try:
        before = alive(gate.Departure)
        for _ in range(5):
            assert stack.client.post("/v1/chat", json=BODY).status_code == 200
        wait_until(lambda: alive(gate.Departure) <= before, timeout=3, what="every Departure to be freed")
    finally:
        gc.enable()


# --- the hang-up watch: no task, no anyio scope, the same behaviour -----------------------------------


def test_a_hang_up_cancels_the_block_at_once_as_a_499() -> None:
    async def scenario(record: context.RequestRecord) -> float:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, record.note_client_left)  # what the gate's Departure calls
        started = loop.time()
        with pytest.raises(errors.ServiceError) as caught:
            async with _cancelled_if_the_client_leaves():
                await asyncio.sleep(5)  # the upstream call
        assert (caught.value.status, caught.value.code) == (499, "client_disconnected")
        assert record.on_client_left is None  # the hook goes with the block
        return loop.time() - started

    assert with_record(scenario) < 1


def test_a_hang_up_before_the_block_cancels_it_at_its_first_wait() -> None:
    async def scenario(record: context.RequestRecord) -> None:
        record.note_client_left()  # e.g. while the body was being validated
        with pytest.raises(errors.ServiceError) as caught:
            async with _cancelled_if_the_client_leaves():
                await asyncio.sleep(5)
        assert caught.value.status == 499

    with_record(scenario)


def test_without_a_hang_up_the_block_runs_and_a_later_hang_up_changes_nothing() -> None:
    async def scenario(record: context.RequestRecord) -> str:
        async with _cancelled_if_the_client_leaves():
            await asyncio.sleep(0.01)
            answer = "done"
        record.note_client_left()  # after the answer: only noted
        await asyncio.sleep(0.01)
        assert record.client_left and record.on_client_left is None
        return answer

    assert with_record(scenario) == "done"


def test_a_timeout_inside_the_block_stays_a_timeout() -> None:
    """The deadline's own timer inside the block is not a hang-up."""

    async def scenario(record: context.RequestRecord) -> None:
        with pytest.raises(TimeoutError):
            async with _cancelled_if_the_client_leaves():
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(5)
        assert not record.client_left

    with_record(scenario)


def test_a_hang_up_during_a_timeout_inside_the_block_is_a_499() -> None:
    """Both cancel the same task; the hang-up's is the one that reaches the caller."""

    async def scenario(record: context.RequestRecord) -> None:
        asyncio.get_running_loop().call_later(0.02, record.note_client_left)
        with pytest.raises(errors.ServiceError) as caught:
            async with _cancelled_if_the_client_leaves():
                async with asyncio.timeout(10):
                    await asyncio.sleep(5)
        assert caught.value.status == 499

    with_record(scenario)


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    """The server cancelling the request (shutdown) is not a hang-up: no 499 is made of it."""

    async def scenario(record: context.RequestRecord) -> None:
        async def route() -> None:
            async with _cancelled_if_the_client_leaves():
                await asyncio.sleep(5)

        task = asyncio.create_task(route())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert record.on_client_left is None

    with_record(scenario)


# --- the limiter's fast path -------------------------------------------------------------------------


def test_a_free_slot_is_taken_without_a_timer_and_never_ahead_of_a_queued_caller() -> None:
    async def scenario(record: context.RequestRecord) -> None:
        limit = ConcurrencyLimit(1, queue=1, queue_timeout_s=5)
        assert await limit.acquire_if_free()
        assert limit.snapshot() == {"limit": 1, "in_flight": 1, "waiting": 0, "peak_in_flight": 1, "shed": 0}
        assert not await limit.acquire_if_free()  # none free: nothing taken, nothing counted
        assert limit.snapshot()["in_flight"] == 1
        queued = asyncio.create_task(limit.acquire())
        await asyncio.sleep(0.01)
        assert limit.snapshot()["waiting"] == 1
        limit.release()
        assert not await limit.acquire_if_free()  # the freed slot is the queued caller's
        await queued
        assert limit.snapshot() == {"limit": 1, "in_flight": 1, "waiting": 0, "peak_in_flight": 1, "shed": 0}
        limit.release()
        assert await limit.acquire_if_free()

    with_record(scenario)


# --- routing --------------------------------------------------------------------------------------------


def test_the_routes_are_the_apps_own_not_an_included_router() -> None:
    """An included router adds a matching layer to every request (fastapi/routing.py, _IncludedRouter)."""
    app = create_app(service_settings("http://127.0.0.1:9/v1"))
    own = {route.path for route in app.router.routes if isinstance(route, APIRoute)}
    assert own == {"/healthz", "/readyz", "/v1/chat", "/v1/chat/stream", "/v1/responses/stream"}


# --- the collector's pace ---------------------------------------------------------------------------


@pytest.fixture
def default_pace() -> Iterator[None]:
    """CPython's default thresholds for the test, and whatever the process had afterwards."""
    had = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*had)


def test_young_collections_are_rarer_while_any_app_serves_and_the_default_comes_back(default_pace: None) -> None:
    pace = CollectorPace()
    first, second = pace.serving(), pace.serving()
    first.__enter__()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    second.__enter__()  # two apps in one process, overlapping
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)  # one still serves
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("chosen", [(0, 10, 10), (50_000, 10, 10)], ids=["collector-off", "already-rarer"])
def test_a_threshold_chosen_by_the_process_is_left_alone(default_pace: None, chosen: tuple[int, int, int]) -> None:
    gc.set_threshold(*chosen)
    with CollectorPace().serving():
        assert gc.get_threshold() == chosen
    assert gc.get_threshold() == chosen


def test_a_threshold_changed_while_serving_is_kept(default_pace: None) -> None:
    with CollectorPace().serving():
        gc.set_threshold(1234, 10, 10)
    assert gc.get_threshold() == (1234, 10, 10)


def test_the_service_runs_with_the_rarer_young_collections(stack: Stack) -> None:
    assert stack.client.get("/healthz").status_code == 200
    assert gc.get_threshold()[0] >= YOUNG_THRESHOLD


# --- the log line ------------------------------------------------------------------------------------


def test_the_request_line_is_built_only_when_info_is_on(logs: pytest.LogCaptureFixture) -> None:
    record = context.RequestRecord("req-log-level")
    exchange = gate.Exchange(status=200, complete=True)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat"}
    logs.set_level(logging.WARNING, logger=LOGGER)
    gate._log_request(scope, record, exchange, started=0.0)
    assert not request_lines(logs)
    logs.set_level(logging.INFO, logger=LOGGER)
    gate._log_request(scope, record, exchange, started=0.0)
    (line,) = request_lines(logs)
    assert (line["request_id"], line["status"], line["path"]) == ("req-log-level", 200, "/v1/chat")
