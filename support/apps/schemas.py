"""Request and reply bodies shared by the example services."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

DEFAULT_MODEL = "gpt-4o-mini"


def model_name() -> str:
    """The model the examples ask for: ``$OPENAI_MODEL`` or gpt-4o-mini."""
    return os.environ.get("OPENAI_MODEL", DEFAULT_MODEL)


class ChatRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=4000)


class ChatReply(BaseModel):
    text: str
