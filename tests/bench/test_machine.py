"""support.bench.machine: steal and busy time, the Watch over a window, contention reasons, calibration."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.bench import machine, procfs
from support.bench.machine import MachineWindow, Thresholds, Watch
from tests.conftest import ROOT, cli_error_line

linux_only = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc")
HZ = os.sysconf("SC_CLK_TCK")
# user nice system idle iowait irq softirq steal guest guest_nice, in clock ticks
STAT = "cpu  1000 20 300 9000 50 6 70 8 400 0\ncpu0 500 10 150 4500 25 3 35 4 200 0\nintr 12345\n"
CPUINFO = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\n"


def window(**figures: float) -> MachineWindow:
    """A clean window, with `figures` replacing some of its values."""
    clean: dict[str, Any] = {
        "wall_s": 1.0,
        "cpus": 2,
        "stall_pct": 0.0,
        "steal_pct": 0.0,
        "loadgen_cpu_pct": 5.0,
        "other_cpu_pct": 0.0,
    }
    return MachineWindow(**(clean | figures))


def burn(seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        sum(range(1000))


@pytest.fixture
def spinner() -> Iterator[subprocess.Popen[bytes]]:
    """A child process that keeps one core busy; killed and reaped afterwards."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


def test_steal_and_busy_seconds_parse_the_first_cpu_line() -> None:
    assert machine.steal_seconds(STAT) == pytest.approx(8 / HZ)
    # user + nice + system + irq + softirq + steal; guest is already part of user
    assert machine.busy_seconds(STAT) == pytest.approx((1000 + 20 + 300 + 6 + 70 + 8) / HZ)


@pytest.mark.parametrize(
    "text",
    ["", "intr 12345\n", "cpu  1000 20 300 9000 50 6 70\n", "cpu  a b c d e f g h\n"],
    ids=["empty", "no cpu line", "a kernel without steal", "garbage"],
)
def test_steal_and_busy_seconds_are_nan_without_the_figures(text: str) -> None:
    assert math.isnan(machine.steal_seconds(text))
    assert math.isnan(machine.busy_seconds(text))


@linux_only
def test_steal_and_busy_seconds_of_this_machine_are_counters() -> None:
    busy, steal = machine.busy_seconds(), machine.steal_seconds()
    burn(0.05)
    assert 0 <= steal <= machine.steal_seconds()
    assert 0 < busy <= machine.busy_seconds()


def test_cpu_model_counts_the_cpus_and_falls_back() -> None:
    assert machine.cpu_model(CPUINFO) == "2 x Example CPU @ 2.0GHz"
    fallback = machine.cpu_model("processor\t: 0\nFeatures\t: fp asimd\n")  # an ARM cpuinfo: no model name
    assert fallback and " x " not in fallback
    if Path("/proc/cpuinfo").exists() and procfs.cpu_models():
        assert machine.cpu_model().startswith(f"{len(procfs.cpu_models())} x ")


@linux_only
def test_a_busy_loop_shows_as_load_generator_cpu() -> None:
    with Watch(()) as watch:
        burn(0.5)
    assert watch.window is not None
    assert watch.window.loadgen_cpu_pct > 50, watch.window
    assert watch.window.wall_s >= 0.5
    assert watch.window.cpus == machine.online_cpus()


@linux_only
def test_a_sleep_does_not() -> None:
    watch = Watch(())  # the window starts here
    time.sleep(0.5)
    window = watch.stop()
    assert window.loadgen_cpu_pct < 20, window
    assert watch.window is window
    for figure in (window.steal_pct, window.other_cpu_pct):
        assert figure >= 0
    if Path("/proc/pressure/cpu").exists():
        assert 0 <= window.stall_pct <= 100 * 1.05  # PSI "some": at most the whole window, give or take a tick
    else:
        assert math.isnan(window.stall_pct)


@linux_only
def test_other_processes_are_what_the_measured_pids_do_not_explain(spinner: subprocess.Popen[bytes]) -> None:
    time.sleep(0.1)  # let the spinner start spinning
    unexplained, explained, untold = Watch(()), Watch([spinner.pid]), Watch()  # the same window
    time.sleep(0.6)
    spun = unexplained.stop()
    measured = explained.stop()
    assert math.isnan(untold.stop().other_cpu_pct)  # no pids named: the service's CPU would pass for others
    # the spinner keeps a core busy: half of a 2-core machine, as "other" unless it is measured
    assert spun.other_cpu_pct > 100 / spun.cpus / 2, spun
    assert measured.other_cpu_pct < spun.other_cpu_pct - 100 / spun.cpus / 2, (measured, spun)


