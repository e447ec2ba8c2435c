"""Keep-alive and stale connections: the upstream closes idle connections, and a middlebox can forget them.

Driven by a raw socket where the timing of the server's close is the point, by a raw
``httpx2.AsyncClient``, and by the real `AsyncOpenAI` on both of its transports (the
default httpx2 and ``DefaultAioHttpClient``). The journal numbers each request's
connection, so a new connection shows as a new number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

from support.upstream import JournalEntry, RunningUpstream, UpstreamSettings, run_upstream, upstream_in_thread
from tests.conftest import MODEL, cli_error_line
from tests.upstream.test_cli import clean_env, run_cli, start_cli

PROMPT = [{"role": "user", "content": "hi"}]
FAST = {"latency": 0.0, "ttft": 0.0, "chunk_delay": 0.0}
TRANSPORTS: dict[str, Callable[[], httpx2.AsyncClient]] = {
    "httpx2": DefaultAsyncHttpxClient,
    "aiohttp": DefaultAioHttpClient,
}


def sdk(up: RunningUpstream, transport: str, **options: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=up.base_url, api_key="k", http_client=TRANSPORTS[transport](), **options)


def chain(error: BaseException) -> list[str]:
    """The exception and its causes, outermost first, as module.Class."""
    names = []
    current: BaseException | None = error
    while current is not None:
        names.append(f"{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    return names


def seen(entries: list[JournalEntry]) -> list[tuple[int | None, str | None, str]]:
    return [(e.connection, e.fault, e.outcome) for e in entries]


async def seconds_until_closed(host: str, port: int) -> float:
    """Send one request on a fresh connection, read the answer, and time how long the idle connection lives."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: upstream\r\nAuthorization: Bearer k\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if line)
        length = int(fields[b"content-length"])
        await asyncio.wait_for(reader.readexactly(length), 5)
        idle_from = time.monotonic()
        assert await asyncio.wait_for(reader.read(1), 10) == b""  # a clean close: EOF, no reset
        return time.monotonic() - idle_from
    finally:
        writer.close()


# --- keep-alive --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_alive", [0.3, 1.0])
def test_the_server_closes_an_idle_connection_after_keep_alive(keep_alive: float) -> None:
    async def main() -> float:
        async with run_upstream(keep_alive=keep_alive, **FAST) as up:
            return await seconds_until_closed(up.server.host, up.server.port)

    lived = asyncio.run(main())
    assert keep_alive - 0.05 <= lived < keep_alive + 0.5, lived


def test_an_upstream_in_a_thread_closes_idle_connections_too() -> None:
    with upstream_in_thread(keep_alive=0.3, **FAST) as up:
        lived = asyncio.run(seconds_until_closed(up.server.host, up.server.port))
    assert 0.25 <= lived < 0.8, lived


def test_the_cli_passes_keep_alive_to_uvicorn() -> None:
    proc, base_url = start_cli("--keep-alive", "0.4")
    try:
        host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
        lived = asyncio.run(seconds_until_closed(host, int(port)))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert 0.35 <= lived < 0.9, lived


@pytest.mark.parametrize("client", ["raw httpx2", "sdk httpx2", "sdk aiohttp"])
@pytest.mark.parametrize(("keep_alive", "connections"), [(0.3, [1, 1, 2]), (5.0, [1, 1, 1])])
def test_a_client_reconnects_quietly_after_the_server_closed_an_idle_connection(
    client: str, keep_alive: float, connections: list[int]
) -> None:
    async def main() -> list[JournalEntry]:
        async with run_upstream(keep_alive=keep_alive, **FAST) as up:
            if client == "raw httpx2":
                async with httpx2.AsyncClient(base_url=up.base_url, headers={"Authorization": "Bearer k"}) as raw:
                    for pause in (0, 0, 0.6):
                        await asyncio.sleep(pause)
                        reply = await raw.post("/chat/completions", json={"model": MODEL, "messages": PROMPT})
                        assert reply.status_code == 200
            else:
                async with sdk(up, client.split()[1], max_retries=0) as openai_client:
                    for pause in (0, 0, 0.6):
                        await asyncio.sleep(pause)
                        await openai_client.chat.completions.create(model=MODEL, messages=PROMPT)
            return up.journal.entries()

    entries = asyncio.run(main())
    assert [e.connection for e in entries] == connections
    assert [e.outcome for e in entries] == ["ok"] * 3
    assert entries[0].connection_idle is None and entries[1].connection_idle is not None


