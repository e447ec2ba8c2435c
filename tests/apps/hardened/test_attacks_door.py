"""Attacks on the door: no path reaches a route without a token, and the edges of the contract hold.

An outsider's view over loopback (raw sockets from `support.attacks`, so a path goes out
exactly as written), against the service in its own process where the attack needs the
real server (``--root-path``), and the upstream's journal says whether anything was billed:

- under a root path (uvicorn's ``--root-path``, the module's ``--root-path``, or a
  ``root_path`` in the ASGI scope), every spelling of a protected path (trailing slash,
  percent-encoding, case, double slashes, ``..`` and ``.`` segments, the prefix itself)
  gets 401 without a token and costs no upstream call; only the probes are open;
- ``/docs``, ``/redoc`` and ``/openapi.json`` are off unless ``SERVICE_DOCS=true``, and
  then still behind the token;
- ``/v1/chat/`` is a 404, never a redirect built from a forged ``Host``;
- a client who hangs up before the answer is logged as 499, not as the 200 nobody got;
- ``max_tokens`` must be a JSON integer and ``model`` non-empty (422, no upstream call);
- ``OPENAI_BASE_URL`` with ``user:password@`` stops startup, naming neither;
- malformed HTTP is answered by uvicorn itself: a ``text/plain`` 400 without request id
  or log line (a documented limit: the proxy in front logs those).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from support.apps.hardened import ConfigError, create_app
from support.attacks import Answer, exchange, hang_up, request_bytes
from support.serve import serve_in_thread
from support.upstream import RunningUpstream
from tests.apps.hardened.conftest import (
    AUTH,
    BODY,
    UPSTREAM_KEY,
    UVICORN_COMMAND,
    ServiceProcess,
    Stack,
    assert_error_object,
    assert_error_response,
    assert_no_secrets,
    log_line_for,
    running_service,
    service_process,
    service_settings,
)
from tests.conftest import ROOT, cli_error_line, wait_until

ROOT_PATH = "/llm"
# Every way to spell a path the router might route to a paid call, or to the docs.
SPELLINGS = [
    "/v1/chat",
    "/v1/chat/",
    "/v1/chat/stream",
    "/v1/chat/stream/",
    "/v1/%63hat",
    "/v1/chat%2Fstream",
    "/%761/chat",
    "/V1/chat",
    "/V1/CHAT",
    "//v1/chat",
    "/v1//chat",
    "///v1/chat",
    "/x/../v1/chat",
    "/v1/x/../chat",
    "/./v1/chat",
    "/v1/./chat",
    "/healthz/../v1/chat",
    "/llm/v1/chat",
    "/llm//v1/chat",
    "/llm/../v1/chat",
    "/llm",
    "/v1/chat?x=/healthz",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/llm/openapi.json",
    "/healthz/",
    "/nothing-here",
]


def anonymous(server_url: str, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    host, port = server_url.removeprefix("http://").split(":")
    return exchange(host, int(port), request_bytes(method, path, host=host, headers=headers, body=BODY), bound_s=5)


def assert_401(answer: Answer) -> None:
    assert answer.status == 401, (answer.head, answer.body[:300])
    assert answer.header("www-authenticate") == "Bearer"
    request_id = answer.header("x-request-id")
    assert request_id
    assert assert_error_object(answer.json(), request_id)["code"] == "invalid_service_token"


@pytest.fixture(scope="module", params=["uvicorn --root-path", "python -m --root-path"])
def behind_a_prefix(request: pytest.FixtureRequest, upstream: RunningUpstream) -> Iterator[ServiceProcess]:
    """The service as a path-prefix proxy deploys it: ``--root-path /llm``."""
    command = {"uvicorn --root-path": {"command": UVICORN_COMMAND}, "python -m --root-path": {}}[request.param]
    with service_process(upstream, "--root-path", ROOT_PATH, **command) as running:
        yield running


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_no_spelling_of_a_path_reaches_a_route_without_a_token_under_a_root_path(
    behind_a_prefix: ServiceProcess, upstream: RunningUpstream, method: str
) -> None:
    before = len(upstream.journal)
    for path in SPELLINGS:
        answer = anonymous(behind_a_prefix.base_url, method, path)
        assert answer.status == 401, (path, answer.head, answer.body[:200])
        assert_401(answer)
    assert len(upstream.journal) == before  # not one of them was billed
    assert_no_secrets(behind_a_prefix.output())


def test_under_a_root_path_the_probes_are_open_and_a_token_still_reaches_the_chat(
    behind_a_prefix: ServiceProcess, upstream: RunningUpstream
) -> None:
    for path in ("/healthz", "/readyz"):
        assert anonymous(behind_a_prefix.base_url, "GET", path).status == 200, path
    before = len(upstream.journal)
    served = anonymous(behind_a_prefix.base_url, "POST", "/v1/chat", AUTH)
    assert served.status == 200, served.body
    assert len(upstream.journal) == before + 1


class RootPathScope:
    """Sets ``root_path`` in every HTTP scope, the way an ASGI server behind a prefix does.

    `prefixed`: the spec's form, where ``path`` includes the root path; else the older form
    some servers send, where it does not.
    """

    def __init__(self, app: ASGIApp, root_path: str, *, prefixed: bool) -> None:
        self.app, self.root_path, self.prefixed = app, root_path, prefixed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "root_path": self.root_path}
            if self.prefixed:
                scope["path"] = self.root_path + scope["path"]
        await self.app(scope, receive, send)


@pytest.mark.parametrize("prefixed", [True, False], ids=["path-with-root", "path-without-root"])
def test_a_root_path_in_the_asgi_scope_opens_nothing(upstream: RunningUpstream, prefixed: bool) -> None:
    app = RootPathScope(create_app(service_settings(upstream.base_url)), ROOT_PATH, prefixed=prefixed)
    with serve_in_thread(app) as server:
        before = len(upstream.journal)
        for path in SPELLINGS:
            assert_401(anonymous(server.base_url, "POST", path))
        assert len(upstream.journal) == before
        assert anonymous(server.base_url, "GET", "/healthz").status == 200
        assert anonymous(server.base_url, "POST", "/v1/chat", AUTH).status == 200  # the route is there
        assert len(upstream.journal) == before + 1


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_are_off_by_default(stack: Stack, path: str) -> None:
    assert_error_response(stack.client.get(path), 404, "not_found")  # with a token, even


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_turned_on_still_need_the_token(upstream: RunningUpstream, path: str) -> None:
    with running_service(upstream, docs=True) as service:
        with httpx.Client(base_url=service.server.base_url, timeout=30) as outsider:
            assert_error_response(outsider.get(path), 401, "invalid_service_token")
        assert service.client.get(path).status_code == 200


def test_docs_switch_is_read_from_the_environment_when_the_app_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app().openapi_url is None
    monkeypatch.setenv("SERVICE_DOCS", "true")
    assert (create_app().docs_url, create_app().openapi_url) == ("/docs", "/openapi.json")
    monkeypatch.setenv("SERVICE_DOCS", "not-a-boolean")
    assert create_app().openapi_url is None  # off; the lifespan's Settings() refuses the value


@pytest.mark.parametrize("authorization", [{}, AUTH], ids=["anonymous", "with-token"])
def test_a_trailing_slash_is_never_a_redirect_to_the_callers_host(stack: Stack, authorization: dict[str, str]) -> None:
    before = stack.journal_size()
    answer = anonymous(stack.server.base_url, "POST", "/v1/chat/", {**authorization, "Host": "evil.example"})
    assert answer.status == (404 if authorization else 401), answer.head
    assert answer.header("location") is None
    assert b"evil" not in answer.body and "evil" not in answer.head.lower().replace("host: evil", "")
    assert stack.journal_size() == before


def test_a_client_who_hangs_up_mid_call_is_logged_as_499(
    slow_upstream: RunningUpstream, logs: pytest.LogCaptureFixture
) -> None:
    with running_service(slow_upstream) as service:  # plain calls take 0.5 s upstream
        headers = {**AUTH, "x-request-id": "hang-up-499"}
        hang_up(
            service.server.host,
            service.server.port,
            request_bytes("POST", "/v1/chat", headers=headers, body=BODY),
            after_s=0.2,
        )
        line = log_line_for(logs, "hang-up-499")
    assert line["status"] == 499 and line["error"] == "client_disconnected", line


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", "5"), ("max_tokens", True), ("max_tokens", 5.0), ("max_tokens", "five"), ("model", "")],
    ids=["tokens-string", "tokens-true", "tokens-float", "tokens-word", "model-empty"],
)
def test_loosely_typed_fields_are_refused_not_coerced(stack: Stack, field: str, value: Any) -> None:
    before = stack.journal_size()
    error = assert_error_response(stack.client.post("/v1/chat", json={**BODY, field: value}), 422, "invalid_value")
    assert error["param"] == field, error
    assert stack.journal_size() == before


@pytest.mark.parametrize(
    "url",
    [
        "http://svc-user:hunter2-c4n4ryc4n4ry@127.0.0.1:9/v1",
        "http://:c4n4ryc4n4ry@127.0.0.1:9/v1",
        "http://c4n4ryc4n4ry@127.0.0.1:9/v1",
        "ftp://127.0.0.1/v1",
        "http:///v1",
        "http://127.0.0.1:c4n4ryc4n4ry/v1",
    ],
    ids=["user-password", "password-only", "user-only", "not-http", "no-host", "bad-port"],
)
def test_a_base_url_with_credentials_or_no_host_stops_startup_without_quoting_it(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        service_settings(url).check()
    message = str(refused.value)
    assert "OPENAI_BASE_URL" in message and "c4n4ry" not in message and "hunter2" not in message, message


def test_the_module_refuses_a_base_url_with_credentials_in_one_line(upstream: RunningUpstream) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "SERVICE_"))}
    env |= {
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "SERVICE_TOKENS": "svc-token-x",
        "OPENAI_BASE_URL": upstream.base_url.replace("http://", "http://admin:hunter2-c4n4ryc4n4ry@"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "support.apps.hardened", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    error = cli_error_line(done, "python -m support.apps.hardened")
    assert "OPENAI_BASE_URL" in error and "hunter2" not in done.stderr
    assert_no_secrets(done.stderr)


@pytest.fixture(scope="module")
def served(upstream: RunningUpstream) -> Iterator[ServiceProcess]:
    """``python -m support.apps.hardened`` with its defaults."""
    with service_process(upstream) as running:
        yield running


@pytest.mark.parametrize(
    "payload",
    [
        b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 20_000,  # unfinished
    ],
    ids=["bad-content-length", "space-in-header-name", "not-http", "unfinished-head-over-16-KiB"],
)
def test_malformed_http_is_uvicorns_plain_400_before_the_app(served: ServiceProcess, payload: bytes) -> None:
    """A documented limit: uvicorn answers before the app runs (h11_impl.py,
    ``H11Protocol.handle_events`` -> ``send_400_response``): no request id, no JSON body, no
    log line from the service, only uvicorn's warning. The proxy in front logs these."""
    warning = "Invalid HTTP request received."
    lines_before, warnings_before = len(served.request_lines()), served.output().count(warning)
    answer = exchange(served.host, served.port, payload, bound_s=5)
    assert answer.status == 400 and answer.header("connection") == "close", answer.head
    assert answer.header("content-type") == "text/plain; charset=utf-8"
    assert answer.header("x-request-id") is None
    assert answer.body == warning.encode()
    wait_until(lambda: served.output().count(warning) > warnings_before, what="uvicorn's warning")
    # A probe after it: the service logs in order, so a line for the 400 would come before the probe's.
    probe_id = f"after-the-400-{lines_before}"
    ok = anonymous(served.base_url, "GET", "/healthz", {"x-request-id": probe_id})
    assert ok.status == 200 and json.loads(ok.body) == {"status": "ok"}  # and it serves on
    wait_until(lambda: probe_id in served.output(), what="the probe's log line")
    assert [line["request_id"] for line in served.request_lines()[lines_before:]] == [probe_id]


def test_the_served_service_logs_no_secret(served: ServiceProcess) -> None:
    anonymous(served.base_url, "POST", "/v1/chat", {"Authorization": f"Bearer {UPSTREAM_KEY}"})
    anonymous(served.base_url, "POST", "/v1/chat", AUTH)
    assert_no_secrets(served.output())
