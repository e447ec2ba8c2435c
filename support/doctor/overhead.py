"""What the runtime detector costs: an idle event loop, without and with it, on this machine.

The cost is structural (one heartbeat callback on the loop and one watchdog wake-up per
interval, whatever the traffic, and one thread), so that is what a test can assert; the
CPU it adds is a measurement of this machine at this moment, to print, not to assert.

``python -m support.doctor.overhead`` prints it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextvars import Context
from dataclasses import dataclass
from typing import Any

from .runtime import BlockingDetector

__all__ = ["CountingLoop", "Idle", "Overhead", "idle", "measure_overhead"]


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the callbacks scheduled on it: timers (``call_later`` goes
    through ``call_at``) and ``call_soon`` (a busy loop would show up there)."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks = 0

    def call_at(  # type: ignore[override]  # the same call, without the stub's TypeVarTuple
        self, when: float, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.TimerHandle:
        self.callbacks += 1
        return super().call_at(when, callback, *args, context=context)

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.Handle:
        self.callbacks += 1
        return super().call_soon(callback, *args, context=context)


@dataclass
class Idle:
    """What an idle loop cost over `elapsed_s`: callbacks scheduled, CPU (the whole process), threads started."""

    elapsed_s: float
    callbacks: int
    cpu_s: float
    new_threads: list[str]

    @property
    def cpu_ms_per_s(self) -> float:
        return self.cpu_s * 1000 / self.elapsed_s


def idle(seconds: float, detector: BlockingDetector | None) -> Idle:
    """Run an idle loop (a new `CountingLoop`, in this thread) for `seconds`, watched by `detector` or not."""

    async def run() -> tuple[float, float, list[str]]:
        before = {t.ident for t in threading.enumerate()}
        started, cpu = time.monotonic(), time.process_time()
        if detector is not None:
            async with detector:
                await asyncio.sleep(seconds)
                during = [t.name for t in threading.enumerate() if t.ident not in before]
        else:
            await asyncio.sleep(seconds)
            during = [t.name for t in threading.enumerate() if t.ident not in before]
        return time.monotonic() - started, time.process_time() - cpu, during

    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        elapsed, cpu_s, during = runner.run(run())
        loop = runner.get_loop()
        assert isinstance(loop, CountingLoop)
        callbacks = loop.callbacks
    return Idle(elapsed, callbacks, cpu_s, during)


@dataclass
class Overhead:
    threshold: float
    interval: float
    without: Idle
    watched: Idle

    @property
    def heartbeats(self) -> int:
        """Callbacks the detector added to the loop."""
        return self.watched.callbacks - self.without.callbacks

    @property
    def added_cpu_ms_per_s(self) -> float:
        return self.watched.cpu_ms_per_s - self.without.cpu_ms_per_s

    def summary(self) -> str:
        return (
            f"threshold {self.threshold:.3f} s, interval {self.interval:.3f} s: "
            f"{self.heartbeats} heartbeats in {self.watched.elapsed_s:.2f} s, new threads {self.watched.new_threads}; "
            f"idle loop CPU {self.without.cpu_ms_per_s:.2f} ms per second without the detector, "
            f"{self.watched.cpu_ms_per_s:.2f} with it: {self.added_cpu_ms_per_s / 10:.2f} % of one core added"
        )


def measure_overhead(seconds: float = 1.0, threshold: float = 0.1) -> Overhead:
    """An idle loop for `seconds` without, then with, a detector of `threshold` (in a thread of its own
    when called from a running loop, since each run needs a loop of its own)."""

    def both() -> Overhead:
        without = idle(seconds, None)
        detector = BlockingDetector(threshold)
        return Overhead(threshold, detector.interval, without, idle(seconds, detector))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return both()
    result: list[Overhead] = []
    worker = threading.Thread(target=lambda: result.append(both()), name="overhead-probe")
    worker.start()
    worker.join()
    return result[0]


if __name__ == "__main__":
    print(measure_overhead().summary())
