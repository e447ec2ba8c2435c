"""What the hardened service's tests share: secrets, stacks (upstream, service, client), error and leak checks.

The hardened service keeps its promises: the status table, the deadline, cleanup, shedding.

`support.apps.hardened` documents (in ``errors.py``) what a caller gets for every way a
call can fail. The tests in this folder hold it to that, end to end: the real `openai`
SDK inside the service talks over real sockets to the bundled upstream, which injects the
faults and keeps a journal of what it received. Nothing is mocked, so a claim like "quota
errors are not retried" is checked by counting the requests the upstream actually saw.

What is proved, one file per concern, and why it matters in production:

- ``test_fault_matrix``: the fault matrix (`support.faultmatrix.MATRIX`): status, error
  code and upstream attempts as documented, inside the deadline, with an OpenAI-shaped
  error body that carries the request id, ``Retry-After`` where promised, and no key,
  token or traceback in any body, header or log line;
- ``test_deadline``: the deadline bounds a request even when the read timeout would not;
- ``test_abandoned_stream``: a caller who walks away from a stream stops the upstream (no
  tokens billed for nobody) and frees its concurrency slot;
- ``test_bad_input``: bad input (fuzzed with hypothesis) is a 413 or 422, never a 5xx, and
  costs no upstream call; a caller without a valid token gets 401 and costs nothing either;
- ``test_overload``: overload is shed at once with 503 + ``Retry-After``, the upstream
  never sees more than the limit, and the service recovers;
- ``test_startup``: bad configuration stops startup with a message naming the variable,
  never its value;
- ``test_request_ids``, ``test_auth``, ``test_cost_guards``: request ids and the one JSON
  log line per request, service-token auth, and cost guards;
- ``test_attacks_door``, ``test_attacks_limits``: an outsider's attacks, over raw sockets,
  on the service in its own process (`service_process`) where they need the real server:
  no path reaches a route without a token (root paths, odd spellings), and the limits on
  heads, idle connections, slow bodies, connections and descriptors hold.

This conftest holds what they share: the secrets that must never leak, the stacks (an
upstream, the service in front of it, a client) as package-scoped fixtures (one of each
for the whole folder), and the assertions on error bodies, log lines and leaks.

Timing claims use generous bounds only: the machine is shared and noisy. Where the
service answers before it logs (the log line is written after the last byte is sent),
the tests poll briefly (`tests.conftest.wait_until`) instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.apps.hardened import Settings, create_app
from support.bench import procfs
from support.faultmatrix import MATRIX_SETTINGS
from support.serve import RunningServer, serve_in_thread
from support.upstream import RunningUpstream, upstream_in_thread
from tests.conftest import ROOT, wait_until

UPSTREAM_KEY = "sk-canary-" + "c4n4ry" * 6  # shaped like a real key, so any leak is unmistakable
TOKEN_A = "svc-canary-a-" + "t0k3n" * 6
TOKEN_B = "svc-canary-b-" + "t0k3n" * 6
SECRETS = (UPSTREAM_KEY, TOKEN_A, TOKEN_B, "c4n4ryc4n4ry", "t0k3nt0k3n")  # the fragments catch partial echoes
AUTH = {"Authorization": f"Bearer {TOKEN_A}"}
LOGGER = "support.apps.hardened"
BODY = {"messages": [{"role": "user", "content": "Say something short."}]}
ERROR_KEYS = {"message", "type", "param", "code", "request_id", "upstream_request_id"}


# --- stacks: an upstream, the service in front of it, and a client ------------------------------


@dataclass
class Stack:
    """The service running against an upstream, with a client holding a valid token."""

    upstream: RunningUpstream
    server: RunningServer
    client: httpx.Client
    settings: Settings

    def journal_size(self) -> int:
        return len(self.upstream.journal)

    def readyz(self) -> dict[str, Any]:
        response = self.client.get("/readyz")
        assert response.status_code == 200, response.text
        return response.json()


def service_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "tokens": f"{TOKEN_A},{TOKEN_B}",
        "openai_api_key": UPSTREAM_KEY,
        "openai_base_url": base_url,
        **MATRIX_SETTINGS,
    }
    return Settings(**{**values, **overrides})


@contextlib.contextmanager
def running_service(upstream: RunningUpstream, **overrides: Any) -> Iterator[Stack]:
    """The service (MATRIX_SETTINGS unless overridden) in front of `upstream`."""
    chosen = service_settings(upstream.base_url, **overrides)
    with (
        serve_in_thread(create_app(chosen)) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as client,
    ):
        yield Stack(upstream, server, client, chosen)


MODULE_COMMAND = (sys.executable, "-m", "support.apps.hardened")
UVICORN_COMMAND = (sys.executable, "-m", "uvicorn", "support.apps.hardened:app")
_LISTENING = re.compile(r"Uvicorn running on http://([0-9.]+):([0-9]+)")


@dataclass
class ServiceProcess:
    """The service in its own process, as deployed: uvicorn's own socket, signals and limits."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    output_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr): uvicorn's lines and the service's."""
        return self.output_path.read_text(errors="replace")

    def request_lines(self) -> list[dict[str, Any]]:
        """The service's one-per-request JSON log lines so far."""
        lines = []
        for text in self.output().splitlines():
            if text.startswith("{"):
                with contextlib.suppress(ValueError):
                    line = json.loads(text)
                    if isinstance(line, dict) and line.get("event") == "request":
                        lines.append(line)
        return lines

    def rss_kib(self) -> int:
        """Resident memory now, from ``/proc/PID/status``."""
        rss = procfs.kib(procfs.status_fields(self.process.pid), "VmRSS")
        assert rss is not None, "no /proc/PID/status"
        return rss


