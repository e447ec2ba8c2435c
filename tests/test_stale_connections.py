"""support.stale_connections: a forgotten idle connection, per transport, with and without the fixes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from support.pools import Transport
from support.stale_connections import StaleCall, format_stale_calls, stale_call, stale_calls
from support.upstream import run_upstream

MODEL = "gpt-4o-mini"


def _call(transport: Transport, upstream_settings: dict[str, Any], **options: Any) -> StaleCall:
    async def scenario() -> StaleCall:
        async with run_upstream(latency=0.0, **upstream_settings) as upstream:
            return await stale_call(upstream, "k", MODEL, transport, idle_s=0.35, read_timeout=0.4, **options)

    return asyncio.run(asyncio.wait_for(scenario(), 20))


RESET = {"stale_after": 0.2, "stale_mode": "reset", "keep_alive": 30}
SILENT = {"stale_after": 0.2, "stale_mode": "silent", "keep_alive": 30}


@pytest.mark.parametrize(
    ("transport", "error"),
    # The SDK's aiohttp adapter maps every aiohttp.ClientConnectionError to httpx2.ConnectTimeout
    # (openai/_vendor/httpx_aiohttp/transport.py, AIOHTTP_EXC_MAP): a reset reads as a timeout.
    [("httpx2", "APIConnectionError"), ("aiohttp", "APITimeoutError")],
)
def test_a_reset_on_a_stale_connection_reaches_a_caller_without_retries(transport: Transport, error: str) -> None:
    call = _call(transport, RESET, max_retries=0, keepalive_expiry=5.0)
    assert (call.path, call.outcome, call.attempts) == ("reset", error, ["connection 1: reset (stale_connection)"])


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_the_sdks_retry_absorbs_it_on_a_new_connection(transport: Transport) -> None:
    call = _call(transport, RESET, max_retries=2, keepalive_expiry=5.0)
    assert call.outcome == "ok"
    assert call.attempts == ["connection 1: reset (stale_connection)", "connection 2: ok"]


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_silence_costs_the_whole_read_timeout(transport: Transport) -> None:
    call = _call(transport, SILENT, max_retries=0, keepalive_expiry=5.0)
    assert (call.path, call.outcome) == ("silent", "APITimeoutError")
    assert 0.35 < call.seconds < 2.0
    assert call.attempts == ["connection 1: disconnected (stale_connection)"]


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
@pytest.mark.parametrize("settings", [RESET, SILENT], ids=["reset", "silent"])
def test_a_client_that_retires_idle_connections_sooner_never_meets_one(
    transport: Transport, settings: dict[str, Any]
) -> None:
    call = _call(transport, settings, max_retries=0, keepalive_expiry=0.1)
    assert (call.outcome, call.attempts) == ("ok", ["connection 2: ok"])  # a fresh connection, first time


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
def test_a_server_that_closes_idle_connections_itself_costs_nothing(transport: Transport) -> None:
    call = _call(transport, {"keep_alive": 0.2}, max_retries=0, keepalive_expiry=5.0)
    assert (call.path, call.outcome, call.attempts) == ("closed by the server", "ok", ["connection 2: ok"])


def test_the_table_has_a_row_per_call_with_what_the_upstream_saw() -> None:
    calls = [
        StaleCall("httpx2", "reset", 2, 5.0, "ok", 0.5, ["connection 1: reset (stale_connection)", "connection 2: ok"])
    ]
    header, row = format_stale_calls(calls).splitlines()
    assert header.split()[:3] == ["transport", "the", "idle"]
    assert row.split() == [
        "httpx2", "reset", "2", "5", "s", "ok", "0.50", "s", "connection", "1:", "reset", "(stale_connection);",
        "connection", "2:", "ok",
    ]  # fmt: skip


def test_the_idle_gap_must_fall_between_the_middlebox_and_the_sdks_expiry() -> None:
    with pytest.raises(ValueError, match="need stale_after < idle_s"):
        asyncio.run(stale_calls("k", MODEL, "httpx2", stale_after=0.5, idle_s=0.4, read_timeout=1))
