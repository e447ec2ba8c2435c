"""Start a service under ``uvicorn --workers N`` or gunicorn, as real child processes.

The commands are the ones a deployment runs (``python -m uvicorn ...``, ``python -m
gunicorn -c ... -k uvicorn_worker.UvicornWorker ...``), on a free loopback port. `start`
returns once the master has every worker and the service answers; leaving the ``with``
block stops the master with a signal and kills what is left of its process group, so no
worker outlives a failed cell. `Deployed.stop` times the exit, which is what the
graceful-shutdown demonstrations measure.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
import psutil

from ..bench.processes import PROJECT_ROOT, die_with_parent

__all__ = [
    "DeployError",
    "Deployed",
    "Exit",
    "free_port",
    "gunicorn_command",
    "start",
    "template_env",
    "uvicorn_command",
]

Kind = Literal["uvicorn", "gunicorn"]
GUNICORN_CONF = "support/apps/hardened/gunicorn.conf.py"


class DeployError(RuntimeError):
    """The service did not start (the message quotes the last lines of its log, never the environment)."""


@dataclass(frozen=True)
class Exit:
    """How a stopped master ended: its exit status (negative: the signal) and how long it took."""

    returncode: int
    seconds: float


def template_env(base_url: str, api_key: str, model: str, **settings: str | int) -> dict[str, str]:
    """The environment the template reads: the SDK's variables, a fresh caller token and
    ``SERVICE_*`` settings given as keyword arguments (``max_concurrency=2``)."""
    env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": api_key, "OPENAI_MODEL": model, "SERVICE_MODEL": model}
    env["SERVICE_TOKENS"] = "caller-" + secrets.token_urlsafe(12)
    env |= {f"SERVICE_{name.upper()}": str(value) for name, value in settings.items()}
    return env


def free_port() -> int:
    """A loopback port nobody listens on right now (bound, then released for the server to take)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_command(app: str, *, port: int, workers: int, extra: Sequence[str] = ()) -> list[str]:
    """``uvicorn APP --workers N`` on 127.0.0.1:PORT, as an argument list."""
    return [
        *("python", "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(workers), *extra),
    ]


def gunicorn_command(
    app: str, *, port: int, workers: int, config: str | None = GUNICORN_CONF, extra: Sequence[str] = ()
) -> list[str]:
    """``gunicorn -c CONFIG APP`` with the bind and worker count from the command line, which
    gunicorn lets override the config file; without a config, the uvicorn worker class is named."""
    head = ["python", "-m", "gunicorn"] + (["-c", config] if config else ["-k", "uvicorn_worker.UvicornWorker"])
    return [*head, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *extra, app]


@dataclass
class Deployed:
    """A running master and its workers."""

    kind: Kind
    command: list[str]
    process: subprocess.Popen[bytes]
    base_url: str
    workers: int
    log_path: Path
    exit: Exit | None = field(default=None)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def shown_command(self) -> str:
        """The command line as a reader would type it (``python`` is the project's venv), its
        free port shown as ``PORT``."""
        return shlex.join(self.command).replace(f":{self.port} ", ":PORT ").replace(f" {self.port} ", " PORT ")

    def log_lines(self, *fragments: str, bare: bool = False) -> list[str]:
        """The log's lines that contain any of `fragments`; `bare` drops gunicorn's
        ``[time] [pid]`` prefix and writes every ``pid:1234`` as ``pid:N``."""
        lines = [line for line in self.log().splitlines() if any(f in line for f in fragments)]
        if bare:
            lines = [re.sub(r"pid:\d+", "pid:N", re.sub(r"^\[[^]]*\] \[\d+\] ", "", line)) for line in lines]
        return lines

    def exceptions(self) -> list[str]:
        """The lines of the log that name an exception and its message (``httpx2.ReadError: ...``),
        the causes of a chained one included."""
        return [line for line in self.log().splitlines() if re.match(r"[\w.]+(Error|Exception)\b.*: ", line)]

    def worker_pids(self) -> list[int]:
        """The serving processes, sorted: the master's children (multiprocessing's resource tracker
        is not one), or uvicorn itself when it runs a single worker in its own process."""
        if self.kind == "uvicorn" and self.workers == 1:
            return [self.process.pid] if self.process.poll() is None else []
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:
                continue
        return sorted(pids)

    def log(self) -> str:
        """What the master and its workers wrote to stderr and stdout so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_workers(self, n: int, *, timeout_s: float = 20.0, exclude: Sequence[int] = ()) -> list[int]:
        """Wait until the master has `n` workers, none of them in `exclude` (a replaced worker)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.worker_pids()
            if len(pids) == n and not set(pids) & set(exclude):
                return pids
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise DeployError(f"{self.kind}: expected {n} workers, have {pids}\n{_tail(self.log())}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, *, timeout_s: float = 30.0) -> Exit:
        """Send `sig` to the master and wait for it to exit; SIGKILL the group past `timeout_s`."""
        if self.exit is not None:
            return self.exit
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(self.process.pid)
            self.process.wait()
        self.exit = Exit(self.process.returncode, time.monotonic() - started)
        _kill_group(self.process.pid)  # a worker that outlived its master goes too
        return self.exit

    def __enter__(self) -> Deployed:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(timeout_s=2.0)  # a worker stuck in a blocking call would hold gunicorn for its graceful_timeout
        self.log_path.unlink(missing_ok=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def start(
    kind: Kind,
    app: str,
    *,
    workers: int,
    env: Mapping[str, str],
    extra: Sequence[str] = (),
    config: str | None = GUNICORN_CONF,
    ready_path: str = "/healthz",
    port: int | None = None,
    timeout_s: float = 30.0,
) -> Deployed:
    """Start `app` under `kind` with `workers` workers; return once each is up and `ready_path` answers 200.

    `env` is added to this process's environment (the service's settings, the upstream's
    key). A master that exits, or a service that is not ready within `timeout_s`, raises
    `DeployError` quoting its log; nothing it started is left running.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    port = free_port() if port is None else port
    if kind == "uvicorn":
        command = uvicorn_command(app, port=port, workers=workers, extra=extra)
    elif kind == "gunicorn":
        command = gunicorn_command(app, port=port, workers=workers, config=config, extra=extra)
    else:
        raise ValueError(f"kind must be 'uvicorn' or 'gunicorn', not {kind!r}")
    fd, name = tempfile.mkstemp(prefix=f"{kind}-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *command[1:]],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the cleanup kills the workers too
            preexec_fn=die_with_parent,
        )
    deployed = Deployed(kind, command, process, f"http://127.0.0.1:{port}", workers, log_path)
    try:
        _wait_ready(deployed, ready_path, timeout_s)
    except BaseException:
        deployed.stop(signal.SIGKILL, timeout_s=5.0)
        raise
    return deployed


def _wait_ready(deployed: Deployed, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        returncode = deployed.process.poll()
        if returncode is not None:
            raise DeployError(f"{deployed.kind} exited with status {returncode}:\n{_tail(deployed.log())}")
        if len(deployed.worker_pids()) >= deployed.workers:
            try:
                if httpx.get(deployed.base_url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise DeployError(f"{deployed.kind} was not ready within {timeout_s:g} s:\n{_tail(deployed.log())}")
        time.sleep(0.05)
