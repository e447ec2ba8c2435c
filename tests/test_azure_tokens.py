"""The stand-in credentials and the bundled Azure endpoint (the experiment itself: tests/apps/test_azure_entra.py)."""

from __future__ import annotations

import asyncio
import time

from support.azure_tokens import AsyncSlowCredential, SlowCredential, bundled_azure


def test_credentials_take_their_delay_and_count_their_calls() -> None:
    sync = SlowCredential("t", 0.05, lifetime_s=120)
    started = time.perf_counter()
    info = sync.get_token_info("scope")
    assert time.perf_counter() - started >= 0.05 and sync.calls == 1
    assert info.token == "t" and 100 < info.expires_on - time.time() <= 120

    async def fetch() -> None:
        async with AsyncSlowCredential("t", 0.05) as credential:
            await asyncio.gather(*(credential.get_token_info("scope") for _ in range(3)))
            assert credential.calls == 3  # no cache of its own: the providers' policies cache

    asyncio.run(fetch())


def test_bundled_azure_hides_its_key_and_answers_both_clients() -> None:
    with bundled_azure(latency=0.0) as azure:
        assert azure.key not in repr(azure) and azure.endpoint.startswith("http://127.0.0.1:")
        reply = azure.sync_client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )

        async def ask() -> str | None:
            async with azure.async_client() as client:
                completion = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                return completion.choices[0].message.content

        assert reply.choices[0].message.content and asyncio.run(ask())
        assert [e.api_version for e in azure.upstream.journal.entries()] == [azure.api_version] * 2
