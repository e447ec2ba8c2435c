"""What the service knows about the request it is serving, for its log line and error bodies.

A context variable carries it from the middleware down to the SDK's transport hooks,
which run inside the route's task: that is how the log line learns the attempt count.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class RequestRecord:
    request_id: str
    upstream_attempts: int = 0
    upstream_request_id: str | None = None
    error_code: str | None = None
    # When the upstream work must end, in event-loop time (``loop.time()``): set when the call
    # starts, read by the transport hook that refuses a Retry-After the deadline can't hold.
    deadline: float | None = None
    # Tokens the upstream billed for this request (its usage, or a stream's usage event), for
    # the log line: cost accounting per request without a second source of truth.
    input_tokens: int | None = None
    output_tokens: int | None = None
    # The client hung up before its response was complete (the gate's ``Departure`` sees it),
    # and what to call then: how a route waiting for the upstream stops at once.
    client_left: bool = False
    on_client_left: Callable[[], None] | None = None

    def bill(self, input_tokens: int | None, output_tokens: int | None) -> None:
        self.input_tokens, self.output_tokens = input_tokens, output_tokens

    def note_client_left(self) -> None:
        self.client_left = True
        if self.on_client_left is not None:
            self.on_client_left()


current: ContextVar[RequestRecord | None] = ContextVar("hardened_request", default=None)


def request_id_from(header: str | None) -> str:
    """The caller's ``x-request-id`` if it is a sane token, else a fresh one."""
    if header and _ACCEPTABLE_ID.fullmatch(header):
        return header
    return f"req_{uuid.uuid4().hex}"
