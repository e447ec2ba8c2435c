"""The example services the runbook shows and runs, one FastAPI app per module.

Broken on purpose (the doctor must flag these):
    broken_await       ``await`` on the sync client: TypeError, after the call was made
    silent_blocking    the sync client inside ``async def``: no error, the loop blocks
    loop_closed        a module-level AsyncOpenAI reused across event loops

The fixes:
    fix_sync_route     a plain ``def`` route: FastAPI runs it on AnyIO's thread pool
    fix_to_thread      ``asyncio.to_thread``: the loop's default executor
    fix_to_thread_sized  the same with an executor sized for the load
    fix_async_client   ``AsyncOpenAI``, created in the lifespan and awaited (recommended)
    fix_async_aiohttp  the same over the aiohttp transport (``DefaultAioHttpClient``)

Each reads the SDK's own variables, ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, plus
``OPENAI_MODEL`` for the model, and serves ``POST /chat`` and ``GET /health``.

Streaming (notebook 06), each serving ``POST /chat/stream``:
    stream_sync        broken on purpose: a sync generator over the sync ``Stream``
    stream_async       an async generator over ``AsyncStream``, primed before the 200
    stream_unprimed    FastAPI's own SSE generator route: the 200 goes out first

Around the route (notebook 15):
    background         ``BackgroundTasks``: a ``def`` follow-up with the sync client (AnyIO's
                       limiter), an ``async def`` one (the fix)
    middleware         streaming and multi-step routes behind ``BaseHTTPMiddleware``, a
                       body-reading one, or a pure ASGI log
    azure_entra        ``AsyncAzureOpenAI`` with a Microsoft Entra ID token provider (async: the fix)

Testing (notebook 13), a package of its own: ``tested``, a summarizer and the test suite a
reader copies (``suite/``: one file per approach; ``pitfalls/``: the async layouts that fail).

The reference service, a package of its own: ``hardened`` (notebook 07).
"""
