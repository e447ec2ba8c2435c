"""The rules' messages say what happens at run time: checked here against the installed SDK,
and none of them quotes a measured figure (a timing goes stale; the mechanism does not)."""

from __future__ import annotations

import re
import ssl
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from support.doctor.rules import RULES, VARIANTS


@pytest.mark.parametrize("message", [r.message for r in RULES.values()] + list(VARIANTS.values()))
def test_no_message_quotes_a_measured_figure(message: str) -> None:
    assert not re.search(r"[~≈]\s?\d|\d\s?(?:ms|s|%)\b", message), message


@pytest.mark.parametrize("cls", [OpenAI, AsyncOpenAI])
def test_oa104_each_client_loads_the_ca_bundle_into_a_new_ssl_context(
    cls: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OA104: "every request builds a new client and connection pool (loading the CA bundle into a new SSL
    context...)"."""
    loads: list[ssl.SSLContext] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    first, second = cls(api_key="test"), cls(api_key="test")
    assert len(loads) == 2 and loads[0] is not loads[1]  # one new context, one load, per client
    assert first._client is not second._client  # and a pool each


@pytest.mark.parametrize("cls", [OpenAI, AsyncOpenAI])
def test_oa104_with_options_shares_the_pool(cls: type[Any]) -> None:
    """OA104: "for per-request settings use `client.with_options(...)`, which shares the pool"."""
    client = cls(api_key="test")
    assert client.with_options(timeout=3, max_retries=0)._client is client._client
