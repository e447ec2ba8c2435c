"""What each process of a deployment costs in memory: USS and PSS, from psutil.

RSS counts every page a process maps, shared ones included, so adding up the workers'
RSS counts the interpreter's shared pages once per worker. Two better numbers come from
``psutil.Process.memory_full_info()`` (``/proc/PID/smaps_rollup`` on Linux):

- USS, unique set size: the pages only this process maps; what stopping it gives back,
  so the cost of one more worker;
- PSS, proportional set size: its own pages plus its share of the shared ones; the PSS of
  all processes adds up to what the deployment holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from ..tables import text_table
from .servers import Deployed

__all__ = ["ProcessMemory", "deployment_memory", "memory_table"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class ProcessMemory:
    role: str  # "master" or "worker 1", ...
    pid: int
    rss: int  # bytes
    uss: int
    pss: int


def _measure(role: str, pid: int) -> ProcessMemory:
    info = psutil.Process(pid).memory_full_info()
    return ProcessMemory(role, pid, info.rss, info.uss, getattr(info, "pss", info.uss))


def deployment_memory(deployed: Deployed) -> list[ProcessMemory]:
    """The master and each worker (the master alone when it is the only process)."""
    rows = [_measure("master", deployed.process.pid)]
    workers = [pid for pid in deployed.worker_pids() if pid != deployed.process.pid]
    rows += [_measure(f"worker {i}", pid) for i, pid in enumerate(workers, 1)]
    return rows


def memory_table(rows: Sequence[ProcessMemory]) -> str:
    """One line per process and a total, in MiB."""
    body = [[r.role, f"{r.rss / MIB:.1f}", f"{r.uss / MIB:.1f}", f"{r.pss / MIB:.1f}"] for r in rows]
    total = ["total", f"{sum(r.rss for r in rows) / MIB:.1f}", f"{sum(r.uss for r in rows) / MIB:.1f}"]
    body.append([*total, f"{sum(r.pss for r in rows) / MIB:.1f}"])
    return text_table([["process", "RSS MiB", "USS MiB", "PSS MiB"], *body], rule=True)
