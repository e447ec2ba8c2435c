"""Every failure becomes an HTTP status with an OpenAI-shaped JSON body; never a traceback.

=====================================  ======  ============================================
what happened                          status  why this status
=====================================  ======  ============================================
no or wrong service token              401     the caller must authenticate; every path but
                                               /healthz and /readyz (see ``gate``)
body larger than the cap               413     before it is even parsed
body slower than the time limit        408     ``Connection: close``; before it is parsed
invalid body, model not allowed,       422     FastAPI's own status for invalid input;
``max_tokens`` above the cap, a                strict: ``"5"``, ``true`` or ``5.0`` is not 5
value of the wrong JSON type
upstream rejected the input (400)      400     the upstream's message is the useful one
upstream rate limit (after retries)    429     with the upstream's ``Retry-After`` (rounded
                                               up to whole seconds); at once, unretried, when
                                               that wait and one more attempt (its read
                                               timeout) can't fit before the deadline
upstream quota exhausted               503     the *service's* account is empty: the caller
                                               can't fix that by slowing down (429) or
                                               paying (402); no ``Retry-After``
upstream auth failure (401/403)        500     the service is misconfigured; the upstream's
                                               message (it can quote the key) stays in logs
deadline or upstream timeout           504     a stream past its deadline, or silent for
                                               ``stream_idle_timeout_s``: an error event
connection error, reset, 5xx,          502     the upstream failed; say so, not what it said
malformed reply, error mid-stream
too many calls in flight               503     with ``Retry-After``; answered at once
a stream cut by a shutdown (SIGTERM)   503     its last event, ``shutting_down``
the caller hung up before the answer   499     nobody reads it: the upstream call is
                                               cancelled; the status is for the log line
anything else                          500     logged with its traceback, never sent
=====================================  ======  ============================================
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from fastapi.responses import JSONResponse
from openai._constants import MAX_RETRY_AFTER_DELAY  # 120 s: the longest wait the SDK honours


@dataclass
class ServiceError(Exception):
    """An error the service answers with."""

    status: int
    code: str
    message: str
    type: str = "service_error"
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    upstream_request_id: str | None = None

    def body(self, request_id: str | None) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
                "request_id": request_id,
                "upstream_request_id": self.upstream_request_id,
            }
        }

    def response(self, request_id: str | None) -> JSONResponse:
        return JSONResponse(self.body(request_id), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None) -> ServiceError:
    return ServiceError(422, "invalid_value", message, type="invalid_request_error", param=param)


def upstream_wait_s(headers: httpx2.Headers) -> float | None:
    """How long the upstream asked to wait, in seconds, read exactly as the SDK reads it.

    A copy of ``BaseClient._parse_retry_after_header`` (openai/_base_client.py), which is
    not public: ``retry-after-ms`` first, then ``Retry-After`` as seconds (floats allowed)
    or as an HTTP date. The SDK sleeps that long before retrying when it is finite and in
    (0, 120] s (``_calculate_retry_timeout``); agreeing with it matters, because the
    transport hook in ``client`` decides from this whether the SDK may retry at all.
    """
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if delay == math.inf and value.strip().lower() not in ("inf", "+inf", "infinity", "+infinity"):
            return MAX_RETRY_AFTER_DELAY + 1  # a numeric overflow: an excessive wait, as the SDK reads it
        return delay / divisor
    try:
        when = email.utils.parsedate_tz(headers.get("retry-after"))
        return None if when is None else float(email.utils.mktime_tz(when) - time.time())
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _retry_after(headers: httpx2.Headers) -> str:
    """The upstream's wait for the caller's ``Retry-After``: whole seconds, rounded up, at least 1."""
    seconds = upstream_wait_s(headers)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "1"
    return str(max(1, math.ceil(seconds)))


def _timed_out(exc: BaseException) -> bool:
    """False when `exc` is a lost connection dressed as a timeout.

    The aiohttp transport maps every ``aiohttp.ClientConnectionError``, a reset
    included, to ``httpx2.ConnectTimeout`` (which the SDK turns into
    ``APITimeoutError``); the aiohttp exception it wraps says which it really was.
    """
    link: BaseException | None = exc
    while link is not None:
        cause = link.__cause__
        if (
            isinstance(link, httpx2.ConnectTimeout)
            and cause is not None
            and type(cause).__module__.startswith("aiohttp")
            and not isinstance(cause, TimeoutError)
        ):
            return False
        link = cause
    return True


def from_upstream(exc: BaseException) -> ServiceError | None:
    """The service's answer to an exception from the SDK or its transport; None if not one."""
    if isinstance(exc, ServiceError):
        return exc
    upstream_id = getattr(exc, "request_id", None)

    def gateway(status: int, code: str, message: str, **extra: Any) -> ServiceError:
        return ServiceError(status, code, message, type="upstream_error", upstream_request_id=upstream_id, **extra)

    if isinstance(exc, (TimeoutError, openai.APITimeoutError, httpx2.TimeoutException)) and _timed_out(exc):
        return gateway(504, "upstream_timeout", "The upstream did not answer in time.")
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
        return gateway(502, "upstream_unreachable", "The connection to the upstream failed.")
    if isinstance(exc, openai.RateLimitError):
        if exc.code == "insufficient_quota":
            return gateway(503, "upstream_quota_exhausted", "The service's upstream quota is exhausted.")
        return gateway(
            429,
            "rate_limited",
            "The upstream is rate limiting; retry later.",
            headers={"Retry-After": _retry_after(exc.response.headers)},
        )
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return gateway(500, "upstream_auth_failed", "The service could not authenticate to its upstream.")
    if isinstance(exc, openai.BadRequestError):
        # The SDK's str() wraps the body; the upstream's own sentence is the useful part.
        message = exc.body.get("message") if isinstance(exc.body, dict) else None
        return ServiceError(
            400,
            exc.code or "invalid_request",
            str(message or "The upstream rejected the request."),
            type="invalid_request_error",
            param=exc.param,
            upstream_request_id=upstream_id,
        )
    if isinstance(exc, openai.APIStatusError):
        return gateway(502, "upstream_error", f"The upstream answered {exc.status_code}.")
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        return gateway(502, "upstream_bad_response", "The upstream sent a reply that is not valid JSON.")
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return gateway(502, "upstream_stream_error", "The upstream reported an error mid-stream.")
    return None


