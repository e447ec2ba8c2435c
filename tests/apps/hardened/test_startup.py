"""Startup and settings: bad configuration stops the service with a message naming the variable, never its value."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from support.apps.hardened import Settings, create_app
from support.serve import ServerStartError, serve_in_thread
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    BODY,
    TOKEN_A,
    TOKEN_B,
    UPSTREAM_KEY,
    assert_no_secrets,
    captured_text,
    running_service,
    service_settings,
)
from tests.conftest import ROOT, cli_error_line


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"openai_api_key": None}, "OPENAI_API_KEY"),
        ({"openai_api_key": ""}, "OPENAI_API_KEY"),
        ({"openai_api_key": f" {UPSTREAM_KEY}\n"}, "OPENAI_API_KEY"),
        ({"tokens": ""}, "SERVICE_TOKENS"),
        ({"tokens": " , "}, "SERVICE_TOKENS"),
        ({"tokens": f"{TOKEN_A},{UPSTREAM_KEY}"}, "SERVICE_TOKENS"),
    ],
    ids=["key-missing", "key-blank", "key-padded", "tokens-empty", "tokens-only-commas", "token-is-the-key"],
)
def test_bad_settings_stop_startup_naming_the_variable_not_the_value(
    overrides: dict[str, Any], variable: str, logs: pytest.LogCaptureFixture
) -> None:
    chosen = service_settings("http://127.0.0.1:9/v1", **overrides)
    with pytest.raises(ServerStartError) as failure, serve_in_thread(create_app(chosen)):
        pass
    message = str(failure.value)
    assert variable in message, message
    assert_no_secrets(message, captured_text(logs))


def test_settings_read_service_tokens_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("SERVICE_TOKENS", f" {TOKEN_A} ,{TOKEN_B},, ")
    monkeypatch.setenv("SERVICE_MAX_OUTPUT_TOKENS", "7")
    from_env = Settings()
    assert [token.get_secret_value() for token in from_env.tokens] == [TOKEN_A, TOKEN_B]
    assert from_env.max_output_tokens == 7
    from_env.check()
    assert_no_secrets(repr(from_env), str(from_env))


def test_app_without_settings_reads_the_environment_when_it_starts(
    upstream: RunningUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app()  # built before the environment is set: it is read by the lifespan
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("SERVICE_TOKENS", f"{TOKEN_A},{TOKEN_B}")
    with serve_in_thread(app) as server:
        response = httpx.post(
            server.base_url + "/v1/chat", json=BODY, timeout=30, headers={"Authorization": f"Bearer {TOKEN_B}"}
        )
    assert response.status_code == 200, response.text


def run_module(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "SERVICE_"))}
    return subprocess.run(
        [sys.executable, "-m", "support.apps.hardened", *args],
        check=False,
        cwd=ROOT,
        env=env | env_overrides,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [({}, "OPENAI_API_KEY"), ({"OPENAI_API_KEY": f"{UPSTREAM_KEY}\n", "SERVICE_TOKENS": TOKEN_A}, "OPENAI_API_KEY")],
    ids=["no-key", "key-with-newline"],
)
def test_module_entry_point_refuses_bad_settings_with_one_line_and_exit_2(env: dict[str, str], variable: str) -> None:
    finished = run_module(env)
    error = cli_error_line(finished, "python -m support.apps.hardened")
    assert finished.stderr.strip() == error  # no usage: the arguments were fine, the settings not
    assert error.startswith("python -m support.apps.hardened: error: cannot start: ") and variable in error
    assert_no_secrets(finished.stderr)


def test_module_entry_point_help_works() -> None:
    finished = run_module({}, "--help")
    assert finished.returncode == 0, finished.stderr
    assert "usage: python -m support.apps.hardened" in finished.stdout and "SERVICE_TOKENS" in finished.stdout


def test_startup_probe_refuses_to_start_when_the_upstream_rejects_the_key(
    upstream: RunningUpstream, logs: pytest.LogCaptureFixture
) -> None:
    before = len(upstream.journal)
    with (
        upstream.fault("unauthorized"),
        pytest.raises(ServerStartError) as failure,
        serve_in_thread(create_app(service_settings(upstream.base_url, startup_probe=True))),
    ):
        pass
    message = str(failure.value)
    assert "probe" in message and "upstream_auth_failed" in message, message
    assert_no_secrets(message, captured_text(logs))
    assert [e.endpoint for e in upstream.journal.entries()[before:]] == ["models"]  # one probe, not retried


def test_startup_probe_passes_against_a_working_upstream(upstream: RunningUpstream) -> None:
    with running_service(upstream, startup_probe=True) as service:
        assert service.readyz()["status"] == "ready"
        assert service.client.post("/v1/chat", json=BODY).status_code == 200
