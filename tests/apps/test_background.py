"""The background-task example service, served for real against the bundled upstream.

The service's AnyIO limiter is shrunk to a few tokens from inside its own loop, so a
burst of a dozen tickets shows in well under a second what 40 tokens show with a hundred.
Timing claims are bounds with wide margins; what the journal can say (calls at once) is
read from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anyio import to_thread

from support.apps import background
from support.serve import RunningServer, serve_in_thread
from support.threads import run_in, server_loop
from support.upstream import RunningUpstream, upstream_in_thread
from support.upstream_calls import most_in_flight
from tests.conftest import MODEL

LATENCY_S = 0.3
TOKENS = 3
TICKET = {"prompt": "The export button does nothing."}


@contextlib.contextmanager
def served(monkeypatch: pytest.MonkeyPatch, **upstream: Any) -> Iterator[tuple[RunningServer, RunningUpstream]]:
    key = "test-" + secrets.token_urlsafe(12)
    with upstream_in_thread(api_key=key, **({"latency": LATENCY_S} | upstream)) as up:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", up.base_url)
        monkeypatch.setenv("OPENAI_MODEL", MODEL)
        with serve_in_thread(background.app) as server:
            asyncio.run(run_in(server_loop(server), _set_tokens(TOKENS)))
            yield server, up


async def _set_tokens(tokens: int) -> None:
    to_thread.current_default_thread_limiter().total_tokens = tokens


async def burst(base_url: str, path: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return list(await asyncio.gather(*(http.post(path, json=TICKET) for _ in range(n))))


async def wait_summarised(base_url: str, total: int, timeout_s: float = 10.0) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (counts := (await http.get("/tickets")).json())["waiting"] or sum(counts.values()) < total:
            assert asyncio.get_running_loop().time() < deadline, counts
            await asyncio.sleep(0.02)
        return counts  # type: ignore[no-any-return]


async def timed_get(base_url: str, path: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        started = asyncio.get_running_loop().time()
        assert (await http.get(path)).status_code == 200
        return asyncio.get_running_loop().time() - started


def test_def_tasks_hold_the_limiters_tokens_and_a_def_probe_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    with served(monkeypatch) as (server, up):

        async def scenario() -> tuple[list[httpx.Response], float, float]:
            replies = await burst(server.base_url, "/tickets/sync-task", 4 * TOKENS)
            await asyncio.sleep(0.05)  # the tasks have started: every token is held, the rest wait
            def_probe, async_probe = await asyncio.gather(
                timed_get(server.base_url, "/health/def"), timed_get(server.base_url, "/health")
            )
            await wait_summarised(server.base_url, 4 * TOKENS)
            return replies, def_probe, async_probe

        replies, def_probe, async_probe = asyncio.run(scenario())
    assert {r.status_code for r in replies} == {202}
    assert sorted(r.json()["ticket"] for r in replies) == list(range(1, 4 * TOKENS + 1))
    assert most_in_flight(up.journal.entries(endpoint="chat.completions")) <= TOKENS
    assert def_probe >= LATENCY_S * 0.8  # queued behind a round of model calls, at least
    assert async_probe < def_probe / 2


def test_async_tasks_borrow_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with served(monkeypatch) as (server, up):

        async def scenario() -> tuple[float, dict[str, int]]:
            await burst(server.base_url, "/tickets", 4 * TOKENS)
            def_probe = await timed_get(server.base_url, "/health/def")
            return def_probe, await wait_summarised(server.base_url, 4 * TOKENS)

        def_probe, counts = asyncio.run(scenario())
    assert counts == {"waiting": 0, "summarised": 4 * TOKENS, "failed": 0}
    assert def_probe < LATENCY_S / 2
    assert most_in_flight(up.journal.entries(endpoint="chat.completions")) > TOKENS


def test_a_summary_is_readable_and_unknown_tickets_are_404(monkeypatch: pytest.MonkeyPatch) -> None:
    with served(monkeypatch, latency=0.01) as (server, _), httpx.Client(base_url=server.base_url, timeout=10) as http:
        number = http.post("/tickets", json=TICKET).json()["ticket"]
        asyncio.run(wait_summarised(server.base_url, 1))
        assert http.get(f"/tickets/{number}").json()["summary"]
        missing = http.get("/tickets/999999")
        assert (missing.status_code, missing.json()) == (404, {"detail": "no ticket 999999"})


def test_a_failed_follow_up_is_counted_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    with served(monkeypatch, latency=0.01, fault="bad_request") as (server, _):
        asyncio.run(burst(server.base_url, "/tickets", 2))
        asyncio.run(burst(server.base_url, "/tickets/sync-task", 2))
        counts = asyncio.run(wait_summarised(server.base_url, 4))
        summary = httpx.get(server.base_url + "/tickets/1").json()["summary"]
    assert counts == {"waiting": 0, "summarised": 0, "failed": 4}
    assert summary == "(failed: BadRequestError)"


def test_attack_bad_tickets_get_precise_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with served(monkeypatch, latency=0.01) as (server, up), httpx.Client(base_url=server.base_url, timeout=10) as http:
        cases = {
            "empty prompt": http.post("/tickets", json={"prompt": ""}),
            "huge prompt": http.post("/tickets", json={"prompt": "x" * 5000}),
            "not JSON": http.post("/tickets", content=b"{", headers={"content-type": "application/json"}),
            "no body": http.post("/tickets/sync-task"),
            "ticket not a number": http.get("/tickets/abc"),
        }
        counts = http.get("/tickets").json()
    assert {name: r.status_code for name, r in cases.items()} == dict.fromkeys(cases, 422)
    assert all("Traceback" not in r.text for r in cases.values())
    assert counts == {"waiting": 0, "summarised": 0, "failed": 0} and not up.journal.entries(
        endpoint="chat.completions"
    )


def test_attack_a_flood_of_async_tasks_leaves_both_probes_fast_and_no_token_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 tickets at once; while their follow-ups wait on the upstream, both probes answer
    quickly (no token is held), and when they are done every ticket has its summary."""
    with served(monkeypatch, latency=1.0) as (server, up):

        async def scenario() -> tuple[list[float], int, int]:
            replies = await burst(server.base_url, "/tickets", 200)
            assert {r.status_code for r in replies} == {202}
            probes = []
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                for path in ["/health", "/health/def"] * 5:  # the follow-ups are in flight
                    started = asyncio.get_running_loop().time()
                    assert (await http.get(path)).status_code == 200
                    probes.append(asyncio.get_running_loop().time() - started)
                in_flight = (await http.get("/tickets")).json()["waiting"]
            counts = await wait_summarised(server.base_url, 200)
            assert in_flight > 0 and counts["summarised"] == 200
            return probes, in_flight, await run_in(server_loop(server), _borrowed())

        probes, _, borrowed = asyncio.run(scenario())
    assert borrowed == 0 and max(probes) < 0.25, probes
    assert most_in_flight(up.journal.entries(endpoint="chat.completions")) > 100


async def _borrowed() -> int:
    return int(to_thread.current_default_thread_limiter().borrowed_tokens)
