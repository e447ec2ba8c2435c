"""What callers send and get back. Unknown fields are rejected, not ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=64)
    model: str | None = Field(default=None, description="One of the allowed models; the service's default if unset.")
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
