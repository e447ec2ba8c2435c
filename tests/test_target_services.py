"""Target.import_service (an example service pointed at this target, imported afresh) and
Target.open_connections (what the bundled upstream holds open)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.target import Target, connect
from tests.conftest import MODEL

SDK_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "THREADS")


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """import_service writes the process environment: restore it after the test."""
    for variable in SDK_VARS:
        monkeypatch.delenv(variable, raising=False)


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
