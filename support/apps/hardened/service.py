"""The hardened service: how a careful team calls OpenAI from FastAPI.

``create_app()`` builds it; the lifespan reads the settings, checks them (failing fast,
never printing a secret), creates the one ``AsyncOpenAI`` client of the process and
closes it on shutdown; while the app serves, the garbage collector's young collections
are 10x rarer (``collector``).

``POST /v1/chat``          a completion, as JSON
``POST /v1/chat/stream``   the same as server-sent events
``POST /v1/responses/stream``  the same events, from the Responses API
``GET  /healthz``          the process is up (liveness)
``GET  /readyz``           started and able to take calls, with the limiter's counters

The door (``gate``) denies by default: every path but the two probes needs a service
token, under any root path (``--root-path``) and however the path is spelled; without one
the answer is 401. ``/docs``, ``/redoc`` and ``/openapi.json`` exist only with
``SERVICE_DOCS=true``, and then behind the token too. ``/v1/chat/`` is a 404, not a
redirect. A body must arrive within ``SERVICE_BODY_TIMEOUT_S`` (else 408) and hold at most
``SERVICE_MAX_BODY_BYTES`` (else 413). Before a request exists, ``python -m
support.apps.hardened`` bounds heads, idle connections and connection counts (see
``__main__``); uvicorn itself answers malformed HTTP (``text/plain`` 400) and requests past
``SERVICE_MAX_CONNECTIONS`` (``text/plain`` 503), with no request id and no log line here.

Time is bounded end to end. ``SERVICE_DEADLINE_S`` runs from the moment a call has its
slot until its answer, a stream's last event included; a stream also ends when the
upstream is silent for ``SERVICE_STREAM_IDLE_TIMEOUT_S``. A ``Retry-After`` the deadline
can't hold is passed on at once (429) rather than slept through. A caller who hangs up
cancels the upstream call and frees the slot at once (logged as 499). On SIGTERM,
``python -m support.apps.hardened`` lets work in flight finish for at most
``SERVICE_GRACEFUL_SHUTDOWN_S``, then cancels it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from openai import AsyncOpenAI, AsyncStream
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import collector, context, errors
from .client import make_client
from .gate import Gate
from .limits import ConcurrencyLimit, Overloaded
from .schemas import ChatIn, ChatOut, Usage
from .settings import ConfigError, Settings, docs_routes
from .streaming import GuardedEventStream, chat_events, responses_events

log = logging.getLogger("support.apps.hardened")


@dataclass
class Runtime:
    """What the lifespan builds and the requests share."""

    settings: Settings
    client: AsyncOpenAI
    limit: ConcurrencyLimit
    tokens: list[bytes]
    ready: bool = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service; `settings` default to the environment, read when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_to_stderr_if_unconfigured()
        chosen = settings if settings is not None else Settings()
        chosen.check()
        async with make_client(chosen) as client:
            app.state.runtime = runtime = Runtime(
                settings=chosen,
                client=client,
                limit=ConcurrencyLimit(
                    chosen.max_concurrency, queue=chosen.max_queue, queue_timeout_s=chosen.queue_timeout_s
                ),
                tokens=[token.get_secret_value().encode() for token in chosen.tokens],
            )
            if chosen.startup_probe:
                await _probe(client, chosen)
            runtime.ready = True
            with collector.process_pace.serving():  # young collections 10x rarer (see collector)
                yield
            runtime.ready = False

    # redirect_slashes=False: Starlette's redirect for "/v1/chat/" builds its Location from
    # the caller's Host header (starlette/routing.py, Router.app): an open redirect.
    app = FastAPI(title="hardened OpenAI service", lifespan=lifespan, redirect_slashes=False, **docs_routes(settings))
    app.add_middleware(Gate)
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # On the app's own router, not include_router(): FastAPI matches an included router's
    # routes through one more layer on every request (fastapi/routing.py, _IncludedRouter).
    _add_routes(app.router)
    return app


async def get_runtime(request: Request) -> Runtime:
    """``async def`` on purpose: FastAPI runs a plain ``def`` dependency on AnyIO's thread pool
    (fastapi/dependencies/utils.py, ``solve_dependencies``: ``run_in_threadpool`` unless it is a
    coroutine function), so every request would borrow one of its 40 threads for one attribute."""
    runtime: Runtime = request.app.state.runtime
    return runtime


Shared = Annotated[Runtime, Depends(get_runtime)]


def _add_routes(router: APIRouter) -> None:
    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(runtime: Shared) -> JSONResponse:
        status = "ready" if runtime.ready else "not ready"
        return JSONResponse({"status": status, **runtime.limit.snapshot()}, status_code=200 if runtime.ready else 503)

    @router.post("/v1/chat", responses=_ERROR_RESPONSES)
    async def chat(body: ChatIn, runtime: Shared) -> ChatOut:
        call = _upstream_request(body, runtime.settings)
        async with _cancelled_if_the_client_leaves():
            await _take_slot(runtime.limit)
            try:
                async with _upstream_errors(_start_deadline(runtime.settings)):
                    completion = await runtime.client.chat.completions.create(**call)
            finally:
                runtime.limit.release()
        record = _record()
        record.upstream_request_id = completion._request_id
        if completion.usage is not None:
            record.bill(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        choice = completion.choices[0]
        return ChatOut(
            id=completion.id,
            model=completion.model,
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            usage=Usage.model_validate(completion.usage, from_attributes=True) if completion.usage else None,
        )

    # Not response_class=EventSourceResponse: that makes FastAPI expect a generator route,
    # which would send the 200 before the upstream has answered.
    @router.post("/v1/chat/stream", response_model=None, responses=_STREAM_RESPONSES)
    async def chat_stream(body: ChatIn, runtime: Shared) -> GuardedEventStream:
        call = _upstream_request(body, runtime.settings)

        async def open_stream() -> AsyncStream[Any]:
            return await runtime.client.chat.completions.create(
                **call, stream=True, stream_options={"include_usage": True}
            )

        return await _serve_stream(runtime, open_stream, chat_events)

    # The same contract over the Responses API: its semantic events become the same
    # `delta` / `done` / `error` events, so a caller cannot tell which API served it.
    @router.post("/v1/responses/stream", response_model=None, responses=_STREAM_RESPONSES)
    async def responses_stream(body: ChatIn, runtime: Shared) -> GuardedEventStream:
        call = _upstream_request(body, runtime.settings)

        async def open_stream() -> AsyncStream[Any]:
            return await runtime.client.responses.create(
                model=call["model"], input=call["messages"], max_output_tokens=call["max_tokens"], stream=True
            )

        return await _serve_stream(runtime, open_stream, responses_events)


async def _serve_stream(
    runtime: Runtime,
    open_stream: Callable[[], Awaitable[AsyncStream[Any]]],
    to_events: Callable[..., AsyncIterator[bytes]],
) -> GuardedEventStream:
    """Open the upstream stream with a slot, under the request's deadline, and serve its events.

    The 200 waits for the upstream's headers, so early failures are HTTP errors; the same
    deadline then runs on through the stream. However the response ends, `cleanup` closes
    the upstream stream (the upstream sees the connection close and stops) and frees the slot.
    """
    async with _cancelled_if_the_client_leaves():
        await _take_slot(runtime.limit)
        deadline = _start_deadline(runtime.settings)
        try:
            async with _upstream_errors(deadline):
                stream = await open_stream()
        except BaseException:
            runtime.limit.release()
            raise
    record = _record()
    record.upstream_request_id = stream.response.headers.get("x-request-id")

    async def cleanup() -> None:
        try:
            await stream.close()
        finally:
            runtime.limit.release()

    settings = runtime.settings
    events = to_events(
        stream,
        record.request_id,
        deadline=deadline,
        idle_timeout_s=settings.stream_idle_timeout_s,
        heartbeat_s=settings.stream_heartbeat_s,
    )
    return GuardedEventStream(events, cleanup=cleanup)


def _upstream_request(body: ChatIn, settings: Settings) -> dict[str, Any]:
    """The cost guards a body can't express: the model allow-list and the output cap."""
    model = body.model or settings.model
    if model not in settings.models:
        raise errors.invalid(
            f"Model {model!r} is not allowed; use one of: {', '.join(sorted(settings.models))}.", param="model"
        )
    if body.max_tokens is not None and body.max_tokens > settings.max_output_tokens:
        raise errors.invalid(
            f"max_tokens is {body.max_tokens}; the most this service allows is {settings.max_output_tokens}.",
            param="max_tokens",
        )
    return {
        "model": model,
        "messages": [message.model_dump() for message in body.messages],
        "max_tokens": body.max_tokens or settings.max_output_tokens,
    }


