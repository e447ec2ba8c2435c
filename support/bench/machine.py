"""Tell a busy or slow machine from a slow service: what else used the CPUs, and what a request costs here.

A service that looks slow may be slow, or it may have waited for a CPU that something
else held: another process, another virtual machine (steal), or the load generator
itself. A `Watch` over a measurement window reads all of these from /proc, and
`contention_reasons` says in words which of them exceeded its threshold. `calibrate`
measures the CPU cost of a raw HTTP request on this machine, so that figures from two
machines can be compared as multiples of it; `describe_machine` records the rest.

``python -m support.bench.machine`` prints the description and a calibration as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, cast

from . import eventloop, procfs
from .errors import BenchError
from .loadgen import RequestSpec, new_session, run_load
from .processes import start_child, stop_process

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Calibration",
    "MachineWindow",
    "Thresholds",
    "Watch",
    "busy_seconds",
    "calibrate",
    "contention_reasons",
    "cpu_model",
    "describe_machine",
    "online_cpus",
    "steal_seconds",
]

BUSY_KINDS = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is already inside user
PROCESS_KINDS = ("user", "nice", "system")  # what processes' own utime + stime add up to


def cpu_model(cpuinfo_text: str | None = None) -> str:
    """``"2 x AMD EPYC ..."``: the first CPU's model and how many logical CPUs report one
    (from `cpuinfo_text`, or /proc/cpuinfo when None); else ``platform.processor()`` or ``"unknown"``."""
    models = procfs.cpu_models(cpuinfo_text)
    if models:
        return f"{len(models)} x {models[0]}"
    return platform.processor() or "unknown"


def online_cpus() -> int:
    """The CPUs /proc/stat sums over: every online CPU, not only those this process may use."""
    try:
        return max(1, os.sysconf("SC_NPROCESSORS_ONLN"))
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _sum_kinds(times: dict[str, float], kinds: tuple[str, ...]) -> float:
    return sum(times[k] for k in kinds) if all(k in times for k in kinds) else math.nan


def steal_seconds(stat_text: str | None = None) -> float:
    """CPU time the hypervisor gave to other guests while this machine's CPUs wanted it,
    summed over CPUs, since boot (from `stat_text`, or /proc/stat when None; NaN without it)."""
    return _sum_kinds(procfs.machine_cpu_times(stat_text), ("steal",))


def busy_seconds(stat_text: str | None = None) -> float:
    """Non-idle CPU time, summed over CPUs, since boot: user, nice, system, irq, softirq and
    steal (from `stat_text`, or /proc/stat when None; NaN without it)."""
    return _sum_kinds(procfs.machine_cpu_times(stat_text), BUSY_KINDS)


def _pct(part: float, whole: float) -> float:
    return 100 * part / whole if whole > 0 else math.nan


@dataclass(frozen=True)
class MachineWindow:
    """What the machine did during one measurement window. NaN: not measurable here."""

    wall_s: float
    cpus: int  # online CPUs: the machine's capacity is wall_s x cpus
    stall_pct: float  # share of the window some runnable task waited for a CPU (PSI cpu "some")
    steal_pct: float  # CPU time taken by other virtual machines, % of the machine's capacity
    loadgen_cpu_pct: float  # this process's CPU, % of one core: near 100 the load generator is saturated
    other_cpu_pct: float = math.nan  # processes outside the benchmark, % of capacity (NaN unless pids were given)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable (NaN becomes None)."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _Reading:
    at: float
    loadgen: float
    measured: float
    processes: float
    steal: float
    stall: float

    @classmethod
    def now(cls, pids: tuple[int, ...]) -> _Reading:
        machine = procfs.machine_cpu_times()
        return cls(
            at=time.monotonic(),
            loadgen=procfs.cpu_seconds(),
            measured=sum(procfs.cpu_seconds(pid) for pid in pids),
            processes=_sum_kinds(machine, PROCESS_KINDS),
            steal=_sum_kinds(machine, ("steal",)),
            stall=procfs.cpu_stall_seconds(),
        )


class Watch:
    """Watch the machine over a window, from its creation (or the last `start`) to `stop`:
    ``watch = Watch(pids)`` ... ``window = watch.stop()``, or ``with Watch(pids) as watch: ...``
    then ``watch.window``.

    `pids` are the processes under measurement (service, upstream), besides this one (the
    load generator). With them, `MachineWindow.other_cpu_pct` is what every other process
    used: the machine's process time (user, nice, system) minus theirs and this process's.
    Interrupt time is left out of it, since on loopback it carries the benchmark's own
    traffic, and steal is reported apart; a process that started and ended inside the
    window counts as other. Without `pids` (None) that figure is NaN, since the service's
    CPU would read as other work; pass ``()`` when this process is all there is to measure.
    """

    def __init__(self, pids: Iterable[int] | None = None) -> None:
        self.pids = None if pids is None else tuple(pids)
        self.window: MachineWindow | None = None
        self._start: _Reading | None = None
        self.start()

    def start(self) -> Watch:
        """(Re)start the window now."""
        self.window = None
        self._start = _Reading.now(self.pids or ())
        return self

    def stop(self) -> MachineWindow:
        """End the window and return it (also kept as `window`)."""
        if self._start is None:
            raise RuntimeError("this Watch was stopped already: start() it again first")
        start, end = self._start, _Reading.now(self.pids or ())
        self._start = None
        wall = end.at - start.at
        cpus = online_cpus()
        other = math.nan
        if self.pids is not None:
            used_by_benchmark = (end.loadgen - start.loadgen) + (end.measured - start.measured)
            # /proc/stat counts whole ticks, a process's own time is finer: never report less than nothing
            other = max(0.0, _pct((end.processes - start.processes) - used_by_benchmark, wall * cpus))
        self.window = MachineWindow(
            wall_s=wall,
            cpus=cpus,
            stall_pct=_pct(end.stall - start.stall, wall),
            steal_pct=_pct(end.steal - start.steal, wall * cpus),
            loadgen_cpu_pct=_pct(end.loadgen - start.loadgen, wall),
            other_cpu_pct=other,
        )
        return self.window

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Thresholds:
    """Above these, a window's figures describe the machine as much as the service.

    - `stall_pct` 10: PSI counts any moment some runnable task waited for a CPU. The
      benchmark's own processes cause a little; a tenth of the window means requests
      were queued behind a CPU often enough to move the tail latencies.
    - `steal_pct` 2: on a host with no noisy neighbour steal stays near zero, so a couple
      of percent of the machine already means another guest took CPUs, in bursts that
      land on some requests and stretch the tail more than the average suggests.
    - `loadgen_cpu_pct` 80: the load generator runs one event loop, at most one core.
      Busy most of the time, it sends requests late and reads replies late, and the
      latency it records includes its own queueing: the service would look slower.
    - `other_cpu_pct` 10: background daemons on a quiet machine use a few percent. Above
      a tenth of the machine (a fifth of a core on two cores), other work competed with
      the measured processes for CPU enough to shift a comparison between runs.
    """

    stall_pct: float = 10.0
    steal_pct: float = 2.0
    loadgen_cpu_pct: float = 80.0
    other_cpu_pct: float = 10.0


DEFAULT_THRESHOLDS = Thresholds()


def contention_reasons(window: MachineWindow, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str]:
    """Why `window` was contended, one sentence per figure above its threshold; empty when
    clean. A NaN figure (not measurable here) is never a reason."""
    checks = (
        (window.stall_pct, thresholds.stall_pct, "CPU stall {:.0f}% of the window (> {:.0f}%): tasks waited for a CPU"),
        (window.steal_pct, thresholds.steal_pct, "steal {:.1f}% of the CPUs (> {:.1f}%): other virtual machines ran"),
        (
            window.loadgen_cpu_pct,
            thresholds.loadgen_cpu_pct,
            "load generator at {:.0f}% of a core (> {:.0f}%): it may be the bottleneck",
        ),
        (
            window.other_cpu_pct,
            thresholds.other_cpu_pct,
            "other processes used {:.0f}% of the CPUs (> {:.0f}%): the machine was not quiet",
        ),
    )
    return [text.format(value, limit) for value, limit, text in checks if value > limit]  # NaN > x is False


# --- calibration: the CPU cost of a raw HTTP request on this machine -------------------------

RAW_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
READY = b"ready\n"


class _RawHttp(asyncio.Protocol):
    """Answers every request head with `RAW_RESPONSE`, keeping the connection open. Enough for
    bodiless GETs: the cheapest server there is, so its CPU is the floor a framework adds to."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport, self.pending = cast(asyncio.Transport, transport), b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        heads = self.pending.count(b"\r\n\r\n")
        if heads:
            self.pending = self.pending.rpartition(b"\r\n\r\n")[2]
            self.transport.write(RAW_RESPONSE * heads)


