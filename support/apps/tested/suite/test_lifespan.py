"""Approach 4: the lifespan in tests: ``TestClient`` with and without ``with``, and an async client.

``TestClient(app)`` runs the lifespan only inside ``with``; ``httpx2.ASGITransport`` never
runs it, so an async test enters ``app.router.lifespan_context(app)`` itself. Proves: the
client is built at startup, used, and closed at shutdown. Needs the upstream (conftest).

``app.state`` outlives a lifespan: after one test's ``with TestClient(app)`` it still holds
the client that test's shutdown closed. The `no_client_yet` fixture removes it for the
tests about a fresh process; `test_without_with_after_another_test` shows the other case.
"""

import httpx2
import pytest
from fastapi.testclient import TestClient
from openai import AsyncOpenAI

from support.apps.tested.service import app
from support.upstream import RunningUpstream

pytestmark = pytest.mark.usefixtures("service_env")
BODY = {"text": "FastAPI runs async routes on one event loop, so a blocking call stalls every request."}


@pytest.fixture
def no_client_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """``app.state`` as a fresh process has it: no client (restored after the test)."""
    monkeypatch.delattr(app.state, "openai", raising=False)


@pytest.mark.usefixtures("no_client_yet")
def test_without_with_the_lifespan_never_runs(service_env: RunningUpstream) -> None:
    with pytest.raises(AttributeError, match="'State' object has no attribute 'openai'"):
        TestClient(app).post("/summarize", json=BODY)
    assert service_env.journal.entries() == []


def test_without_with_after_another_test(service_env: RunningUpstream) -> None:
    with TestClient(app):
        pass  # an earlier test: its shutdown closes the client, app.state keeps it
    with pytest.raises(RuntimeError, match="client has been closed"):
        TestClient(app).post("/summarize", json=BODY)
    assert service_env.journal.entries() == []


def test_with_builds_the_client_at_startup_and_closes_it_at_shutdown(service_env: RunningUpstream) -> None:
    with TestClient(app) as test_client:
        sdk = app.state.openai
        assert isinstance(sdk, AsyncOpenAI), f"the lifespan made {type(sdk).__name__}"
        assert not sdk.is_closed()
        assert str(sdk.base_url).rstrip("/") == service_env.base_url
        assert test_client.post("/summarize", json=BODY).status_code == 200
    assert sdk.is_closed()


async def post_through_asgi() -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://service") as http:
        return await http.post("/summarize", json=BODY)


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_client_yet")
async def test_asgi_transport_alone_runs_no_lifespan() -> None:
    with pytest.raises(AttributeError, match="'State' object has no attribute 'openai'"):
        await post_through_asgi()


@pytest.mark.asyncio
async def test_an_async_client_with_the_lifespan_entered() -> None:
    async with app.router.lifespan_context(app):
        sdk = app.state.openai
        response = await post_through_asgi()
    assert response.status_code == 200 and response.json()["summary"]
    assert sdk.is_closed()
