"""support.target: the notebooks' BASE_URL / MODEL / API_KEY_ENV parameters turned into SDK clients and services."""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
from collections.abc import Iterator

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from support.target import Target, connect
from tests.conftest import MODEL

BODY = {"prompt": "Why should an async route await an async client?"}
SDK_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL")


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

        with (
            OpenAI(base_url=target.base_url, api_key="wrong-" + secrets.token_urlsafe(8), max_retries=0) as bad,
            pytest.raises(openai.AuthenticationError) as info,
        ):
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
        _ = target.journal
    target.close()  # nothing started, nothing to stop


def test_export_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_VARS:  # setenv, then delenv: monkeypatch records (and restores) only what it changed
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    target = Target(base_url="http://127.0.0.1:9/v1", model="gpt-5-nano", api_key="k-" + secrets.token_hex(8))
    target.export_sdk_env()
    assert [os.environ[name] for name in SDK_VARS] == [target.base_url, target.api_key, "gpt-5-nano"]
    client = OpenAI()  # what the example services do
    assert str(client.base_url).rstrip("/") == target.base_url
    assert client.api_key == target.api_key
    client.close()


def test_exported_env_reaches_an_example_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SDK_VARS, "THREADS"):  # recorded by setenv, so restored afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
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


# --- import_service and open_connections ------------------------------------------------------------


SERVICE_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "THREADS")


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """import_service writes the process environment: restore it after the test."""
    for variable in SERVICE_VARS:  # recorded by setenv, so restored afterwards
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


@pytest.fixture
def target() -> Iterator[Target]:
    with connect(None, MODEL, latency=0.01) as bundled:
        yield bundled


@pytest.mark.usefixtures("sdk_env")
def test_import_service_sets_the_sdk_variables_before_importing(target: Target) -> None:
    module = target.import_service("fix_async_client")
    assert module.__name__ == "support.apps.fix_async_client"
    assert os.environ["OPENAI_BASE_URL"] == target.base_url
    assert os.environ["OPENAI_API_KEY"] == target.api_key
    assert os.environ["OPENAI_MODEL"] == target.model


@pytest.mark.usefixtures("sdk_env")
def test_a_client_built_at_import_follows_the_latest_target(target: Target) -> None:
    silent = target.import_service("silent_blocking")  # creates OpenAI() when imported
    assert str(silent.client.base_url).rstrip("/") == target.base_url
    with connect(None, MODEL, latency=0.01) as other:
        again = other.import_service("silent_blocking")
        assert again is silent  # the same module, imported afresh
        assert str(again.client.base_url).rstrip("/") == other.base_url != target.base_url
        assert again.client.api_key == other.api_key


@pytest.mark.usefixtures("sdk_env")
def test_settings_are_in_the_environment_when_the_module_reads_them(target: Target) -> None:
    assert target.import_service("fix_sync_route", THREADS=7).THREADS == 7
    assert os.environ["THREADS"] == "7"
    assert target.import_service("fix_sync_route", THREADS=9).THREADS == 9


def test_open_connections_counts_one_kept_alive_connection_per_client(target: Target) -> None:
    before = target.open_connections()
    with target.sync_client() as first, target.sync_client() as second:
        first.models.list()
        first.models.list()  # the same pooled connection
        assert len(target.open_connections() - before) == 1
        second.models.list()  # a client of its own: a connection of its own
        assert len(target.open_connections() - before) == 2


def test_open_connections_needs_the_bundled_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TEST_KEY", "not-a-real-key")
    external = connect("http://127.0.0.1:9/v1", MODEL, "RUNBOOK_TEST_KEY")
    with pytest.raises(RuntimeError, match="bundled upstream"):
        external.open_connections()


def test_the_bundled_upstream_serves_the_notebooks_model_whatever_its_name() -> None:
    with connect(None, "my-own-fine-tune", latency=0.0) as target, target.sync_client(max_retries=0) as client:
        served = [m.id for m in client.models.list()]
        assert "my-own-fine-tune" in served and "gpt-4o-mini" in served
        reply = client.chat.completions.create(model="my-own-fine-tune", messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "my-own-fine-tune"
        with pytest.raises(openai.NotFoundError) as info:  # another name is still unknown, as on the real API
            client.chat.completions.create(model="not-served", messages=[{"role": "user", "content": "hi"}])
        assert info.value.code == "model_not_found"


def test_measure_latency_reports_the_servers_latency_not_the_parameter() -> None:
    with connect(None, MODEL, latency=0.15) as target:
        measured = target.measure_latency(calls=3)
        assert 0.15 <= measured < 0.15 + 0.1
        entries = target.journal.entries()
        assert len(entries) == 4 and all(e.outcome == "ok" for e in entries)
    with pytest.raises(ValueError, match="at least 1"):
        target.measure_latency(calls=0)
