"""support.bench.procfs: the one reader of /proc (status, CPU, CPU stall, peak memory, children), and its fallbacks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bench import procfs
from tests.conftest import NO_SUCH_PID, wait_until

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A child process that sleeps, with a marker on its command line; killed and reaped afterwards."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "procfs-marker"])
    try:
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


@linux_only
def test_status_fields_of_this_process() -> None:
    fields = procfs.status_fields()
    assert fields["Pid"] == str(os.getpid())
    assert int(fields["Threads"]) >= threading.active_count()
    assert fields["VmRSS"].endswith(" kB")
    assert procfs.status_fields(os.getpid())["Pid"] == fields["Pid"]  # a pid, or "self"


def test_kib_reads_a_kb_field_or_none() -> None:
    fields = {"VmRSS": "77656 kB", "VmSize": "159800 kB", "Threads": "7"}
    assert procfs.kib(fields, "VmRSS") == 77656
    assert procfs.kib(fields, "VmSize") == 159800
    assert procfs.kib(fields, "VmHWM") is None
    assert procfs.kib({}, "VmRSS") is None


@linux_only
def test_cpu_seconds_grows_with_work() -> None:
    before = procfs.cpu_seconds()
    started = time.process_time()
    while time.process_time() - started < 0.3:  # burn 0.3 s of this process's CPU
        sum(range(10_000))
    grown = procfs.cpu_seconds() - before
    # /proc counts in clock ticks (usually 10 ms): the same work, give or take a few ticks
    assert grown >= 0.3 - 3 / os.sysconf("SC_CLK_TCK"), grown
    assert procfs.cpu_seconds(os.getpid()) >= before + grown  # a pid, or "self"


def test_cpu_stall_seconds_is_a_counter_or_nan() -> None:
    first = procfs.cpu_stall_seconds()
    if not Path("/proc/pressure/cpu").exists():
        assert math.isnan(first)
        return
    second = procfs.cpu_stall_seconds()
    assert 0 <= first <= second  # machine-wide, since boot: it never goes down


@linux_only
def test_peak_rss_can_be_read_and_reset() -> None:
    before = procfs.peak_rss_mib()
    procfs.reset_peak_rss()
    assert 0 < procfs.peak_rss_mib() <= before


@linux_only
def test_peak_rss_follows_an_allocation_and_a_reset_forgets_it() -> None:
    procfs.reset_peak_rss()
    start = procfs.peak_rss_mib()
    block = b"\x01" * (64 << 20)  # 64 MiB, every page written
    peak = procfs.peak_rss_mib()
    assert peak >= start + 60, (start, peak)
    del block  # a block this large is unmapped when freed
    rss = procfs.kib(procfs.status_fields(), "VmRSS")
    assert rss is not None and rss / 1024 < peak - 30  # the memory is gone ...
    assert procfs.peak_rss_mib() >= start + 60  # ... and the peak remembers it ...
    procfs.reset_peak_rss()
    assert procfs.peak_rss_mib() < peak - 30  # ... until a reset starts again from the current RSS


@linux_only
def test_children_and_cmdline_of_a_real_child(sleeper: subprocess.Popen[bytes]) -> None:
    assert sleeper.pid in procfs.children(os.getpid())
    # Popen returns as soon as the exec has begun, and the kernel shows the new command line a
    # moment later (empty until then, often so on a busy machine): wait for it.
    wait_until(lambda: b"procfs-marker" in procfs.cmdline(sleeper.pid), what="the child's new command line")
    argv = procfs.cmdline(sleeper.pid).split(b"\0")  # NUL-separated, NUL-terminated
    assert argv == [sys.executable.encode(), b"-c", b"import time; time.sleep(60)", b"procfs-marker", b""], argv
    sleeper.kill()
    sleeper.wait(timeout=10)  # reaped: the pid no longer exists
    assert sleeper.pid not in procfs.children(os.getpid())
    assert procfs.cmdline(sleeper.pid) == b""


def test_a_missing_process_reads_as_nan_or_empty() -> None:
    assert procfs.status_fields(NO_SUCH_PID) == {}
    assert math.isnan(procfs.cpu_seconds(NO_SUCH_PID))
    assert math.isnan(procfs.peak_rss_mib(NO_SUCH_PID))
    assert procfs.children(NO_SUCH_PID) == []
    assert procfs.cmdline(NO_SUCH_PID) == b""


def test_reset_peak_rss_of_a_missing_process_does_nothing() -> None:
    procfs.reset_peak_rss(NO_SUCH_PID)