def test_a_watch_stopped_twice_says_so() -> None:
    watch = Watch(())
    watch.stop()
    with pytest.raises(RuntimeError, match="stopped already"):
        watch.stop()
    watch.start()
    assert watch.stop().wall_s >= 0


def test_a_window_serializes_nan_as_none() -> None:
    data = window(stall_pct=math.nan).to_dict()
    assert data["stall_pct"] is None and data["cpus"] == 2 and data["wall_s"] == 1.0
    json.dumps(data, allow_nan=False)


def test_a_clean_window_has_no_reasons() -> None:
    assert machine.contention_reasons(window()) == []
    nothing_known = window(stall_pct=math.nan, steal_pct=math.nan, loadgen_cpu_pct=math.nan, other_cpu_pct=math.nan)
    assert machine.contention_reasons(nothing_known) == []  # unknown is not contended


@pytest.mark.parametrize(
    ("figure", "value", "words"),
    [
        ("stall_pct", 25.0, "CPU stall 25%"),
        ("steal_pct", 3.5, "steal 3.5%"),
        ("loadgen_cpu_pct", 95.0, "load generator at 95% of a core"),
        ("other_cpu_pct", 30.0, "other processes used 30%"),
    ],
)
def test_each_threshold_is_a_reason_of_its_own(figure: str, value: float, words: str) -> None:
    reasons = machine.contention_reasons(window(**{figure: value}))
    assert len(reasons) == 1 and words in reasons[0], reasons
    at_the_limit = window(**{figure: getattr(machine.DEFAULT_THRESHOLDS, figure)})
    assert machine.contention_reasons(at_the_limit) == []  # above, not at
    assert machine.contention_reasons(window(**{figure: value}), Thresholds(**{figure: value + 1})) == []


def test_every_reason_at_once() -> None:
    busy = window(stall_pct=50, steal_pct=10, loadgen_cpu_pct=99, other_cpu_pct=40)
    assert len(machine.contention_reasons(busy)) == 4
    assert machine.contention_reasons(busy, Thresholds(stall_pct=60, steal_pct=20, loadgen_cpu_pct=100)) == [
        machine.contention_reasons(busy)[3]
    ]


@linux_only
def test_calibrate_measures_both_sides_and_stops_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    start = machine._start_raw_server

    def start_and_keep(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(machine, "_start_raw_server", start_and_keep)
    began = time.monotonic()
    calibration = machine.calibrate(requests=500, concurrency=4)
    assert time.monotonic() - began < 8
    for figure in (calibration.client_cpu_us_per_request, calibration.server_cpu_us_per_request):
        assert 0 < figure < 1e5 and math.isfinite(figure), calibration
    assert calibration.requests == 500 and calibration.concurrency == 4 and calibration.wall_s > 0
    assert calibration.to_dict()["throughput_rps"] == pytest.approx(500 / calibration.wall_s)
    assert "µs of client CPU" in calibration.summary()
    [server] = started
    assert server.returncode is not None  # stopped and reaped: the pid is gone
    assert server.pid not in procfs.children(os.getpid()) and procfs.cmdline(server.pid) == b""


@pytest.mark.parametrize(("requests", "concurrency"), [(0, 10), (100, 0), (2.5, 10), (True, 10)])
def test_calibrate_rejects_bad_arguments_before_starting_anything(requests: Any, concurrency: Any) -> None:
    before = procfs.children(os.getpid())
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        machine.calibrate(requests=requests, concurrency=concurrency)
    assert procfs.children(os.getpid()) == before


def test_describe_machine_is_json_for_results() -> None:
    described = machine.describe_machine()
    assert set(described) == {"cpu_model", "logical_cpus", "available_cores", "kernel", "python", "load_average_1_5_15"}
    assert described["logical_cpus"] == os.cpu_count()
    assert described["python"] == ".".join(map(str, sys.version_info[:3]))
    if hasattr(os, "sched_getaffinity"):
        assert described["available_cores"] == sorted(os.sched_getaffinity(0))
    json.dumps(described, allow_nan=False)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--serve-raw", "nine"], "expected an inherited socket's file descriptor, got 'nine'"),
        (["--serve-raw", "0"], "expected an inherited socket's file descriptor, got '0'"),  # stdin: not a socket
        (["--requests", "0"], "expected an integer >= 1, got '0'"),
    ],
)
def test_the_cli_rejects_bad_arguments_in_one_line(args: list[str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "support.bench.machine", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert words in cli_error_line(done, "python -m support.bench.machine")
