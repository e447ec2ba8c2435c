"""The bundled upstream as a plain ASGI app: the OpenAI wire protocol, on purpose slow.

It is plain ASGI rather than FastAPI for two reasons: it must never be the bottleneck
of a measurement, and the ``reset`` fault needs the raw connection, which a framework
would hide.

Routes: ``POST /v1/chat/completions``, ``POST /v1/responses``, ``GET /v1/models``,
``GET /v1/models/{id}``, the same in Azure OpenAI's shape (``/openai/deployments/{name}/chat/completions``,
``/openai/responses``, ``/openai/models``; see `azure`), and for notebooks running it in another process
``GET``/``DELETE /_upstream/journal``.

A request goes through, in order: the stale-connection check (``stale_after``), routing,
authentication, parsing and validation, the model check, the per-key rate limits, the
fault, the capacity gate, and the generation. So a request refused by a rate limit never
takes a generation slot, and one refused by validation never counts against a limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .azure import azure_key, azure_route, check_deployment
from .capacity import GenerationGate, Turn
from .chat_wire import StreamEvent, chat_chunks, chat_completion
from .connections import ConnectionTracker, Visit, transport_of
from .errors import UpstreamError
from .faults import Fault, parse_fault
from .journal import Journal, JournalEntry, Outcome
from .latency import latency_factor
from .ratelimits import UNLIMITED_HEADERS, RateLimiter, token_cost
from .replies import Reply, make_reply, prompt_tokens, request_id
from .requests import GenerationRequest, decode_json_object, parse_chat_request, parse_responses_request
from .responses_wire import response_events, response_object, stored
from .settings import UpstreamSettings
from .stored import ResponseStore

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
FAULT_HEADER = b"x-upstream-fault"
LATENCY_HEADER = b"x-upstream-latency"
ROUTES = {  # path: (method, endpoint); /v1/models/{id} is "models" too
    "/v1/chat/completions": ("POST", "chat.completions"),
    "/v1/responses": ("POST", "responses"),
    "/v1/models": ("GET", "models"),
}


class UpstreamApp:
    """An OpenAI-compatible ASGI app with a latency model, faults and a journal."""

    def __init__(self, settings: UpstreamSettings | None = None, journal: Journal | None = None) -> None:
        self.settings = settings or UpstreamSettings()
        self.journal = journal or Journal()
        self.server_fault = parse_fault(self.settings.fault, source="fault setting") if self.settings.fault else None
        self.gate = GenerationGate(self.settings.capacity)
        self.responses = ResponseStore()  # for previous_response_id
        self.limits = RateLimiter(
            self.settings.rate_limit_requests, self.settings.rate_limit_tokens, self.settings.rate_limit_window
        )
        self.connections = ConnectionTracker()  # for stale_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return  # websockets are not part of the API
        visit = self.connections.arrive(scope, send)
        try:
            if scope["path"] == "/_upstream/journal":  # control route: not itself journaled, never stale
                return await _journal_route(self.journal, scope["method"], send)
            await self._exchange(scope, receive, send, visit)
        finally:
            self.connections.leave(visit)

    async def _exchange(self, scope: Scope, receive: Receive, send: Send, visit: Visit) -> None:
        exchange = _Exchange(self, scope, receive, send, visit)
        try:
            await exchange.handle()
        except UpstreamError as error:
            await exchange.send_error(error)
        except Exception:  # a bug here still answers as the API would, and shows in the server's log
            logger.exception("bundled upstream: unexpected error on %s %s", scope["method"], scope["path"])
            await exchange.send_error(UpstreamError(500, SERVER_ERROR_MESSAGE, type="server_error"))
        finally:
            exchange.finish()


class _Exchange:
    """One request and its answer; records itself in the journal as it goes."""

    def __init__(self, app: UpstreamApp, scope: Scope, receive: Receive, send: Send, visit: Visit) -> None:
        self.app = app
        self.settings = app.settings
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = dict(scope["headers"])
        self.entry: JournalEntry = app.journal.open(
            scope["method"], scope["path"], lambda seq: request_id(self.settings.seed, seq)
        )
        retry_count = self.headers.get(b"x-stainless-retry-count", b"").decode("latin-1")
        self.entry.attempt = int(retry_count) if retry_count.isdigit() else None
        self.visit = visit
        self.entry.connection, self.entry.connection_idle = visit.number, visit.idle
        self.rate_headers = UNLIMITED_HEADERS  # a generation's own once the rate limits have counted it
        self.disconnected = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self.response_started = False
        self.latency_origin = self.entry.received_at  # a queued request's latency runs from its turn
        self.holds_slot = False

    # --- routing ----------------------------------------------------------------------

    async def handle(self) -> None:
        method, path = self.scope["method"], self.scope["path"]
        azure = azure_route(path, self.scope.get("query_string", b""))
        if azure is not None:  # AsyncAzureOpenAI's shape: the OpenAI path it stands for
            path, self.entry.api_version = azure.openai_path, azure.api_version
        route = ("GET", "models") if path.startswith("/v1/models/") else ROUTES.get(path)
        if route is not None and method == route[0]:
            self.entry.endpoint = route[1]
        if await self._stale():
            return
        if route is None:
            raise UpstreamError(404, f"Invalid URL ({method} {path})")
        allowed, endpoint = route
        if method != allowed:
            raise UpstreamError(405, f"Invalid method for URL ({method} {path})")
        if azure is not None:
            azure.check()
        key = self._authenticate(azure is not None)
        if endpoint == "models":
            fault = self._fault()
            await self._read_body()
            return await self._models(path, fault)
        body = decode_json_object(await self._read_body())
        if endpoint == "chat.completions":
            request = parse_chat_request(body)
        else:
            request = parse_responses_request(body, self.app.responses.get)
        if azure is not None and azure.deployment is not None:  # Azure runs the deployment, whatever the body says
            check_deployment(azure.deployment, self.settings.models)
            request = dataclasses.replace(request, model=azure.deployment)
        self.entry.model, self.entry.stream = request.model, request.stream
        self._check_model(request.model)
        settings = self.settings
        spread = latency_factor(settings.seed, self.entry.seq, settings.latency, settings.latency_p99)
        delay = self._latency((settings.ttft if request.stream else settings.latency) * spread)
        self.entry.planned_latency = delay
        self._admit(key, request)
        fault = self._fault()
        self._start_disconnect_watch()
        if fault and await self._apply_fault(fault, request):
            return
        if not await self._take_turn():
            return self._mark_disconnected()
        await self._generate(endpoint, request, fault, delay)

    async def _take_turn(self) -> bool:
        """Wait for a generation slot (see `capacity`); False if the client left while queued.

        The slot is given back in `finish`, after the journal records the end, so the journal
        never shows more generations at once than the capacity.
        """
        turn = await self.app.gate.enter(self.disconnected)
        if turn is Turn.LEFT:
            return False
        self.holds_slot = True
        self.entry.started_at = time.time()
        if turn is Turn.AFTER_WAITING:
            self.latency_origin = self.entry.started_at
        return True

    async def _generate(self, endpoint: str, request: GenerationRequest, fault: Fault | None, delay: float) -> None:
        reply = make_reply(
            request, seed=self.settings.seed, seq=self.entry.seq, reply_tokens=self.settings.reply_tokens
        )
        self.entry.prompt_tokens = reply.prompt_tokens
        if endpoint == "responses" and request.store:
            self.app.responses.put(stored(reply, request))
        if request.stream:
            await self._stream(endpoint, request, reply, fault, delay)
        else:
            await self._plain(endpoint, request, reply, fault, delay)

    async def _stale(self) -> bool:
        """Act out a middlebox that forgot this idle connection (``stale_after``); True when it did.

        ``reset``: the request meets an RST, as when the close crosses the request on the wire.
        ``silent``: the flow is gone, so nothing answers and nothing closes; the client waits for
        its read timeout (after ``max_hang`` the server gives up and cuts the connection).
        """
        after, idle = self.settings.stale_after, self.visit.idle
        if after is None or idle is None or idle <= after:
            return False
        self.entry.fault = "stale_connection"
        if self.settings.stale_mode == "reset":
            await self._abort("reset")
            return True
        self._start_disconnect_watch()
        if await self._sleep(self.settings.max_hang):
            await self._abort("reset")
        else:
            self._mark_disconnected()
        return True

    def _admit(self, key: str, request: GenerationRequest) -> None:
        """Count the request against its key's rate limits (see `ratelimits`); a 429 if they refuse it."""
        limits = self.app.limits
        if not limits.enabled:
            return
        self.entry.prompt_tokens = prompt_tokens(request)
        admission = limits.admit(key, token_cost(request, self.settings.reply_tokens), request.model)
        self.rate_headers = admission.headers
        if admission.error is not None:
            self.entry.rate_limited = admission.refused
            raise admission.error

    def _authenticate(self, azure: bool = False) -> str:
        """The request's bearer key (Azure-shaped: its api-key or token), if it is one the server accepts."""
        expected = self.settings.api_key
        if azure:
            return azure_key(self.headers, expected.get_secret_value() if expected is not None else None)
        header: bytes = self.headers.get(b"authorization", b"")
        scheme, _, key = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise UpstreamError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if expected is not None and not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
            # Unlike the real service, echo no part of the key: it would land in logs.
            raise UpstreamError(401, "Incorrect API key provided.", code="invalid_api_key")
        return key

    def _fault(self) -> Fault | None:
        header = self.headers.get(FAULT_HEADER)
        fault = parse_fault(header.decode("latin-1")) if header is not None else self.app.server_fault
        attempt = self.entry.attempt or 0
        if fault is None or not fault.applies_to(attempt, self.settings.seed, self.entry.seq):
            return None
        self.entry.fault = str(fault)
        return fault

    def _check_model(self, model: str) -> None:
        if self.settings.models and model not in self.settings.models:
            raise UpstreamError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )

    def _latency(self, default: float) -> float:
        raw = self.headers.get(LATENCY_HEADER)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value <= 600:
            raise UpstreamError(
                400, "Invalid x-upstream-latency: expected seconds between 0 and 600.", param="x-upstream-latency"
            )
        return value

    # --- answers ----------------------------------------------------------------------

    async def _plain(
        self, endpoint: str, request: GenerationRequest, reply: Reply, fault: Fault | None, latency: float
    ) -> None:
        remaining = latency - (time.time() - self.latency_origin)
        if not await self._sleep(remaining):
            return self._mark_disconnected()
        created = self.settings.created
        if endpoint == "chat.completions":
            payload = chat_completion(reply, request, created, **_shape(fault))
            billed = payload["usage"]["completion_tokens"]  # a refusal bills its own tokens
        else:
            payload = response_object(reply, request, created)
            billed = reply.completion_tokens
        body = json.dumps(payload).encode()
        self.entry.completion_tokens = billed
        if fault and fault.kind == "stream_drop":  # a plain answer cut in the middle
            await self._start(200, len(body))
            await self.send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            return await self._abort("dropped")
        if fault and fault.kind in ("malformed_json", "truncated_json"):
            body = body[: len(body) // 2] if fault.kind == "truncated_json" else body.replace(b'"', b"'")
            self.entry.outcome = "malformed"
        await self._respond(200, body)

    async def _stream(
        self, endpoint: str, request: GenerationRequest, reply: Reply, fault: Fault | None, delay: float
    ) -> None:
        """Send the events one by one: `delay` (the TTFT) before the first, chunk_delay between the others."""
        created = self.settings.created
        events: list[StreamEvent]
        if endpoint == "chat.completions":
            events = chat_chunks(reply, request, created, **_shape(fault))
        else:
            events = response_events(reply, request, created)
        await self._start(200, None, content_type="text/event-stream; charset=utf-8")
        cut = fault.after if fault and fault.kind in ("stream_drop", "stream_error") else None
        for index, event in enumerate(events):
            if index == cut:
                if fault and fault.kind == "stream_drop":
                    return await self._abort("dropped")
                return await self._stream_error(endpoint, index)
            if not await self._sleep(delay):
                return self._mark_disconnected()
            delay = self.settings.chunk_delay
            await self._send_event(event.event, event.data)
            self.entry.chunks_sent += 1
            self.entry.completion_tokens += event.tokens
        if endpoint == "chat.completions":
            await self.send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        self.entry.outcome = "ok"

    async def _stream_error(self, endpoint: str, index: int) -> None:
        message = SERVER_ERROR_MESSAGE
        if endpoint == "chat.completions":
            await self._send_event(
                None, {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
            )
        else:
            await self._send_event(
                "error",
                {"type": "error", "code": "server_error", "message": message, "param": None, "sequence_number": index},
            )
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        self.entry.outcome = "stream_error"

    async def _models(self, path: str, fault: Fault | None) -> None:
        if fault and await self._apply_fault(fault, None):
            return
        served = self.settings.models
        cards = [
            {"id": m, "object": "model", "created": self.settings.created, "owned_by": "bundled-upstream"}
            for m in served
        ]
        if path == "/v1/models":
            return await self._respond(200, json.dumps({"object": "list", "data": cards}).encode())
        model = path.removeprefix("/v1/models/")
        if served and model not in served:
            raise UpstreamError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
        card = next((c for c in cards if c["id"] == model), {**(cards or [{}])[0], "id": model, "object": "model"})
        await self._respond(200, json.dumps(card).encode())

    async def _apply_fault(self, fault: Fault, request: GenerationRequest | None) -> bool:
        """Act out `fault`; True when it produced the whole answer."""
        kind = fault.kind
        if kind == "rate_limit":
            wait = fault.retry_after
            raise UpstreamError(
                429,
                "Rate limit reached for requests. Please try again later.",
                type="requests",
                code="rate_limit_exceeded",
                headers={
                    "retry-after": f"{max(1, round(wait))}",
                    "retry-after-ms": f"{round(wait * 1000)}",
                    "x-ratelimit-remaining-requests": "0",
                },
            )
        if kind == "quota":
            raise UpstreamError(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                type="insufficient_quota",
                code="insufficient_quota",
            )
        if kind == "server_error":
            raise UpstreamError(fault.status, SERVER_ERROR_MESSAGE, type="server_error")
        if kind == "bad_request":
            raise UpstreamError(400, "Injected fault: the request was rejected as invalid.")
        if kind == "unauthorized":
            raise UpstreamError(401, "Incorrect API key provided.", code="invalid_api_key")
        if kind == "reset":
            await self._abort("reset")
            return True
        if kind == "hang":
            seconds = min(
                self.settings.max_hang, fault.seconds if fault.seconds is not None else self.settings.max_hang
            )
            if not await self._sleep(seconds):
                self._mark_disconnected()
                return True
        return False  # the remaining kinds act on the answer itself

    # --- plumbing ---------------------------------------------------------------------

    async def _read_body(self) -> bytes:
        limit = self.settings.max_body_bytes
        declared = self.headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _start_disconnect_watch(self) -> None:
        async def watch() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        self._watcher = asyncio.create_task(watch())

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the client leaves first; False if it left."""
        if self.disconnected.is_set():
            return False
        if seconds <= 0:
            return True
        try:
            await asyncio.wait_for(self.disconnected.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    def _mark_disconnected(self) -> None:
        self.entry.client_disconnected = True
        self.entry.outcome = "disconnected"

    async def _start(
        self,
        status: int,
        length: int | None,
        *,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {
            "content-type": content_type,
            "x-request-id": self.entry.request_id,
            "openai-processing-ms": str(round((time.time() - self.entry.received_at) * 1000)),
            **self.rate_headers,
            **(extra or {}),
        }
        if length is not None:
            headers["content-length"] = str(length)
        self.entry.status = status
        self.response_started = True
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )

    async def _respond(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        await self._start(status, len(body), extra=extra)
        await self.send({"type": "http.response.body", "body": body})
        if self.entry.outcome == "pending":
            self.entry.outcome = "ok" if status < 400 else "error"

    async def _send_event(self, event: str | None, data: dict[str, Any]) -> None:
        prefix = f"event: {event}\n" if event else ""
        payload = f"{prefix}data: {json.dumps(data)}\n\n".encode()
        await self.send({"type": "http.response.body", "body": payload, "more_body": True})

    async def send_error(self, error: UpstreamError) -> None:
        if self.response_started:  # too late for a status: cut the connection instead
            return await self._abort("dropped")
        self.entry.outcome = "error"
        await self._respond(error.status, json.dumps(error.body()).encode(), extra=error.headers)

    async def _abort(self, outcome: Outcome) -> None:
        """Cut the connection: an RST (SO_LINGER 0) where the server exposes the transport."""
        self.entry.outcome = outcome
        transport = transport_of(self.send)
        if transport is None:  # another ASGI server: a response started and never finished
            if not self.response_started:
                await self._start(200, 1)
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        if self._watcher is None:
            self._start_disconnect_watch()
        # Let the server notice the closed connection so it does not log a
        # "returned without starting response" error for this deliberate cut.
        await self._sleep(1.0)

    def finish(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self.entry.outcome == "pending":
            self.entry.outcome = "disconnected" if self.disconnected.is_set() else "error"
        if self.entry.outcome == "disconnected":
            self.entry.client_disconnected = True
        self.entry.finished_at = time.time()
        if self.holds_slot:
            self.holds_slot = False
            self.app.gate.leave()


def _shape(fault: Fault | None) -> dict[str, bool]:
    """The chat reply's shape a shape fault asks for (see `chat_wire`): ``refusal``, ``annotations``."""
    kind = fault.kind if fault else None
    return {"refusal": kind == "refusal", "annotations": kind == "filter_annotations"}


def _too_large(size: int, limit: int) -> UpstreamError:
    return UpstreamError(
        413, f"Request body too large: {size} bytes exceeds the limit of {limit} bytes.", code="request_too_large"
    )


async def _journal_route(journal: Journal, method: str, send: Send) -> None:
    """``GET`` the journal as ``{"entries": [...]}``, or ``DELETE`` it."""
    if method == "GET":
        status, body = 200, json.dumps({"entries": [e.to_dict() for e in journal.entries()]})
    elif method == "DELETE":
        journal.clear()
        status, body = 200, '{"cleared": true}'
    else:
        status, body = (
            405,
            json.dumps(UpstreamError(405, f"Invalid method for URL ({method} /_upstream/journal)").body()),
        )
    raw = body.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