@contextlib.contextmanager
def service_process(
    upstream: RunningUpstream,
    *args: str,
    env: dict[str, str] | None = None,
    command: Sequence[str] = MODULE_COMMAND,
    wrapper: Sequence[str] = (),
    startup_timeout: float = 20.0,
) -> Iterator[ServiceProcess]:
    """Run ``python -m support.apps.hardened --port 0 *args`` against `upstream`, and stop it.

    `env` goes on top of the key, the upstream's address and both tokens (the caller's own
    ``OPENAI_*``/``SERVICE_*`` variables are dropped); `command` replaces the module (e.g.
    `UVICORN_COMMAND`, the ``uvicorn`` command line), `wrapper` goes in front of it (e.g.
    ``("prlimit", "--nofile=200:200")``). The port is read from uvicorn's "running on"
    line. The process is terminated (then killed) however the block ends; if it exits
    before it listens, the test fails with its output.
    """
    variables = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "SERVICE_"))}
    variables |= {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": upstream.base_url}
    variables |= {"SERVICE_TOKENS": f"{TOKEN_A},{TOKEN_B}", **(env or {})}
    descriptor, name = tempfile.mkstemp(prefix="hardened-", suffix=".log")
    output_path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as output:
            process = subprocess.Popen(
                [*wrapper, *command, "--port", "0", *args],
                cwd=ROOT,
                env=variables,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:

            def listening() -> re.Match[str] | None:
                if process.poll() is not None:
                    raise AssertionError(f"the service exited ({process.returncode}):\n{output_path.read_text()}")
                return _LISTENING.search(output_path.read_text(errors="replace"))

            found = wait_until(listening, timeout=startup_timeout, what="the service to listen")
            yield ServiceProcess(process, found.group(1), int(found.group(2)), output_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        output_path.unlink(missing_ok=True)


@pytest.fixture(scope="package", autouse=True)
def clean_environment() -> Iterator[None]:
    """The developer's own OPENAI_* / SERVICE_* variables must not change what is tested."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("OPENAI_", "SERVICE_")):
                patch.delenv(name)
        yield


@pytest.fixture(scope="package")
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=UPSTREAM_KEY, latency=0.05, ttft=0.02, chunk_delay=0.01) as running:
        yield running


@pytest.fixture(scope="package")
def stack(upstream: RunningUpstream) -> Iterator[Stack]:
    with running_service(upstream) as running:
        yield running


@pytest.fixture(scope="package")
def slow_upstream() -> Iterator[RunningUpstream]:
    """Plain calls take 0.5 s; a stream's full reply takes about 3 s (300 tokens, 10 ms apart)."""
    with upstream_in_thread(
        api_key=UPSTREAM_KEY, latency=0.5, ttft=0.02, chunk_delay=0.01, reply_tokens=300
    ) as running:
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged at INFO and above, the service's lines and uvicorn's included.

    uvicorn's loggers don't propagate to the root logger, so caplog's handler is
    attached to them directly.
    """
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    detached = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    for logger in detached:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in detached:
            logger.removeHandler(caplog.handler)


# --- helpers ---------------------------------------------------------------------------------


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The service's one-per-request JSON log lines captured so far."""
    lines = []
    for record in list(caplog.records):
        if record.name != LOGGER:
            continue
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == "request":
            lines.append(line)
    return lines


def log_line_for(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    """The log line of `request_id`; it is written just after the response, so wait for it."""
    found = wait_until(
        lambda: [line for line in request_lines(caplog) if line["request_id"] == request_id],
        what=f"the log line of {request_id}",
    )
    return found[0]


def captured_text(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in list(caplog.records))


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret ({secret[:12]}...) leaked into: {text[:300]!r}"


def headers_text(headers: httpx.Headers | dict[str, str]) -> str:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers.items()
    return "\n".join(f"{name}: {value}" for name, value in items)


def assert_error_object(payload: Any, request_id: str) -> dict[str, Any]:
    """An OpenAI-shaped error: exactly the documented keys, and the caller's request id."""
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and isinstance(error["code"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["upstream_request_id"] is None or isinstance(error["upstream_request_id"], str), error
    assert error["request_id"] == request_id, (error["request_id"], request_id)
    assert "Traceback" not in json.dumps(payload)
    return error


def assert_error_response(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = assert_error_object(response.json(), response.headers["x-request-id"])
    assert error["code"] == code, error
    assert_no_secrets(response.text, headers_text(response.headers))
    return error
