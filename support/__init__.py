"""The package behind the runbook's notebooks, arranged by who uses what.

What notebook cells import (top level, one job each):

- `target`: the notebooks' BASE_URL / MODEL / API_KEY_ENV parameters -> SDK clients;
- `serve`: run an ASGI app on a real socket inside a kernel, a thread or a test;
- `display`: show the source of the code that runs;
- `logcapture`: an app's exceptions from uvicorn's log, kept off stderr;
- `sse`: read server-sent events as a client would, and walk away;
- `faultmatrix`: the hardened service's answer to each upstream fault, as data;
- `threads`: AnyIO's limiter, the default executor, OS threads and memory;
- `isolated`: run code in a fresh interpreter or kernel, where a notebook's loop cannot;
- `loop_demos`: notebook 05's demonstrations (run through `isolated`);
- `reproduce`: notebook 01's harness: CPython's error texts per version, the target and its services;
- `outcomes`: what a call did, as one line: a status, a result, or the exception and where;
- `fanout`: call a service many times, a few at a time, and keep every reply;
- `upstream_calls`: what the bundled upstream received while a cell ran;
- `installed`: what installed packages say and hold (metadata; where a function lives, which names exist);
- `threaded_load`: a thread-based service under load, its limiter and threads watched from its loop;
- `cancellation`: what a departed client, a deadline or the SDK's timeout does to an upstream call;
- `client_cost`: what building an SDK client costs, and where the time goes;
- `side_by_side`: several services and the upstream alone under one load, in this process;
- `attacks`: what an outsider sends over a raw socket (odd paths, huge or trickled headers, trickled bodies, hang-ups);
- `proxy`: Debian's nginx in front of a service (config, unprivileged process, clean stop);
- `stream_shapes`: every way a chat stream can look, and the handler that survives them all;
- `pools`: an SDK client's connection pool on either transport, seen from inside and by the kernel;
- `stream_leaks`: ways to leave a stream open, their fixes, and what each leaves in a small pool;
- `soak`: many mixed calls, and what the process retains at the start, middle and end;
- `stale_connections`: a kept-alive connection a middlebox forgot, and what each client does;
- `paced`: a client-side limiter for a key's requests and tokens limits, sized from the x-ratelimit-* headers;
- `batches`: one batch under rate limits, sent by gather, a semaphore and the pacer, and what each cost;
- `retry_layers`: tenacity over the SDK's retries, and one retry layer that fails fast on insufficient_quota;
- `loop_clients`: one AsyncOpenAI shared by thread-pool workers that asyncio.run each task, and the fixes;
- `azure_tokens`: the bundled upstream reached as Azure OpenAI, and Entra ID token providers under load;
- `background_flood`: a burst of tickets whose follow-ups run as background tasks, and two health probes meanwhile;
- `middleware_streams`: a stream, and a multi-step request, through each request-log middleware, seen from both ends;
- `seeded_bugs`: seed one realistic bug into a copy of the tested service, and run each test approach against it;
- `tables`: aligned plain-text tables.

The tools, one folder each:

- `upstream/`: the bundled OpenAI-compatible server (``python -m support.upstream``);
- `apps/`: the example services the notebooks show and run; `apps/hardened/` the template;
- `deploy/`: the template as a deployment runs it: uvicorn ``--workers`` and gunicorn as real processes (notebook 14);
- `bench/`: the benchmark and all measurement plumbing (``python -m support.bench``);
- `doctor/`: static and runtime detection of the anti-patterns (``python -m support.doctor``);
- `devtools/`: what only CI and maintainers run (notebook execution, normalizing, site checks).
"""
