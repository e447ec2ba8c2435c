"""fix_sync_route (fix A): a request makes the thread hops a def route needs and no more.

FastAPI runs a plain-``def`` dependency on AnyIO's thread pool, one more token and
thread hop per request than the route itself needs (`solve_dependencies`), so the
example's `get_client` must be ``async def``. The hops are counted, not inferred.
"""

from __future__ import annotations

import inspect

import httpx
from fastapi import Request

from support.serve import serve_in_thread
from support.threads import counting_thread_hops
from tests.conftest import Binder

BODY = {"prompt": "Why should an async route await an async client?"}


def test_get_client_is_async(bind: Binder) -> None:
    assert inspect.iscoroutinefunction(bind("fix_sync_route").module.get_client)


def test_a_request_hops_to_a_thread_for_the_route_and_its_answer_only(bind: Binder) -> None:
    fix_a = bind("fix_sync_route")
    with serve_in_thread(fix_a.app) as server, counting_thread_hops() as hops:
        response = httpx.post(server.base_url + "/chat", json=BODY, timeout=30)
    assert response.status_code == 200 and response.json()["text"]
    assert hops == ["chat", "ModelField.validate"], hops  # no hop for get_client


def test_a_def_dependency_would_add_a_hop(bind: Binder) -> None:
    """The same dependency as a plain def (what the example used to have): one hop more."""
    fix_a = bind("fix_sync_route")

    def get_client_sync(request: Request) -> object:
        return request.app.state.openai

    fix_a.app.dependency_overrides[fix_a.module.get_client] = get_client_sync
    try:
        with serve_in_thread(fix_a.app) as server, counting_thread_hops() as hops:
            response = httpx.post(server.base_url + "/chat", json=BODY, timeout=30)
    finally:
        fix_a.app.dependency_overrides.clear()
    assert response.status_code == 200
    assert hops[0].endswith("get_client_sync") and hops[1:] == ["chat", "ModelField.validate"], hops
