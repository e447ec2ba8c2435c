"""Server-sent events over an ``AsyncStream``, with cleanup that always runs.

The route awaits the stream's creation *before* returning this response, so an upstream
that fails early (429, 5xx, timeout) becomes a proper HTTP error, not a 200 with an
error inside. Once the 200 is sent, an error can only travel as an SSE ``error`` event.

A started stream is still bounded: by the request's deadline (``SERVICE_DEADLINE_S``,
counted from when the call took its slot) and by ``SERVICE_STREAM_IDLE_TIMEOUT_S`` between
chunks. Either ends it with an ``error`` event (504's ``upstream_timeout``), then the
cleanup below closes the upstream stream and frees the slot.

When the server cancels the response (SIGTERM, past ``SERVICE_GRACEFUL_SHUTDOWN_S``),
the client gets a last ``error`` event (503's ``shutting_down``) before the connection ends.

When the client leaves, Starlette cancels the body iterator. The cleanup here (close the
upstream stream, release the concurrency slot) then runs shielded from that
cancellation: an unshielded ``await stream.close()`` would be cancelled too, and the
upstream would keep generating tokens nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
from fastapi.sse import EventSourceResponse, format_sse_event
from openai import APIError, AsyncStream
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from starlette.types import Receive, Scope, Send

from . import context, errors
from .schemas import Usage

log = logging.getLogger("support.apps.hardened")


Chunk = TypeVar("Chunk")
# An SSE comment line: every SSE parser skips it (the SDK's too: openai/_streaming.py,
# SSEDecoder.decode ignores a line starting with ":"), and it is the bytes FastAPI's own
# SSE routes send as a keep-alive (fastapi/sse.py, KEEPALIVE_COMMENT).
HEARTBEAT = b": ping\n\n"


def _event(data: dict[str, Any], event: str | None = None) -> bytes:
    return format_sse_event(data_str=json.dumps(data, separators=(",", ":")), event=event)


async def within_limits(
    stream: AsyncIterable[Chunk], *, deadline: float, idle_timeout_s: float, heartbeat_s: float = 0.0
) -> AsyncGenerator[Chunk | None, None]:
    """The stream's chunks while each comes within `idle_timeout_s` and all before `deadline`;
    before the first one, a ``None`` every `heartbeat_s` (if > 0) for the caller to send a
    keep-alive while the model thinks.

    Only the wait for the next chunk is timed, never a ``yield``: a timeout around a yield
    would fire in whatever the consumer is awaiting then (Starlette's ``send``) and escape
    as a bare cancellation instead of an error event. `deadline` is event-loop time.
    """
    loop = asyncio.get_running_loop()
    chunks = aiter(stream)
    if heartbeat_s > 0:
        first = asyncio.ensure_future(anext(chunks))  # one read, kept across heartbeats
        try:
            limit = min(deadline, loop.time() + idle_timeout_s)
            while not first.done():
                await asyncio.wait({first}, timeout=max(0.0, min(limit, loop.time() + heartbeat_s) - loop.time()))
                if first.done():
                    break
                if loop.time() >= limit:
                    raise (
                        errors.stream_past_deadline() if loop.time() >= deadline else errors.stream_idle(idle_timeout_s)
                    )
                yield None
        finally:
            if not first.done():
                first.cancel()  # the read in flight; the caller's cleanup closes the stream
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({first})
        try:
            chunk = first.result()
        except StopAsyncIteration:
            return
        yield chunk
    while True:
        timer = asyncio.timeout_at(min(deadline, loop.time() + idle_timeout_s))
        try:
            async with timer:
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if not timer.expired():  # the transport's own timeout, not ours
                raise
            if loop.time() >= deadline:
                raise errors.stream_past_deadline() from None
            raise errors.stream_idle(idle_timeout_s) from None
        yield chunk


async def chat_events(
    stream: AsyncStream[ChatCompletionChunk],
    request_id: str,
    *,
    deadline: float,
    idle_timeout_s: float,
    heartbeat_s: float = 0.0,
) -> AsyncIterator[bytes]:
    """``data: {"delta": ...}`` per chunk, then ``event: done`` (with usage) or ``event: error``;
    before the first chunk, a ``: ping`` comment every `heartbeat_s` (SSE parsers skip comments)."""
    finish_reason, usage = None, None
    limits = within_limits(stream, deadline=deadline, idle_timeout_s=idle_timeout_s, heartbeat_s=heartbeat_s)
    try:
        async with aclosing(limits) as chunks:
            async for chunk in chunks:
                if chunk is None:
                    yield HEARTBEAT
                    continue
                if chunk.usage is not None:  # the last chunk (include_usage): no choices
                    usage = _billed(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:  # none in Azure's first chunk (content-filter results)
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta.content:  # None in role-only, tool-call and refusal chunks
                        yield _event({"delta": choice.delta.content})
                    if choice.delta.refusal:
                        yield _event({"refusal": choice.delta.refusal})
    except Exception as exc:  # after the 200 an error can only be an event
        yield _failed(exc, request_id)
        return
    yield _event({"finish_reason": finish_reason, "usage": usage}, event="done")


async def responses_events(
    stream: AsyncStream[ResponseStreamEvent],
    request_id: str,
    *,
    deadline: float,
    idle_timeout_s: float,
    heartbeat_s: float = 0.0,
) -> AsyncIterator[bytes]:
    """The Responses API's semantic events as `chat_events`' events: text and refusal deltas,
    then ``done`` from ``response.completed`` / ``response.incomplete``, or ``error``.

    Unlike a chat stream, the SDK does not raise on the Responses API's ``error`` event or
    on ``response.failed`` (openai/_streaming.py raises only for data with an ``error``
    key): they arrive as events, and are turned into the same ``error`` event here.
    """
    limits = within_limits(stream, deadline=deadline, idle_timeout_s=idle_timeout_s, heartbeat_s=heartbeat_s)
    try:
        async with aclosing(limits) as events:
            async for event in events:
                if event is None:
                    yield HEARTBEAT
                elif event.type == "response.output_text.delta":
                    yield _event({"delta": event.delta})
                elif event.type == "response.refusal.delta":
                    yield _event({"refusal": event.delta})
                elif event.type in ("response.completed", "response.incomplete"):
                    done = event.response
                    usage = _billed(done.usage.input_tokens, done.usage.output_tokens) if done.usage else None
                    reason = done.incomplete_details.reason if done.incomplete_details else None
                    finish_reason = "length" if reason == "max_output_tokens" else (reason or "stop")
                    yield _event({"finish_reason": finish_reason, "usage": usage}, event="done")
                    return
                elif event.type in ("error", "response.failed"):
                    error = event.response.error if event.type == "response.failed" else event
                    message = error.message if error is not None else "response.failed"
                    raise APIError(message, stream.response.request, body={"type": event.type, "message": message})
    except Exception as exc:
        yield _failed(exc, request_id)
        return
    yield _failed(
        APIError("the stream ended without response.completed", stream.response.request, body=None), request_id
    )


def _billed(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """The usage a ``done`` event carries, also noted on the request's log line."""
    record = context.current.get()
    if record is not None:
        record.bill(input_tokens, output_tokens)
    return Usage(
        prompt_tokens=input_tokens, completion_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    ).model_dump()


def _failed(exc: Exception, request_id: str) -> bytes:
    """The ``error`` event for an exception after the 200 (noted on the request's record)."""
    failure = errors.from_upstream(exc) or errors.internal_error()
    record = context.current.get()
    if record is not None:
        record.error_code = failure.code
        failure.upstream_request_id = failure.upstream_request_id or record.upstream_request_id
    log.warning(
        "stream failed after the 200: %s (%s)", failure.code, type(exc).__name__, exc_info=failure.status == 500
    )
    return _event(failure.body(request_id), event="error")


class GuardedEventStream(EventSourceResponse):
    """An SSE response whose `cleanup` runs however the response ends: done, failed, or abandoned."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        cleanup: Callable[[], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        # X-Accel-Buffering: no turns nginx's proxy buffering off for this response; behind a
        # gzip that compresses event streams, that is what keeps each event flowing instead of
        # the whole reply arriving at its end (notebook 10). FastAPI's own SSE routes send it
        # too (fastapi/routing.py).
        defaults = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        super().__init__(content, headers={**defaults, **(headers or {})})
        self.cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Not the client leaving (Starlette absorbs that cancellation in its own task group):
            # the server is cancelling the response, as uvicorn does at the graceful-shutdown bound
            # (uvicorn/server.py, Server.shutdown). Tell the client, who is still there, and go on.
            with anyio.CancelScope(shield=True):
                await _last_words(send, errors.shutting_down())
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self.cleanup()


async def _last_words(send: Send, failure: errors.ServiceError) -> None:
    """An ``error`` event and the end of the response, if the connection still takes them."""
    record = context.current.get()
    event = _event(failure.body(record.request_id if record else None), event="error")
    with contextlib.suppress(Exception):  # e.g. the response never started: nothing to add to
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
