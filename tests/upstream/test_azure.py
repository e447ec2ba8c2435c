"""Azure OpenAI's shape on the bundled upstream: the SDK's own Azure clients, and what Azure refuses.

The happy paths go through the real `AsyncAzureOpenAI` and `AzureOpenAI` over loopback, so
the URLs, query and headers are the ones the SDK builds (`openai/lib/azure.py`); the
refusals are also sent raw, to check the exact error bodies.
"""

from __future__ import annotations

import httpx2
import pytest
from openai import AsyncAzureOpenAI, AzureOpenAI

from support.upstream import run_upstream, upstream_in_thread
from support.upstream.azure import ACCESS_DENIED, DEPLOYMENT_NOT_FOUND, AzureError, azure_key, azure_route

KEY = "azure-test-key"
VERSION = "2024-10-21"
PROMPT = [{"role": "user", "content": "hi"}]
FAST = {"latency": 0.0, "ttft": 0.0, "chunk_delay": 0.0}
pytestmark = pytest.mark.anyio  # AnyIO's pytest plugin runs the async tests on asyncio


def test_routes_map_onto_the_openai_paths() -> None:
    deployment = azure_route("/openai/deployments/prod-4o/chat/completions", b"api-version=" + VERSION.encode())
    assert deployment is not None
    assert (deployment.openai_path, deployment.deployment, deployment.api_version) == (
        "/v1/chat/completions",
        "prod-4o",
        VERSION,
    )
    assert azure_route("/openai/models", b"") == azure_route("/openai/models", b"other=1")
    assert azure_route("/v1/chat/completions", b"api-version=x") is None
    assert azure_route("/openai/deployments/a/b/chat/completions", b"") is None  # a name has no slash


def test_credentials_key_or_token_and_nothing_else() -> None:
    assert azure_key({b"api-key": KEY.encode()}, KEY) == KEY
    assert azure_key({b"authorization": f"Bearer {KEY}".encode()}, KEY) == KEY
    assert azure_key({b"api-key": b"anything"}, None) == "anything"
    for headers in ({}, {b"api-key": b"wrong"}, {b"authorization": KEY.encode()}, {b"api-key": b"  "}):
        with pytest.raises(AzureError) as caught:
            azure_key(headers, KEY)
        assert caught.value.status == 401 and caught.value.body()["error"]["message"] == ACCESS_DENIED, headers


async def test_async_azure_client_end_to_end() -> None:
    async with (
        run_upstream(api_key=KEY, **FAST) as up,
        AsyncAzureOpenAI(azure_endpoint=up.base_url.removesuffix("/v1"), api_key=KEY, api_version=VERSION) as client,
    ):
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True)
        chunks = [chunk async for chunk in stream]
        response = await client.responses.create(model="gpt-4o-mini", input="hi")
        models = await client.models.list()
    assert completion.model == "gpt-4o-mini" and completion.choices[0].message.content
    assert chunks and response.output_text and "gpt-4o-mini" in [m.id for m in models.data]
    entries = up.journal.entries()
    assert [e.path for e in entries] == [
        "/openai/deployments/gpt-4o-mini/chat/completions",
        "/openai/deployments/gpt-4o-mini/chat/completions",
        "/openai/responses",
        "/openai/models",
    ]
    assert {e.api_version for e in entries} == {VERSION} and {e.status for e in entries} == {200}


async def test_the_deployment_runs_whatever_the_body_names() -> None:
    async with (
        run_upstream(api_key=KEY, **FAST) as up,
        AsyncAzureOpenAI(
            azure_endpoint=up.base_url.removesuffix("/v1"),
            azure_deployment="gpt-4.1-mini",
            api_key=KEY,
            api_version=VERSION,
        ) as client,
    ):
        completion = await client.chat.completions.create(model="not-a-model", messages=PROMPT)
    assert completion.model == "gpt-4.1-mini" and up.journal.entries()[0].model == "gpt-4.1-mini"


async def test_token_provider_sync_and_async() -> None:
    async def token() -> str:
        return KEY

    async with run_upstream(api_key=KEY, **FAST) as up:
        endpoint = up.base_url.removesuffix("/v1")
        for provider in (lambda: KEY, token):
            async with AsyncAzureOpenAI(
                azure_endpoint=endpoint, azure_ad_token_provider=provider, api_version=VERSION
            ) as client:
                assert (await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)).choices
        assert [e.status for e in up.journal.entries()] == [200, 200]


async def test_awaiting_the_sync_azure_client_is_the_same_error() -> None:
    with upstream_in_thread(api_key=KEY, **FAST) as up:  # its own loop: the sync call blocks this one
        client = AzureOpenAI(azure_endpoint=up.base_url.removesuffix("/v1"), api_key=KEY, api_version=VERSION)
        with pytest.raises(TypeError, match="object ChatCompletion can't be used in 'await' expression"):
            await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)  # type: ignore[misc]
        client.close()
        assert [e.status for e in up.journal.entries()] == [200]  # sent and answered before the TypeError


async def test_refusals_in_azure_words() -> None:
    async with (
        run_upstream(api_key=KEY, **FAST) as up,
        httpx2.AsyncClient(base_url=up.base_url.removesuffix("/v1")) as http,
    ):
        body = {"model": "gpt-4o-mini", "messages": PROMPT}
        path = "/openai/deployments/gpt-4o-mini/chat/completions"
        no_version = await http.post(path, json=body, headers={"api-key": KEY})
        empty_version = await http.post(path + "?api-version=", json=body, headers={"api-key": KEY})
        wrong_key = await http.post(f"{path}?api-version={VERSION}", json=body, headers={"api-key": "wrong"})
        no_key = await http.post(f"{path}?api-version={VERSION}", json=body)
        unknown = await http.post(
            f"/openai/deployments/no-such-deployment/chat/completions?api-version={VERSION}",
            json=body,
            headers={"api-key": KEY},
        )
        huge = await http.post(
            f"/openai/deployments/{'x' * 5000}/chat/completions?api-version={VERSION}",
            json=body,
            headers={"api-key": KEY},
        )
        openai_route = await http.post("/v1/chat/completions", json=body, headers={"api-key": KEY})
    assert no_version.status_code == empty_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert wrong_key.status_code == no_key.status_code == 401
    assert wrong_key.json() == {"error": {"code": "401", "message": ACCESS_DENIED}}
    assert unknown.status_code == huge.status_code == 404
    assert unknown.json() == {"error": {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND}}
    assert openai_route.status_code == 401  # the OpenAI routes still want a bearer key
    assert openai_route.json()["error"]["message"].startswith("You didn't provide an API key")
    assert KEY not in no_key.text + wrong_key.text