async def _take_slot(limit: ConcurrencyLimit) -> None:
    if await limit.acquire_if_free():  # the usual case: no queue, no timer to arm
        return
    try:
        await limit.acquire()
    except Overloaded as exc:
        raise errors.overloaded(str(exc)) from None


def _start_deadline(settings: Settings) -> float:
    """When this request's upstream work must end (event-loop time), starting now.

    Kept on the request's record, where the SDK's transport hooks find it (``client``).
    """
    deadline = asyncio.get_running_loop().time() + settings.deadline_s
    _record().deadline = deadline
    return deadline


@asynccontextmanager
async def _upstream_errors(deadline: float) -> AsyncIterator[None]:
    """Bound the whole call (all attempts and backoff) by `deadline` and translate what the SDK raises."""
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except Exception as exc:
        mapped = errors.from_upstream(exc)
        if mapped is None:
            raise
        raise mapped from exc


@asynccontextmanager
async def _cancelled_if_the_client_leaves() -> AsyncIterator[None]:
    """Cancel the block (the wait for a slot, the SDK call) as soon as the caller hangs up.

    Starlette awaits a route without listening to the connection (starlette/routing.py,
    ``request_response``: ``response = await f(request)``); only a ``StreamingResponse``
    listens (``listen_for_disconnect``), and only once it is returned. Without this, a call
    whose caller left runs to its end: the slot stays taken and the upstream bills the
    tokens. The body has been read by now, so the next ASGI message can only be
    ``http.disconnect``, delivered the moment the socket closes; the gate's ``Departure``
    already waits for it and tells the request's record, whose hook cancels this block. The
    answer, 499 ``client_disconnected``, goes to nobody; it is what the gate's log line says
    for any request whose client left first.

    The cancellation is ``asyncio.timeout``'s, a timer with no deadline that the hook sets
    off: it counts cancellations (``Task.uncancel``), so only its own becomes the 499, however
    it meets the deadline's timer and the limiter's, and it needs no task of its own.
    """
    record = _record()
    leave = asyncio.timeout(None)
    try:
        async with leave:
            record.on_client_left = lambda: leave.reschedule(0)  # a time already past: cancel now
            if record.client_left:  # while the body was validated, before the hook was set
                leave.reschedule(0)
            try:
                yield
            finally:
                record.on_client_left = None
    except TimeoutError:
        if not leave.expired():  # not ours
            raise
        raise errors.client_disconnected() from None