async def _serve_raw(sock: socket.socket) -> None:
    server = await asyncio.get_running_loop().create_server(_RawHttp, sock=sock)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    await server.serve_forever()


@dataclass(frozen=True)
class Calibration:
    """The CPU cost of one raw HTTP/1.1 keep-alive GET here: divide a service's CPU per request
    by these to compare machines."""

    requests: int
    concurrency: int
    wall_s: float
    client_cpu_us_per_request: float  # aiohttp client (this process)
    server_cpu_us_per_request: float  # the raw asyncio server (a child process)

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        """One line for a report."""
        return (
            f"a raw HTTP request costs {self.client_cpu_us_per_request:.0f} µs of client CPU and "
            f"{self.server_cpu_us_per_request:.0f} µs of server CPU here "
            f"({self.requests} requests, {self.concurrency} clients, {self.wall_s:.2f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "throughput_rps": self.throughput_rps}


def _start_raw_server(sock: socket.socket, timeout_s: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "support.bench.machine", "--serve-raw", str(sock.fileno())]
    proc, line = start_child(cmd, startup_timeout_s=timeout_s, pass_fds=(sock.fileno(),))
    if line != READY.decode().strip():
        stop_process(proc)
        assert proc.stdout is not None
        proc.stdout.close()
        raise BenchError(f"the raw HTTP server did not start (exit code {proc.poll()})")
    return proc


def _check_all_ok(ok: int, sent: int, statuses: Mapping[int | str, int]) -> None:
    if ok != sent:
        raise BenchError(f"calibration: {sent - ok} of {sent} requests to the raw server failed: {dict(statuses)}")


async def _drive(url: str, server_pid: int, requests: int, concurrency: int) -> Calibration:
    spec = RequestSpec("GET", url)
    async with new_session() as session:
        # Open the connections first: a request's cost, not a handshake's.
        warm = await run_load(spec, concurrency=concurrency, n_requests=5 * concurrency, timeout_s=30, session=session)
        _check_all_ok(warm.ok, warm.n_requests, warm.statuses)
        # The run is short: clock ticks (procfs.cpu_seconds) would round it to a few of them.
        client0, server0 = time.process_time(), procfs.precise_cpu_seconds(server_pid)
        result = await run_load(spec, concurrency=concurrency, n_requests=requests, timeout_s=60, session=session)
        client1, server1 = time.process_time(), procfs.precise_cpu_seconds(server_pid)
    _check_all_ok(result.ok, requests, result.statuses)
    return Calibration(
        requests=requests,
        concurrency=concurrency,
        wall_s=result.wall_s,
        client_cpu_us_per_request=1e6 * (client1 - client0) / requests,
        server_cpu_us_per_request=1e6 * (server1 - server0) / requests,
    )


def calibrate(requests: int = 2000, concurrency: int = 10, *, startup_timeout_s: float = 30.0) -> Calibration:
    """Drive a raw asyncio HTTP server (in a child process, so its CPU is its own) with the
    load generator, and return the CPU each side spent per request. Costs a second or two."""
    for name, value in (("requests", requests), ("concurrency", concurrency)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.set_inheritable(True)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        proc = _start_raw_server(sock, startup_timeout_s)
        try:
            return eventloop.run(_drive(url, proc.pid, requests, concurrency))
        finally:
            stop_process(proc, timeout_s=3)
            assert proc.stdout is not None
            proc.stdout.close()


def describe_machine() -> dict[str, Any]:
    """The machine a result came from, for results.json."""
    try:
        available: list[int] | None = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = None
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "available_cores": available,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_1_5_15": load,
    }


# --- command line ---------------------------------------------------------------------------


def _listening_socket(text: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=int(text))
    except (ValueError, OSError):
        raise argparse.ArgumentTypeError(f"expected an inherited socket's file descriptor, got {text!r}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise argparse.ArgumentTypeError(f"file descriptor {text} is not a listening TCP socket")
    return sock


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m support.bench.machine",
        description="Describe this machine and measure the CPU cost of a raw HTTP request on it (JSON on stdout).",
    )
    parser.add_argument("--requests", type=_positive, default=2000, help="requests to time (default: %(default)s)")
    parser.add_argument("--concurrency", type=_positive, default=10, help="clients (default: %(default)s)")
    parser.add_argument("--serve-raw", type=_listening_socket, metavar="FD", help="(internal) serve calibration")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve_raw is not None:  # until SIGTERM (its own session: a Ctrl-C reaches the parent only)
        eventloop.run(_serve_raw(args.serve_raw))
        return 0
    try:
        calibration = calibrate(args.requests, args.concurrency)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except (BenchError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"machine": describe_machine(), "calibration": calibration.to_dict()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
