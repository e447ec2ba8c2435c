"""Fixtures for testing the summarizer without a network: copy this file next to your tests.

At import, before any test module imports the service, the SDK's variables point at a
loopback port where nothing listens, with a dummy key and no retries: a client that a
test forgot to replace fails at once with ``APIConnectionError`` and never reaches the real
API with your real key. The fixtures then give each test what it needs:

- `upstream`: the bundled OpenAI-compatible upstream on a free loopback port, started once
  per run, its journal emptied for each test (faults on demand with ``upstream.fault(...)``,
  every request in ``upstream.journal``);
- `service_env`: the SDK's variables pointed at that upstream, and a short timeout;
- `client`: ``TestClient(app)`` entered with ``with``, so the lifespan builds the real client.
"""

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from support.upstream import RunningUpstream, upstream_in_thread

from .fakes import KEY

NOWHERE = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on it here
os.environ["OPENAI_BASE_URL"] = NOWHERE
os.environ["OPENAI_API_KEY"] = KEY
os.environ["SUMMARIZER_MAX_RETRIES"] = "0"  # no SDK retries in tests: a failure shows at once
os.environ.pop("OPENAI_MODEL", None)

from support.apps.tested.service import app  # noqa: E402  (after the variables above)


@pytest.fixture(scope="session")
def session_upstream() -> Iterator[RunningUpstream]:
    """The bundled upstream, requiring KEY, answering after 10 ms: started once per test run."""
    with upstream_in_thread(api_key=KEY, latency=0.01) as running:
        yield running


@pytest.fixture
def upstream(session_upstream: RunningUpstream) -> RunningUpstream:
    """The session's upstream with an empty journal (a fault lasts for its ``with upstream.fault(...)`` block)."""
    session_upstream.journal.clear()
    return session_upstream


@pytest.fixture
def service_env(upstream: RunningUpstream, monkeypatch: pytest.MonkeyPatch) -> RunningUpstream:
    """Point the service's lifespan at `upstream`, with a 0.3 s timeout."""
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("SUMMARIZER_TIMEOUT_S", "0.3")
    return upstream


@pytest.fixture
def client(service_env: RunningUpstream) -> Iterator[TestClient]:
    """The service with its real lifespan and client, on `upstream`."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[RunningUpstream]:
    """One upstream for a whole test module (for fixtures of module scope)."""
    with upstream_in_thread(api_key=KEY, latency=0.01) as running:
        yield running