def internal_error() -> ServiceError:
    return ServiceError(500, "internal_error", "The service failed; the request id finds it in the logs.")


def client_disconnected() -> ServiceError:
    """The caller hung up mid-call. Nobody receives this answer (the server drops it); it is
    raised so the upstream call is abandoned and the log line says 499, as nginx would."""
    return ServiceError(
        499, "client_disconnected", "The client closed the connection before the answer was ready.", type="client_error"
    )


def stream_past_deadline() -> ServiceError:
    """A started stream the service stopped at the request's deadline (sent as an error event)."""
    return ServiceError(
        504, "upstream_timeout", "The stream did not finish within the service's deadline.", type="upstream_error"
    )


def stream_idle(seconds: float) -> ServiceError:
    """A started stream the service stopped because the upstream went quiet (sent as an error event)."""
    return ServiceError(504, "upstream_timeout", f"The upstream sent nothing for {seconds:g} s.", type="upstream_error")


def shutting_down() -> ServiceError:
    """A stream cut because the service is stopping (sent as its last error event)."""
    return ServiceError(503, "shutting_down", "The service is shutting down; retry the request.")


def overloaded(detail: str) -> ServiceError:
    return ServiceError(
        503, "overloaded", f"The service is at capacity ({detail}); retry shortly.", headers={"Retry-After": "1"}
    )


def unauthorized() -> ServiceError:
    return ServiceError(
        401,
        "invalid_service_token",
        "A valid service token is required: Authorization: Bearer <token>.",
        type="authentication_error",
        headers={"WWW-Authenticate": "Bearer"},
    )


def too_large(limit: int) -> ServiceError:
    return ServiceError(
        413, "body_too_large", f"The request body is larger than {limit} bytes.", type="invalid_request_error"
    )
