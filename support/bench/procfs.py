"""The one reader of Linux's /proc: CPU time, CPU stall, memory, threads, child processes.

Every function degrades instead of failing where /proc (or a file in it) is missing:
NaN for a figure, an empty result for a listing. A benchmark row then shows "-" rather
than crashing on another OS.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

__all__ = [
    "MACHINE_CPU_FIELDS",
    "children",
    "cmdline",
    "cpu_models",
    "cpu_seconds",
    "cpu_stall_seconds",
    "kib",
    "machine_cpu_times",
    "peak_rss_mib",
    "precise_cpu_seconds",
    "reset_peak_rss",
    "status_fields",
    "thread_ids",
]

Pid = int | str  # a process id, or "self"


def status_fields(pid: Pid = "self") -> dict[str, str]:
    """``/proc/PID/status`` as ``{"Threads": "7", "VmRSS": "51200 kB", ...}`` (empty without /proc)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    return {name: value.strip() for name, _, value in (line.partition(":") for line in text.splitlines()) if value}


def kib(fields: dict[str, str], name: str) -> int | None:
    """A ``kB`` field of `status_fields` as an integer, or None when absent."""
    value = fields.get(name)
    return int(value.split()[0]) if value else None


def cpu_seconds(pid: Pid = "self") -> float:
    """User + system CPU time of a process, from ``/proc/PID/stat`` (NaN without /proc)."""
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_stall_seconds() -> float:
    """Seconds during which some runnable task waited for a CPU, machine-wide (Linux PSI;
    NaN without it): high values mean other processes competed with a measurement."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return math.nan
    return int(some.rpartition("total=")[2]) / 1e6


def peak_rss_mib(pid: Pid = "self") -> float:
    """The process's peak resident memory (VmHWM) in MiB (NaN without /proc)."""
    peak = kib(status_fields(pid), "VmHWM")
    return math.nan if peak is None else peak / 1024


def reset_peak_rss(pid: Pid = "self") -> None:
    """Start a new peak: VmHWM restarts from the current RSS (Linux 4.0+); nothing without /proc
    or once the process is gone."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def children(pid: int) -> list[int]:
    """The direct children of `pid` (empty without /proc)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> bytes:
    """The process's command line, NUL-separated (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


MACHINE_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def machine_cpu_times(stat_text: str | None = None) -> dict[str, float]:
    """Machine-wide CPU time since boot, summed over CPUs, in seconds, by kind (``user``,
    ``system``, ``idle``, ``steal``, ...; see `MACHINE_CPU_FIELDS`): the first ``cpu`` line of
    `stat_text`, or of ``/proc/stat`` when None. Empty without it; older kernels give fewer kinds."""
    if stat_text is None:
        try:
            stat_text = Path("/proc/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            return {}
    first = next((line.split() for line in stat_text.splitlines() if line.startswith("cpu ")), None)
    try:
        ticks = [int(value) for value in first[1:]] if first else []
    except ValueError:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    return {name: n / hz for name, n in zip(MACHINE_CPU_FIELDS, ticks, strict=False)}


def cpu_models(cpuinfo_text: str | None = None) -> list[str]:
    """The ``model name`` of every logical CPU, in order, from `cpuinfo_text` or ``/proc/cpuinfo``
    when None (empty without it, or on architectures whose cpuinfo has no such line)."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    return [
        value.strip()
        for name, _, value in (line.partition(":") for line in cpuinfo_text.splitlines())
        if name.strip() == "model name"
    ]


def thread_ids(pid: Pid = "self") -> list[int]:
    """The ids of the process's threads, the main one included (empty once it is gone)."""
    try:
        return sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def precise_cpu_seconds(pid: Pid = "self") -> float:
    """CPU time of the process's live threads in nanoseconds' resolution, from
    ``/proc/PID/task/*/schedstat``, for windows too short for `cpu_seconds`' clock ticks.
    Threads that have exited are not counted; NaN without /proc or once the process is gone."""
    total, found = 0, False
    for tid in thread_ids(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that exits meanwhile
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            found = True
    return total / 1e9 if found else math.nan
