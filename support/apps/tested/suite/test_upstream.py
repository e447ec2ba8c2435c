"""Approach 3: the service as it runs, with its own lifespan, against the bundled upstream.

Proves: the lifespan builds a client that works, the API accepts the request (the upstream
checks parameters with the real API's rules and wording), and each fault maps to its
status; the journal shows what reached the upstream. Cannot prove: how the real API
behaves where the upstream differs from it (latency, model output, limits it does not model).
"""

from fastapi.testclient import TestClient

from support.upstream import RunningUpstream

TEXT = "FastAPI runs async routes on one event loop, so a blocking call stalls every request."


def test_summary_and_tokens_match_what_the_upstream_billed(client: TestClient, service_env: RunningUpstream) -> None:
    response = client.post("/summarize", json={"text": TEXT})
    upstream_statuses = [entry.status for entry in service_env.journal.entries()]
    assert response.status_code == 200, f"{response.status_code}; the upstream answered {upstream_statuses}"
    [entry] = service_env.journal.entries()
    assert (entry.endpoint, entry.model, entry.status, entry.outcome) == ("chat.completions", "gpt-4o-mini", 200, "ok")
    assert response.json()["summary"]
    assert response.json()["tokens"] == entry.prompt_tokens + entry.completion_tokens


def test_a_rate_limit_is_503_with_retry_after(client: TestClient, service_env: RunningUpstream) -> None:
    with service_env.fault("rate_limit;retry_after=7"):
        response = client.post("/summarize", json={"text": TEXT})
    assert (response.status_code, response.headers.get("retry-after")) == (503, "7")
    assert [entry.status for entry in service_env.journal.entries()] == [429]


def test_a_hung_upstream_is_504(client: TestClient, service_env: RunningUpstream) -> None:
    with service_env.fault("hang;seconds=2"):
        assert client.post("/summarize", json={"text": TEXT}).status_code == 504


def test_a_server_error_is_502(client: TestClient, service_env: RunningUpstream) -> None:
    with service_env.fault("server_error;status=500"):
        assert client.post("/summarize", json={"text": TEXT}).status_code == 502


def test_bad_input_never_reaches_the_upstream(client: TestClient, service_env: RunningUpstream) -> None:
    assert client.post("/summarize", json={"text": ""}).status_code == 422
    assert service_env.journal.entries() == []
