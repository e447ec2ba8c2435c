"""What callers send and get back. Unknown fields are rejected, not ignored.

Requests are validated strictly (pydantic's strict mode): ``"max_tokens": "5"``, ``true``
or ``5.0`` are errors, not 5, and ``"model": ""`` is an error, not the default model. A
caller who sends the wrong type has a bug; coercing it hides the bug and bills for it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    messages: list[Message] = Field(min_length=1, max_length=64)
    model: str | None = Field(
        default=None, min_length=1, description="One of the allowed models; the service's default if unset."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="At most the service's cap.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatOut(BaseModel):
    id: str
    model: str
    text: str
    finish_reason: str | None
    usage: Usage | None
