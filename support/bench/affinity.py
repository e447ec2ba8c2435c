"""Pin the benchmark's processes to cores, so the service under test has one to itself.

On a machine with few shared cores, the load generator, the bundled upstream and the
service compete for the same CPUs, and the scheduler hands them out as it likes. A
service that loses its core to the load generator for a moment looks slow, though it
was only waiting. With a core of its own (and everyone else kept off it), the service's
figures describe the service. `plan` decides who gets which cores; `pin`, `pin_self`
and `preexec` apply it.

Only a single-process service is pinned to one core: two workers pinned to one core
would take turns on it, which defeats having two. `plan` gives a service of N workers N
cores, and nothing (None) when that leaves no core for the others.

Linux sets affinity per thread, and a new thread inherits its creator's. So `pin` sets
it on every thread a process has, and `preexec` sets it in a child before it starts any.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import procfs

__all__ = ["Placement", "affinity_of", "pin", "pin_self", "plan", "preexec"]

_MAX_ROUNDS = 100  # bounds `pin` on a process that starts threads without end


def _cores(cores: Iterable[int]) -> frozenset[int]:
    """`cores` as a set, checked: a precise error here rather than EINVAL from the kernel."""
    found = frozenset(cores)
    if not found:
        raise ValueError("no cores given: a process needs at least one to run on")
    bad = sorted((c for c in found if not isinstance(c, int) or isinstance(c, bool) or c < 0), key=repr)
    if bad:
        raise ValueError(f"cores are integers >= 0, got {bad}")
    return found


def _spell(cores: frozenset[int]) -> str:
    """``{0}`` -> "core 0"; ``{0, 1, 2, 5}`` -> "cores 0-2, 5"."""
    runs: list[list[int]] = []
    for core in sorted(cores):
        if runs and core == runs[-1][-1] + 1:
            runs[-1].append(core)
        else:
            runs.append([core])
    text = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    return ("core " if len(cores) == 1 else "cores ") + text


@dataclass(frozen=True)
class Placement:
    """Which cores the service runs on, and which the upstream and the load generator share."""

    service: frozenset[int]
    others: frozenset[int]

    def __post_init__(self) -> None:
        if self.service & self.others:
            raise ValueError(f"the service and the others share {_spell(self.service & self.others)}")

    def describe(self) -> str:
        """``"service on core 1; upstream and load generator on core 0"``."""
        return f"service on {_spell(self.service)}; upstream and load generator on {_spell(self.others)}"


def plan(available: Iterable[int] | None = None, *, workers: int = 1) -> Placement | None:
    """Give a service of `workers` processes the highest cores of `available` (default: the
    cores this process may use), one each, and everything else the rest; None when there is
    nothing to separate (fewer cores than workers + 1)."""
    cores = _cores(os.sched_getaffinity(0) if available is None else available)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if len(cores) <= workers:
        return None
    ordered = sorted(cores)
    return Placement(service=frozenset(ordered[-workers:]), others=frozenset(ordered[:-workers]))


def pin(pid: int, cores: Iterable[int]) -> None:
    """Run every thread of process `pid` on `cores` only. Threads that exit meanwhile are
    skipped, and threads started meanwhile are pinned too. Raises ProcessLookupError when
    the process is gone, ValueError when none of `cores` is usable, PermissionError for
    another user's process."""
    mask = _cores(cores)
    done: set[int] = set()
    for _ in range(_MAX_ROUNDS):  # a thread may start another while we pin: again until none is new
        new = [tid for tid in procfs.thread_ids(pid) if tid not in done]
        if not new:
            break
        for tid in new:
            done.add(tid)
            try:
                os.sched_setaffinity(tid, mask)
            except ProcessLookupError:  # the thread exited
                pass
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    raise ValueError(
                        f"cannot pin process {pid} to {_spell(mask)}: none of them is online and allowed to it"
                    ) from None
                raise
    if not done or not os.path.exists(f"/proc/{pid}"):
        raise ProcessLookupError(f"no process {pid}")


def pin_self(cores: Iterable[int]) -> None:
    """Run every thread of this process on `cores` only; the threads and processes it starts later inherit them."""
    pin(os.getpid(), cores)


def affinity_of(pid: int) -> set[int]:
    """The cores the main thread of process `pid` may run on (ProcessLookupError when it is gone)."""
    return os.sched_getaffinity(pid)


def preexec(cores: Iterable[int], *also: Callable[[], None]) -> Callable[[], None]:
    """A ``subprocess.Popen(preexec_fn=...)`` that sets the child's affinity to `cores` before
    it executes anything, so every thread it ever starts inherits it; then calls each of
    `also` (e.g. ``processes.die_with_parent``). `cores` is checked here, in the parent:
    an error inside preexec_fn reaches the caller only as a vague SubprocessError."""
    mask = _cores(cores)

    def set_affinity() -> None:
        os.sched_setaffinity(0, mask)
        for step in also:
            step()

    return set_affinity