async def _probe(client: AsyncOpenAI, settings: Settings) -> None:
    try:
        deadline = asyncio.get_running_loop().time() + settings.connect_timeout_s + settings.read_timeout_s
        async with _upstream_errors(deadline):
            await client.models.list()
    except errors.ServiceError as exc:
        raise ConfigError(f"startup probe failed: {exc.message} ({exc.code})") from None


def _record() -> context.RequestRecord:
    record = context.current.get()
    assert record is not None, "the Gate middleware sets it"
    return record


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    record = _record()
    record.error_code = exc.code
    record.upstream_request_id = exc.upstream_request_id or record.upstream_request_id
    if exc.status == 500 or exc.code == "upstream_quota_exhausted":  # only an operator can fix these
        log.error("%s (%s): %s", exc.code, exc.status, type(exc.__cause__).__name__ if exc.__cause__ else "-")
    return exc.response(record.request_id)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if problems and problems[0].get("type") == "json_invalid":  # its loc is a character offset, not a field
        detail = problems[0].get("ctx", {}).get("error", "")
        error = errors.invalid(f"The body is not valid JSON: {detail}".rstrip(": "))
        return await _service_error(request, error)
    first = problems[0] if problems else {}
    param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None  # drop "body"
    summary = "; ".join(
        f"{'.'.join(str(part) for part in problem.get('loc', ())[1:]) or 'body'}: {problem.get('msg')}"
        for problem in problems[:5]
    )
    error = errors.ServiceError(
        422, "invalid_value", summary or "Invalid request.", type="invalid_request_error", param=param
    )
    return await _service_error(request, error)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method, a body it can't decode), OpenAI-shaped."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8, nested too deep): invalid input
        error = errors.invalid("The request body is not valid JSON.")
    else:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        error = errors.ServiceError(
            exc.status_code, code, str(exc.detail), type="invalid_request_error", headers=dict(exc.headers or {})
        )
    return await _service_error(request, error)


def _log_to_stderr_if_unconfigured() -> None:
    if not log.hasHandlers():  # e.g. under `uvicorn ...`, which configures only its own loggers
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def _error_schema(description: str) -> dict[str, Any]:
    return {"description": description}


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error_schema("The upstream rejected the input"),
    401: _error_schema("No valid service token"),
    413: _error_schema("Body larger than SERVICE_MAX_BODY_BYTES"),
    422: _error_schema("Invalid body, model not allowed, or max_tokens above the cap"),
    429: _error_schema("The upstream is rate limiting (Retry-After)"),
    500: _error_schema("Internal error or upstream authentication failure"),
    502: _error_schema("The upstream failed"),
    503: _error_schema("Overloaded (Retry-After) or the upstream quota is exhausted"),
    504: _error_schema("Deadline or upstream timeout"),
}
_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Server-sent events: data {delta} (or {refusal}) per piece, then event done {finish_reason, usage} "
            "or event error; `: ping` comments while the model thinks"
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **_ERROR_RESPONSES,
}
