"""The notebook helpers: `measure`, `logcapture`, `display.source` and `target`.

Services are the example apps of `support.apps`, served on a real socket against the
bundled upstream through the real SDK (nothing is mocked). Timing claims are lower
bounds, or upper bounds with wide margins: the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from IPython.core.formatters import format_display_data
from openai import OpenAI

import support.apps.fix_async_client
from support.bench.loadgen import LoadResult
from support.bench.measure import Measurement, format_table, measure
from support.display import source
from support.logcapture import AppError, app_errors
from support.serve import serve_in_thread
from support.target import Target, connect
from support.upstream import RunningUpstream, upstream_in_thread

MODEL = "gpt-4o-mini"
BODY = {"prompt": "Why should an async route await an async client?"}
SDK_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL")


@pytest.fixture
def bind(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[ModuleType, RunningUpstream]]]:
    """``bind(name, latency=0.02)``: an upstream requiring a random key, the SDK's variables
    pointing at it, and ``support.apps.<name>`` freshly (re)imported against it."""
    with contextlib.ExitStack() as stack:

        def load(name: str, *, latency: float = 0.02) -> tuple[ModuleType, RunningUpstream]:
            key = "test-" + secrets.token_urlsafe(16)
            upstream = stack.enter_context(upstream_in_thread(latency=latency, api_key=key))
            monkeypatch.setenv("OPENAI_API_KEY", key)
            monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
            monkeypatch.setenv("OPENAI_MODEL", MODEL)
            monkeypatch.delenv("THREADS", raising=False)
            return importlib.reload(importlib.import_module(f"support.apps.{name}")), upstream

        yield load


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- measure -------------------------------------------------------------------------------


def test_measure_a_fix(bind: Callable[..., tuple[ModuleType, RunningUpstream]]) -> None:
    latency, concurrency, n = 0.1, 4, 8
    module, upstream = bind("fix_async_client", latency=latency)
    with serve_in_thread(module.app) as server:
        m = asyncio.run(measure(server.base_url, concurrency=concurrency, n_requests=n, latency_s=latency))
        no_probe = asyncio.run(
            measure(server.base_url, concurrency=2, n_requests=2, latency_s=latency, probe_path=None)
        )

    load = m.load
    assert (load.concurrency, load.n_requests) == (concurrency, n)
    assert (load.completed, load.ok, load.errors) == (n, n, 0)
    assert dict(load.statuses) == {200: n}
    assert not load.timed_out
    assert m.latency_s == latency
    assert m.probe_s is not None and m.probe_s > 0
    assert min(load.latencies_s) >= latency - 0.005  # no answer before the upstream's latency
    assert load.wall_s >= math.ceil(n / concurrency) * latency - 0.005  # two rounds at least
    assert m.ideal_throughput == pytest.approx(concurrency / latency)
    assert m.ideal_wall_s == pytest.approx(math.ceil(n / concurrency) * latency)
    assert 0 < m.ratio <= 1.2
    assert m.ratio == pytest.approx(load.throughput / m.ideal_throughput)
    assert no_probe.probe_s is None and no_probe.load.ok == 2
    # The upstream got exactly the load: the probe never reaches it.
    assert len(upstream.journal.entries(endpoint="chat.completions")) == n + 2


@pytest.mark.parametrize(("n", "concurrency", "rounds"), [(8, 4, 2), (10, 4, 3), (1, 8, 1), (64, 64, 1), (65, 64, 2)])
def test_ideal_wall_is_whole_rounds_of_latency(n: int, concurrency: int, rounds: int) -> None:
    m = Measurement(load=LoadResult(concurrency=concurrency, n_requests=n), latency_s=0.25, probe_s=None)
    assert m.ideal_wall_s == pytest.approx(rounds * 0.25)
    assert m.ideal_throughput == pytest.approx(concurrency / 0.25)


def _measurement(name_seed: int, *, probe: float | None) -> Measurement:
    load = LoadResult(concurrency=2, n_requests=4, wall_s=0.5, latencies_s=[0.2, 0.25, 0.2, 0.3])
    load.statuses.update({200: 4})
    return Measurement(load=load, latency_s=0.2 + name_seed / 100, probe_s=probe)


def test_format_table_has_a_header_and_one_row_per_pattern() -> None:
    rows = {"silent_blocking": _measurement(0, probe=0.2), "fix_async_client": _measurement(1, probe=None)}
    lines = format_table(rows).splitlines()
    assert len(lines) == 1 + len(rows)
    assert lines[0].split() == [
        "pattern",
        "conc.",
        "requests",
        "ok",
        "wall",
        "s",
        "req/s",
        "ideal",
        "ratio",
        "p50",
        "s",
        "p99",
        "s",
        "probe",
        "s",
    ]
    for line, (name, m) in zip(lines[1:], rows.items()):
        cells = line.split()
        assert cells[0] == name
        assert cells[1:4] == ["2", "4", "4"]
        assert cells[-1] == ("-" if m.probe_s is None else f"{m.probe_s:.3f}")
        assert f"{m.ratio:.0%}" in cells
    assert len({len(line.rstrip()) for line in lines}) == 1  # aligned columns
    assert [line.split() for line in format_table({}).splitlines()] == [lines[0].split()]  # header only


# --- logcapture ------------------------------------------------------------------------------


def test_app_errors_collects_the_type_error_and_keeps_it_off_stderr(
    bind: Callable[..., tuple[ModuleType, RunningUpstream]], capfd: pytest.CaptureFixture[str]
) -> None:
    module, upstream = bind("broken_await")
    logger = logging.getLogger("uvicorn.error")
    with serve_in_thread(module.app) as server:
        # Without the capture, uvicorn prints the traceback to stderr ...
        assert httpx.post(server.base_url + "/chat", json=BODY, timeout=30).status_code == 500
        seen = ""

        def traceback_printed() -> bool:
            nonlocal seen
            seen += capfd.readouterr().err
            return "Exception in ASGI application" in seen

        wait_until(traceback_printed)
        assert "TypeError" in seen

        # ... with it (installed after the server started), the error is collected instead.
        propagate, handlers = logger.propagate, list(logger.handlers)
        with app_errors() as errors:
            assert logger.propagate is False
            assert httpx.post(server.base_url + "/chat", json=BODY, timeout=30).status_code == 500
            # Starlette sends the 500 before the exception reaches uvicorn's log: wait for it.
            wait_until(lambda: len(errors) == 1)
        assert logger.propagate is propagate
        assert logger.handlers == handlers
        time.sleep(0.05)  # anything logged late would show up now
        err = capfd.readouterr().err

    assert "Exception in ASGI application" not in err
    assert "Traceback" not in err
    assert "TypeError" not in err
    [error] = errors
    assert isinstance(error, AppError)
    assert error.type_name == "TypeError"
    assert "ChatCompletion" in error.message and "await" in error.message
    assert str(error) == f"TypeError: {error.message}"
    assert error.created <= time.time()
    # Both requests were answered upstream before the TypeError.
    assert [e.outcome for e in upstream.journal.entries()] == ["ok", "ok"]


def test_app_errors_restores_propagation_after_an_exception() -> None:
    logger = logging.getLogger("support.test.logcapture")
    logger.propagate = True
    with pytest.raises(ZeroDivisionError), app_errors(logger.name) as errors:
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("boom")
            raise
    assert logger.propagate is True
    assert logger.handlers == []
    assert [str(e) for e in errors] == ["ZeroDivisionError: division by zero"]


def test_app_errors_ignores_records_without_an_exception() -> None:
    logger = logging.getLogger("support.test.logcapture.plain")
    with app_errors(logger.name) as errors:
        logger.error("no exception here")
        logger.warning("nor here")
    assert errors == []


# --- display ---------------------------------------------------------------------------------


def test_source_shows_the_module_source_without_latex() -> None:
    module = support.apps.fix_async_client
    data, _ = format_display_data(source(module))
    # IPython's plain-text formatter drops the file's final newline; nothing else changes.
    assert data["text/plain"].rstrip("\n") == inspect.getsource(module).rstrip("\n")
    assert source(module).data == inspect.getsource(module)
    assert "text/latex" not in data
    assert "text/html" in data  # highlighted for notebooks


def test_source_of_a_function() -> None:
    data, _ = format_display_data(source(connect))
    assert data["text/plain"].startswith("def connect(")
    assert "text/latex" not in data


# --- target ----------------------------------------------------------------------------------


def test_connect_starts_a_bundled_upstream_with_a_random_key(capsys: pytest.CaptureFixture[str]) -> None:
    with connect(None, MODEL, latency=0.01) as target:
        assert target.bundled
        key = target.api_key
        assert key.startswith("bundled-") and len(key) > len("bundled-") + 10
        assert key not in repr(target)
        assert repr(target) == f"Target(bundled upstream at {target.base_url}, model={MODEL!r})"
        assert target.base_url.endswith("/v1")

        with target.sync_client() as client:
            completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content

        async def async_call() -> str:
            async with target.async_client() as client:
                response = await client.responses.create(model=MODEL, input="hi")
            return response.output_text

        assert asyncio.run(async_call())

        with OpenAI(base_url=target.base_url, api_key="wrong-" + secrets.token_urlsafe(8), max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as info:
                bad.models.list()
        assert key not in str(info.value)
        assert info.value.status_code == 401

        assert [e.outcome for e in target.journal.entries()] == ["ok", "ok", "error"]
        assert target.needs_bundled("the journal") is True
        assert capsys.readouterr().out == ""

    with connect(None, MODEL) as other:
        assert other.api_key != key  # a fresh key every time


def test_connect_closes_the_bundled_upstream() -> None:
    target = connect(None, MODEL, latency=0.01)
    url = target.base_url
    with target:
        assert httpx.get(url + "/models", headers={"Authorization": f"Bearer {target.api_key}"}).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/models", timeout=2)


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n"])
def test_connect_to_a_server_needs_the_key_variable(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("SOME_VAR", raising=False)
    else:
        monkeypatch.setenv("SOME_VAR", value)
    with pytest.raises(RuntimeError) as info:
        connect("http://127.0.0.1:9/v1", MODEL, api_key_env="SOME_VAR")
    # It names the variable, and shows nothing of its (blank) value.
    assert str(info.value) == "BASE_URL is set, so the key must be in $SOME_VAR, which is missing or empty"


def test_connect_to_a_server_reads_the_key_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-" + secrets.token_urlsafe(16)
    monkeypatch.setenv("SOME_VAR", f"  {secret}\n")
    target = connect("http://127.0.0.1:9/v1", MODEL, api_key_env="SOME_VAR", latency=5)  # latency: ignored
    assert not target.bundled
    assert target.api_key == secret  # stripped
    assert secret not in repr(target)
    assert repr(target) == f"Target(external server at http://127.0.0.1:9/v1, model={MODEL!r})"
    with pytest.raises(RuntimeError, match="journal"):
        target.journal
    target.close()  # nothing started, nothing to stop


def test_export_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_VARS:  # so that monkeypatch restores them afterwards
        monkeypatch.delenv(name, raising=False)
    target = Target(base_url="http://127.0.0.1:9/v1", model="gpt-5-nano", api_key="k-" + secrets.token_hex(8))
    target.export_sdk_env()
    assert [os.environ[name] for name in SDK_VARS] == [target.base_url, target.api_key, "gpt-5-nano"]
    client = OpenAI()  # what the example services do
    assert str(client.base_url).rstrip("/") == target.base_url
    assert client.api_key == target.api_key
    client.close()


def test_exported_env_reaches_an_example_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SDK_VARS, "THREADS"):
        monkeypatch.delenv(name, raising=False)
    with connect(None, MODEL, latency=0.01) as target:
        target.export_sdk_env()
        module = importlib.reload(importlib.import_module("support.apps.silent_blocking"))
        with TestClient(module.app) as client:
            response = client.post("/chat", json=BODY)
        assert response.status_code == 200 and response.json()["text"]
        assert len(target.journal.entries(endpoint="chat.completions")) == 1


def test_needs_bundled_says_so_for_another_server(capsys: pytest.CaptureFixture[str]) -> None:
    target = Target(base_url="http://127.0.0.1:9/v1", model=MODEL, api_key="k")
    assert target.needs_bundled("the fault injection") is False
    assert capsys.readouterr().out == (
        "skipped: the fault injection needs the bundled upstream (BASE_URL is http://127.0.0.1:9/v1).\n"
    )
