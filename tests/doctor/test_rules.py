"""The rules' messages say what happens at run time: checked here against the installed SDK,
and none of them quotes a measured figure (a timing goes stale; the mechanism does not)."""

from __future__ import annotations

import re
import ssl
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

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


def test_oa108_the_sdk_closes_a_streams_response_only_when_iteration_ends_or_on_close() -> None:
    """OA108 (unread): "the SDK closes a stream's response when its iteration ends or on `close()`, and a
    stream never iterated has no iteration to end, so not even garbage collection closes it"."""
    import inspect

    import httpx2
    from openai import AsyncStream, Stream

    for cls, closing in [(Stream, "response.close()"), (AsyncStream, "response.aclose()")]:
        generator = inspect.getsource(cls.__stream__)  # type: ignore[attr-defined]
        assert closing in generator.split("finally:", 1)[1]  # iteration ended: by exhaustion, error or close
        assert closing in inspect.getsource(cls.close)
        assert "__del__" not in vars(cls)  # nothing closes it when it is collected
    assert not any("__del__" in vars(c) for c in httpx2.Response.__mro__)


@pytest.mark.parametrize(("leave", "next_call"), [("unread", "APITimeoutError"), ("break", "ok")])
def test_oa108_an_unread_sync_stream_holds_its_connection_for_good_one_left_by_break_until_collected(
    leave: str, next_call: str
) -> None:
    """OA108: a stream left by `break` is held "until the stream is garbage-collected"; one never iterated
    (the unread variant) "for good": after the whole reply has arrived and a full collection, the next call
    on a one-connection pool still finds no connection (the sync client, on the SDK's default transport)."""
    import gc

    import httpx2
    from openai import APITimeoutError, DefaultHttpxClient

    from support.upstream import upstream_in_thread
    from tests.conftest import MODEL, wait_until

    prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me a story."}]
    with upstream_in_thread(ttft=0.0, chunk_delay=0.01, reply_tokens=10) as upstream:
        timeout = httpx2.Timeout(10.0, connect=5.0, pool=0.3)
        limits = httpx2.Limits(max_connections=1, max_keepalive_connections=1)
        http_client = DefaultHttpxClient(limits=limits, timeout=timeout)
        with OpenAI(base_url=upstream.base_url, api_key="k", http_client=http_client, max_retries=0) as client:

            def leak() -> None:  # the stream's only reference dies with this frame
                stream = client.chat.completions.create(model=MODEL, messages=prompt, stream=True)
                if leave == "break":
                    for _chunk in stream:
                        break

            leak()
            wait_until(lambda: upstream.journal.entries()[-1].outcome == "ok", what="the whole reply sent")
            gc.collect()
            try:
                client.chat.completions.create(model=MODEL, messages=prompt)
                got = "ok"
            except APITimeoutError:
                got = "APITimeoutError"
    assert got == next_call