# --- stale connections ------------------------------------------------------------------------------


STALE = {"keep_alive": 5.0, "stale_after": 0.2, **FAST}

# What each transport raises when a stale connection is reset under it (max_retries=0). The
# aiohttp transport's table (openai/_vendor/httpx_aiohttp/transport.py, AIOHTTP_EXC_MAP) maps
# every aiohttp.ClientConnectionError, a reset included, to httpx2.ConnectTimeout, which the
# SDK reports as a timeout.
RESET_RAISES = {
    "httpx2": (
        openai.APIConnectionError,
        ["openai.APIConnectionError", "httpx2.ReadError", "httpcore2.ReadError"],
    ),
    "aiohttp": (
        openai.APITimeoutError,
        ["openai.APITimeoutError", "httpx2.ConnectTimeout", "aiohttp.client_exceptions.ClientOSError"],
    ),
}


def _failed_call_after_idle(
    transport: str, upstream: dict[str, Any], **client_options: Any
) -> tuple[BaseException, float, list[JournalEntry]]:
    """One call, 0.35 s idle, then a call that must fail: its error, how long it took, the journal."""

    async def main() -> tuple[BaseException, float, list[JournalEntry]]:
        async with run_upstream(**upstream) as up, sdk(up, transport, max_retries=0, **client_options) as client:
            await client.chat.completions.create(model=MODEL, messages=PROMPT)
            await asyncio.sleep(0.35)
            started = time.monotonic()
            with pytest.raises(openai.APIConnectionError) as caught:  # APITimeoutError is one
                await client.chat.completions.create(model=MODEL, messages=PROMPT)
            elapsed = time.monotonic() - started
            entries = await up.journal.wait_for(lambda es: len(es) == 2 and es[1].finished_at is not None)
        return caught.value, elapsed, entries

    return asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_request_on_a_stale_connection_is_reset(transport: str) -> None:
    error, elapsed, entries = _failed_call_after_idle(transport, STALE)
    expected_type, expected_chain = RESET_RAISES[transport]
    assert type(error) is expected_type
    names = chain(error)
    assert names[: len(expected_chain)] == expected_chain and names[-1] == "builtins.ConnectionResetError", names
    assert elapsed < 0.5, elapsed  # at once: no timeout was waited for
    assert seen(entries) == [(1, None, "ok"), (1, "stale_connection", "reset")]
    assert entries[1].connection_idle is not None and entries[1].connection_idle > 0.2
    assert entries[1].status is None  # not a byte of an answer


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_sdks_retry_absorbs_a_stale_reset_on_a_new_connection(transport: str) -> None:
    async def main() -> list[JournalEntry]:
        async with run_upstream(**STALE) as up, sdk(up, transport) as client:
            await client.chat.completions.create(model=MODEL, messages=PROMPT)
            await asyncio.sleep(0.35)
            reply = await client.chat.completions.create(model=MODEL, messages=PROMPT)
            assert reply.choices[0].message.content
            return up.journal.entries()

    entries = asyncio.run(main())
    assert [(e.attempt, e.connection, e.fault, e.outcome) for e in entries] == [
        (0, 1, None, "ok"),
        (0, 1, "stale_connection", "reset"),
        (1, 2, None, "ok"),  # the retry opens a new connection, whose first request is never stale
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_silent_stale_connection_ends_in_the_clients_read_timeout(transport: str) -> None:
    error, elapsed, entries = _failed_call_after_idle(transport, {**STALE, "stale_mode": "silent"}, timeout=0.4)
    assert isinstance(error, openai.APITimeoutError)
    assert chain(error)[1] == "httpx2.ReadTimeout", chain(error)
    assert 0.4 <= elapsed < 1.0, elapsed
    assert seen(entries) == [(1, None, "ok"), (1, "stale_connection", "disconnected")]


def test_a_silent_stale_connection_is_cut_after_max_hang() -> None:
    async def main() -> tuple[float, list[JournalEntry]]:
        async with (
            run_upstream(**STALE, stale_mode="silent", max_hang=0.3) as up,
            sdk(up, "httpx2", max_retries=0, timeout=5) as client,
        ):
            await client.chat.completions.create(model=MODEL, messages=PROMPT)
            await asyncio.sleep(0.35)
            started = time.monotonic()
            with pytest.raises(openai.APIConnectionError):
                await client.chat.completions.create(model=MODEL, messages=PROMPT)
            elapsed = time.monotonic() - started
            entries = await up.journal.wait_for(lambda es: len(es) == 2 and es[1].finished_at is not None)
        return elapsed, entries

    elapsed, entries = asyncio.run(main())
    assert 0.3 <= elapsed < 1.0, elapsed
    assert seen(entries) == [(1, None, "ok"), (1, "stale_connection", "reset")]


def test_a_connections_first_request_is_never_stale_and_a_busy_one_never_idles() -> None:
    async def main() -> list[JournalEntry]:
        async with run_upstream(keep_alive=5.0, stale_after=0.2, latency=0.4, ttft=0, chunk_delay=0) as up:
            reader, writer = await asyncio.open_connection(up.server.host, up.server.port)
            await asyncio.sleep(0.35)  # connected, idle longer than stale_after, nothing sent yet
            writer.write(b"GET /v1/models HTTP/1.1\r\nHost: upstream\r\nAuthorization: Bearer k\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).startswith(b"HTTP/1.1 200")
            writer.close()
            async with sdk(up, "httpx2", max_retries=0) as client:  # 0.4 s in progress: longer than 0.2 s, not idle
                for _ in range(2):
                    await client.chat.completions.create(model=MODEL, messages=PROMPT)
            return up.journal.entries()

    entries = asyncio.run(main())
    assert seen(entries) == [(1, None, "ok"), (2, None, "ok"), (2, None, "ok")]


# --- configuration ---------------------------------------------------------------------------------


def test_the_cli_documents_keep_alive_and_stale_connections_and_refuses_bad_values() -> None:
    helped = " ".join(run_cli("--help").stdout.split())
    for text in ("--keep-alive S", "--stale-after S", "--stale-mode {reset,silent}"):
        assert text in helped
    assert "Only meaningful below --keep-alive" in helped
    for args, message in [
        (("--keep-alive", "0"), "--keep-alive: Input should be greater than 0"),
        (("--stale-after", "nan"), "--stale-after: Input should be a finite number"),
        (("--stale-mode", "drop"), "argument --stale-mode: invalid choice: 'drop' (choose from 'reset', 'silent')"),
    ]:
        assert cli_error_line(run_cli(*args), "python -m support.upstream").endswith(message)
    bad_env = run_cli(env=clean_env(UPSTREAM_STALE_MODE="drop"))
    assert "UPSTREAM_STALE_MODE: Input should be 'reset' or 'silent'" in cli_error_line(
        bad_env, "python -m support.upstream"
    )


def test_the_environment_sets_keep_alive_and_staleness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEEP_ALIVE", "75")
    monkeypatch.setenv("UPSTREAM_STALE_AFTER", "30")
    monkeypatch.setenv("UPSTREAM_STALE_MODE", "silent")
    settings = UpstreamSettings()
    assert (settings.keep_alive, settings.stale_after, settings.stale_mode) == (75.0, 30.0, "silent")
