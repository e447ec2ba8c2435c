"""The Entra ID example service, with azure-identity's own token providers and slow stand-in credentials.

Served for real (uvicorn on its own loop) against the bundled upstream in Azure's shape;
the runtime blocking detector watches the serving loop. Timing assertions are bounds
with wide margins: the blocked probe waits at least most of the credential's delay, the
free one far less.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from azure import identity
from azure.identity import aio as identity_aio
from fastapi.testclient import TestClient

from support.apps import azure_entra
from support.azure_tokens import AsyncSlowCredential, SlowCredential, cold_start
from support.upstream import RunningUpstream, upstream_in_thread

TOKEN = "entra-canary-token-5f3e"  # the upstream's key, handed out as the bearer token
DELAY_S = 0.4


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=TOKEN, latency=0.02) as up:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", up.base_url.removesuffix("/v1"))
        monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
        monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)
        yield up


def test_a_sync_provider_blocks_the_loop_and_the_detector_names_it(upstream: RunningUpstream) -> None:
    credential = SlowCredential(TOKEN, DELAY_S)
    app = azure_entra.create_app(identity.get_bearer_token_provider(credential, azure_entra.SCOPE))
    seen = asyncio.run(cold_start(app, requests=12))
    assert seen.statuses == {200: 12} and credential.calls == 1  # the policy caches the token
    assert seen.blocked_in_token_provider and seen.worst_probe_s >= DELAY_S * 0.7
    [report] = [r for r in seen.reports if r.project_frame and r.project_frame.name == "get_token_info"]
    assert report.duration >= DELAY_S * 0.7 and "time.sleep" in (report.project_frame.line or "")


def test_an_async_provider_leaves_the_loop_free(upstream: RunningUpstream) -> None:
    credential = AsyncSlowCredential(TOKEN, DELAY_S)
    app = azure_entra.create_app(identity_aio.get_bearer_token_provider(credential, azure_entra.SCOPE))
    seen = asyncio.run(cold_start(app, requests=40))
    assert seen.statuses == {200: 40} and not seen.blocked_in_token_provider
    assert credential.calls == 1  # 40 concurrent first requests, one token request (the policy's lock)
    assert seen.worst_probe_s < DELAY_S / 2 and len(seen.probes) > 3
    entries = upstream.journal.entries()
    assert {e.path for e in entries} == {"/openai/deployments/gpt-4o-mini/chat/completions"}


def test_the_deployment_comes_from_the_environment(upstream: RunningUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4.1-mini")
    with TestClient(azure_entra.create_app(lambda: TOKEN)) as client:
        assert client.post("/chat", json={"prompt": "hi"}).status_code == 200
    [entry] = upstream.journal.entries()
    assert entry.path == "/openai/deployments/gpt-4.1-mini/chat/completions" and entry.model == "gpt-4.1-mini"


def test_a_rejected_token_never_reaches_the_reply_or_the_log(
    upstream: RunningUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-canary-token-77aa"
    with TestClient(azure_entra.create_app(lambda: wrong), raise_server_exceptions=False) as client:
        reply = client.post("/chat", json={"prompt": "hi"})
        invalid = client.post("/chat", json={"prompt": ""})
    assert reply.status_code == 500 and invalid.status_code == 422
    assert wrong not in reply.text + caplog.text and TOKEN not in reply.text + caplog.text
    assert [e.status for e in upstream.journal.entries()] == [401]  # no retry on a 401, and the invalid body never left
