"""support.bench.affinity: who gets which cores, and pinning every thread of a real process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bench import affinity, procfs
from support.bench.affinity import Placement
from tests.conftest import NO_SUCH_PID, wait_until

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
multi_core = pytest.mark.skipif(len(CORES) < 2, reason="needs 2 cores to pin apart")
# The main thread starts a second one; both sleep.
TWO_THREADS = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
# Prints the affinity of the main thread and of a thread it starts after exec.
REPORTS_AFFINITY = (
    "import os, threading\n"
    "seen = []\n"
    "t = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0))))\n"
    "t.start(); t.join()\n"
    "print(sorted(os.sched_getaffinity(0)), seen[0])\n"
)


def thread_affinities(pid: int) -> dict[int, set[int]]:
    """Each live thread's cores (a thread that exits meanwhile is left out)."""
    found = {}
    for tid in procfs.thread_ids(pid):
        with contextlib.suppress(ProcessLookupError):
            found[tid] = os.sched_getaffinity(tid)
    return found


@pytest.fixture
def two_threads() -> Iterator[subprocess.Popen[bytes]]:
    """A child with two sleeping threads (both running once this yields); killed and reaped afterwards."""
    child = subprocess.Popen([sys.executable, "-c", TWO_THREADS])
    try:
        wait_until(lambda: len(procfs.thread_ids(child.pid)) == 2, what="the child's second thread")
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


def test_plan_on_one_core_has_nothing_to_separate() -> None:
    assert affinity.plan({0}) is None
    assert affinity.plan({0, 1}, workers=2) is None  # two workers on one core would defeat them


def test_plan_on_two_cores_gives_the_service_the_highest() -> None:
    placement = affinity.plan({0, 1})
    assert placement == Placement(service=frozenset({1}), others=frozenset({0}))
    assert placement.describe() == "service on core 1; upstream and load generator on core 0"


def test_plan_on_four_cores() -> None:
    placement = affinity.plan([2, 0, 3, 1])
    assert placement == Placement(service=frozenset({3}), others=frozenset({0, 1, 2}))
    assert placement.describe() == "service on core 3; upstream and load generator on cores 0-2"
    two = affinity.plan({0, 1, 2, 3}, workers=2)
    assert two is not None and two.describe() == "service on cores 2-3; upstream and load generator on cores 0-1"
    gaps = affinity.plan({0, 2, 5, 6, 7})
    assert gaps is not None and gaps.describe() == "service on core 7; upstream and load generator on cores 0, 2, 5-6"


def test_plan_defaults_to_this_process_cores() -> None:
    expected = affinity.plan(CORES) if CORES else None
    assert affinity.plan() == expected


@pytest.mark.parametrize(
    ("cores", "workers", "words"),
    [(set(), 1, "no cores given"), ({0, -1}, 1, "integers >= 0"), ({0, 1}, 0, "workers must be")],
)
def test_plan_rejects_bad_input(cores: set[int], workers: int, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        affinity.plan(cores, workers=workers)


def test_a_placement_never_shares_a_core() -> None:
    with pytest.raises(ValueError, match="share core 1"):
        Placement(service=frozenset({1}), others=frozenset({0, 1}))


@multi_core
def test_pin_moves_every_thread_of_a_real_process(two_threads: subprocess.Popen[bytes]) -> None:
    for core in (CORES[-1], CORES[0]):  # there and back: the first move is not the default
        affinity.pin(two_threads.pid, {core})
        threads = thread_affinities(two_threads.pid)
        assert len(threads) == 2 and all(cores == {core} for cores in threads.values()), threads
        assert affinity.affinity_of(two_threads.pid) == {core}
    affinity.pin(two_threads.pid, CORES)
    assert all(cores == set(CORES) for cores in thread_affinities(two_threads.pid).values())


@multi_core
def test_pin_self_moves_this_process_threads_and_can_move_them_back() -> None:
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, args=(30,))
    helper.start()
    try:
        affinity.pin_self({CORES[-1]})
        threads = thread_affinities(os.getpid())
        assert len(threads) >= 2 and all(cores == {CORES[-1]} for cores in threads.values()), threads
    finally:
        affinity.pin_self(CORES)
        stop.set()
        helper.join()
    assert all(cores == set(CORES) for cores in thread_affinities(os.getpid()).values())


@multi_core
def test_preexec_sets_the_child_affinity_before_its_threads_start(tmp_path: Path) -> None:
    marker = tmp_path / "also-ran"
    done = subprocess.run(
        [sys.executable, "-c", REPORTS_AFFINITY],
        preexec_fn=affinity.preexec({CORES[-1]}, lambda: marker.write_text("yes")),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("] ") == [f"[{CORES[-1]}", f"[{CORES[-1]}]\n"], done.stdout  # main thread, new thread
    assert marker.read_text() == "yes"
    assert os.sched_getaffinity(0) == set(CORES)  # the parent is untouched


@pytest.mark.parametrize("cores", [set(), {-1}], ids=["none", "negative"])
def test_preexec_checks_the_cores_in_the_parent(cores: set[int]) -> None:
    with pytest.raises(ValueError):
        affinity.preexec(cores)


def test_pin_of_a_gone_process_raises_process_lookup_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)  # exited and reaped: the pid is free
    with pytest.raises(ProcessLookupError, match=str(child.pid)):
        affinity.pin(child.pid, CORES or [0])
    with pytest.raises(ProcessLookupError):
        affinity.pin(NO_SUCH_PID, CORES or [0])
    with pytest.raises(ProcessLookupError):
        affinity.affinity_of(NO_SUCH_PID)


@pytest.mark.skipif(not CORES, reason="needs sched_getaffinity")
def test_pin_to_a_core_that_does_not_exist_says_so(two_threads: subprocess.Popen[bytes]) -> None:
    missing = max(1023, os.cpu_count() or 0)  # beyond any online core here
    with pytest.raises(ValueError, match=f"core {missing}: none of them is online"):
        affinity.pin(two_threads.pid, {missing})
    assert affinity.affinity_of(two_threads.pid) == set(CORES)  # unchanged
    with pytest.raises(ValueError, match="no cores given"):
        affinity.pin(two_threads.pid, [])
