"""The door: request ids, the service token, the body cap, and one log line per request.

Pure ASGI middleware, so it runs before FastAPI reads or parses a body: a caller without
a valid token learns nothing but 401, and an oversized body is refused unread (by its
``Content-Length``) or after at most ``max_body_bytes`` (when sent chunked).
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import context, errors

log = logging.getLogger("support.apps.hardened")
PROTECTED_PREFIX = "/v1/"


def token_is_valid(authorization: str | None, tokens: list[bytes]) -> bool:
    """Constant-time check of ``Bearer <token>`` against every accepted token."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    candidate = presented.strip().encode()
    # Compare against all of them, so the time taken doesn't say which one came close.
    return sum(hmac.compare_digest(candidate, token) for token in tokens) > 0


class Gate:
    """Reads its limits from ``app.state.runtime``, which the lifespan sets up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        record = context.RequestRecord(context.request_id_from(headers.get("x-request-id")))
        reset = context.current.set(record)
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", record.request_id.encode()))
            await send(message)

        try:
            refusal, receive = await self._check(scope, headers, receive)
            if refusal is not None:
                record.error_code = refusal.code
                await refusal.response(record.request_id)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # The traceback goes to the log; the client gets a 500 with the request id.
            log.exception("unexpected error serving %s", record.request_id)
            record.error_code = "internal_error"
            if status:  # the response had started: nothing left to say
                raise
            await errors.internal_error().response(record.request_id)(scope, receive, send_with_id)
        finally:
            context.current.reset(reset)
            log.info(
                json.dumps(
                    {
                        "event": "request",
                        "request_id": record.request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                        "upstream_attempts": record.upstream_attempts,
                        "upstream_request_id": record.upstream_request_id,
                        "error": record.error_code,
                    }
                )
            )

    async def _check(
        self, scope: Scope, headers: Headers, receive: Receive
    ) -> tuple[errors.ServiceError | None, Receive]:
        if not scope["path"].startswith(PROTECTED_PREFIX):
            return None, receive
        runtime = scope["app"].state.runtime
        if not token_is_valid(headers.get("authorization"), runtime.tokens):
            return errors.unauthorized(), receive
        limit = runtime.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return errors.too_large(limit), receive
        # Chunked (or lying) bodies: read up to the cap, then replay what was read.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, _replay([message])
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                return errors.too_large(limit), receive
        return None, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], then=receive)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
